import Dispatch
import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

@Suite("Events")
struct EventTests {
    @Test("an event written by hand is byte for byte what JSONEncoder writes, optional members present or not")
    func handWrittenJSON() throws {
        let at = Date(timeIntervalSince1970: 1_790_000_000.123)
        let bare = Event(
            id: "evt_01M8S2H4WBEERMN4QWXMEJ5G4P",
            workspaceId: "ws_01M8S2H4WBEERMN4QWXMEJ5G4Q",
            type: "invoice.paid",
            objectType: nil,
            recordId: nil,
            data: .object(["amount": .double(612.4), "Lines": .array([.int(1), .null, .string("é\u{1}\"/")])]),
            changedFields: nil,
            actor: .init(type: "system", id: nil),
            createdBy: nil,
            occurredAt: at
        )
        var full = bare
        full.type = "work_order.updated"
        full.objectType = "work_order"
        full.recordId = "rec_01M8S2H4WBEERMN4QWXMEJ5G4R"
        full.changedFields = ["status": .string("open"), "nte": .null]
        full.actor = .init(type: "api_token", id: "tok_01M8S2H4WBEERMN4QWXMEJ5G4S")
        full.createdBy = .init(type: "user", id: nil)
        for event in [bare, full] {
            #expect(event.jsonText == (try JSONCoding.encodeText(event)))
        }
    }

    @Test("a host event may not take the name of a record change of an existing object type")
    func recordEventNamesReserved() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let events = "\(app.workspacePath)/events"
            for type in ["work_order.created", "work_order.updated", "work_order.deleted"] {
                try await app.request(.post, events, token: app.ownerToken, json: #"{"type": "\#(type)"}"#)
                    .expectProblem(.unprocessableContent, "validation-failed", field: "type")
            }
            for type in ["work_order.closed", "site.created"] {
                let posted = try await app.request(.post, events, token: app.ownerToken, json: #"{"type": "\#(type)"}"#)
                #expect(posted.status == .created, "\(type): \(posted.body)")
            }
            #expect(try await app.count("events") == 2)
        }
    }

    @Test("a host posts its own events; the same Idempotency-Key within 24 hours returns the first")
    func hostEvents() async throws {
        try await TestApp.run { app in
            let path = "\(app.workspacePath)/events"
            let first = try await app.request(
                .post,
                path,
                token: app.ownerToken,
                json: #"{"type": "invoice.paid", "data": {"invoiceId": "INV-7", "amount": 120}}"#,
                headers: [.idempotencyKey: "pay-7"]
            )
            #expect(first.status == .created)
            #expect((first["data"] as? [String: Any])?["invoiceId"] as? String == "INV-7", "keys of event data are kept as written")
            let again = try await app.request(
                .post,
                path,
                token: app.ownerToken,
                json: #"{"type": "invoice.paid", "data": {"invoiceId": "INV-7", "amount": 120}}"#,
                headers: [.idempotencyKey: "pay-7"]
            )
            #expect(again["id"] as? String == first["id"] as? String)
            #expect(try await app.count("events") == 1)
            try await app.request(.post, path, token: app.ownerToken, json: #"{"type": "Invoice Paid"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "type")
            try await app.request(.post, path, token: app.ownerToken, json: #"{"data": {}}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "type")
            #expect(try await app.count("events") == 1)
            // Record events come from records only.
            try await app.createWorkOrderType()
            try await app.request(.post, path, token: app.ownerToken, json: #"{"type": "work_order.updated"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "type")
            try await app.request(.get, "\(path)?after=yesterday", token: app.ownerToken)
                .expectProblem(.unprocessableContent, "validation-failed", field: "after")
        }
    }

    @Test("concurrent posts with one Idempotency-Key make one event, and every caller gets it")
    func concurrentIdempotentPosts() async throws {
        try await TestApp.run { app in
            let path = "\(app.workspacePath)/events"
            let ids = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for _ in 0..<24 {
                    group.addTask {
                        let response = try await app.request(
                            .post,
                            path,
                            token: app.ownerToken,
                            json: #"{"type": "invoice.paid"}"#,
                            headers: [.idempotencyKey: "same"]
                        )
                        return (response.status, response["id"] as? String)
                    }
                }
                return try await group.reduce(into: [(HTTPResponse.Status, String?)]()) { $0.append($1) }
            }
            #expect(ids.allSatisfy { $0.0 == .created })
            #expect(Set(ids.compactMap(\.1)).count == 1)
            #expect(try await app.count("events") == 1)
        }
    }

    @Test("the log reads in order, by type, page after page")
    func polling() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            for n in 1...5 { try await app.createWorkOrder(#"{"number": "WO-\#(n)"}"#) }
            _ = try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "site.opened"}"#)
            _ = try await app.events(count: 6)
            var types: [String] = []
            var after: String?
            repeat {
                let page = try await app.request(
                    .get,
                    "\(app.workspacePath)/events?limit=2" + (after.map { "&after=\($0)" } ?? ""),
                    token: app.ownerToken
                )
                types += (page["data"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
                after = page["next_after"] as? String
            } while after != nil
            #expect(types == Array(repeating: "work_order.created", count: 5) + ["site.opened"])
            let sites = try await app.events("?type=site.opened", count: 1)
            #expect((sites["data"] as? [Any])?.count == 1)
            // Another workspace's log is its own.
            let other = try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)/events", token: app.ownerToken)
            #expect((other["data"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("a reader going on after the last event it saw never skips one that an older transaction commits later")
    func noEventSkipped() async throws {
        // SQLite's single writer commits in id order; the case only arises with concurrent writers.
        guard TestDatabase.postgresURL != nil else { return }
        try await TestApp.run { app in
            let workspace = app.liveWorkspace.id
            let release = DispatchSemaphore(value: 0)
            let events = app.services.events
            // T1 appends first, then stays open until T2 has committed.
            let first = Task {
                try await app.database.write { tx in
                    try events.append(tx, workspaceID: workspace, type: "order.first", data: .null, actor: .system("test"))
                    // A statement sent leaves with the body's next wait (or once its unit ends): this
                    // one makes T1 take its transaction id, and its event's position, before T2.
                    _ = try tx.query("SELECT 1 AS one", [])
                    release.wait()
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            try await app.database.write { tx in
                try events.append(tx, workspaceID: workspace, type: "order.second", data: .null, actor: .system("test"))
            }
            let early = try await app.request(.get, "\(app.workspacePath)/events", token: app.ownerToken)
            #expect((early["data"] as? [Any])?.isEmpty == true, "T2's event waits until the older T1 ends")
            release.signal()
            try await first.value
            let page = try await app.events(count: 2)
            #expect((page["data"] as? [[String: Any]])?.map { $0["type"] as? String } == ["order.first", "order.second"])
        }
    }

    @Test("exactly one event per committed change under concurrent, partly failing writes")
    func oneEventPerChange() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            // 60 creates: every third repeats a number (409), every fifth has a bad status (422).
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for n in 0..<60 {
                    group.addTask {
                        let number = n % 3 == 2 ? "WO-\(n - 1)" : "WO-\(n)"
                        let status = n % 5 == 4 ? "lost" : "open"
                        return try await app.createWorkOrder(#"{"number": "\#(number)", "status": "\#(status)"}"#).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            let created = statuses.filter { $0 == .created }.count
            #expect(created > 0 && created < 60)
            #expect(!statuses.contains { $0.code >= 500 })
            #expect(try await app.count("records") == Int64(created))
            #expect(try await app.count("events") == Int64(created))
            let orphans = try await app.database.read { tx in
                try tx.queryOne("SELECT COUNT(*) AS n FROM records r WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.record_id = r.id)")?.int("n")
            }
            #expect(orphans == 0)
        }
    }
}
