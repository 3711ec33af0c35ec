import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

@Suite("Records")
struct RecordTests {
    @Test("create applies defaults and records who created it; read answers with an ETag")
    func createAndRead() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let created = try await app.createWorkOrder(
                #"{"number": "WO-1", "trade": "PLUMBING", "category": "repair", "nte": 250.5, "urgent": true, "scheduled_on": "2026-12-01", "contact": "Site@Example.com", "details": {"floorPlan": [1, 2]}}"#
            )
            #expect(created.status == .created)
            let fields = try #require(created["fields"] as? [String: Any])
            #expect(fields["status"] as? String == "open")
            #expect(fields["priority"] as? Int == 3)
            #expect(fields["contact"] as? String == "site@example.com")
            #expect((fields["details"] as? [String: Any])?["floorPlan"] != nil, "keys inside json fields are kept as written")
            #expect(created["version"] as? Int == 1)
            let createdBy = try #require(created["created_by"] as? [String: Any])
            #expect(createdBy["type"] as? String == "api_token")
            let id = try #require(created["id"] as? String)

            let read = try await app.request(.get, "\(app.workspacePath)/records/work_order/\(id)", token: app.ownerToken)
            #expect(read.status == .ok)
            #expect(read.headers[.eTag] == "\"1\"")
            #expect((read["fields"] as? [String: Any])?["nte"] as? Double == 250.5)
            try await app.request(.get, "\(app.workspacePath)/records/work_order/rec_01ARZ3NDEKTSV4RRFFQ69G5FAV", token: app.ownerToken)
                .expectProblem(.notFound, "not-found")
            // A test token or one limited to another workspace cannot read it.
            for body in [#"{"name": "t", "mode": "test"}"#, #"{"name": "s", "workspaces": ["\#(app.sandboxWorkspace.id)"]}"#] {
                let other = try #require(try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: body)["token"] as? String)
                try await app.request(.get, "\(app.workspacePath)/records/work_order/\(id)", token: other).expectProblem(.forbidden, "forbidden")
            }
            let (_, developer) = try await app.makeUser("dev@example.com", role: .developer)
            try await app.request(.get, "\(app.workspacePath)/records/work_order/\(id)", token: developer).expectProblem(.forbidden, "forbidden")
        }
    }

    @Test("bad values are refused with the field path, and neither a record nor an event is written")
    func badValues() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.request(.post, "\(app.workspacePath)/object-types", token: app.ownerToken, json: noteType)
            let cases: [(String, String)] = [
                (#"{"trade": "HVAC"}"#, "fields.number"),
                (#"{"number": 12}"#, "fields.number"),
                (#"{"number": "WO-1", "status": "lost"}"#, "fields.status"),
                (#"{"number": "WO-1", "colour": "red"}"#, "fields.colour"),
                (#"{"number": "WO-1", "priority": 2.5}"#, "fields.priority"),
                (#"{"number": "WO-1", "urgent": "yes"}"#, "fields.urgent"),
                (#"{"number": "WO-1", "scheduled_on": "2026-02-30"}"#, "fields.scheduled_on"),
                (#"{"number": "WO-1", "contact": "nobody"}"#, "fields.contact"),
                (#"{"number": null}"#, "fields.number"),
            ]
            for (fields, path) in cases {
                try await app.createWorkOrder(fields).expectProblem(.unprocessableContent, "validation-failed", field: path)
            }
            try await app.request(
                .post,
                "\(app.workspacePath)/records/note",
                token: app.ownerToken,
                json: #"{"fields": {"work_order": "rec_01ARZ3NDEKTSV4RRFFQ69G5FAV", "body": "hi"}}"#
            )
            .expectProblem(.unprocessableContent, "validation-failed", field: "fields.work_order")
            try await app.request(.post, "\(app.workspacePath)/records/work_order", token: app.ownerToken, json: #"{"number": "WO-1"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "number")
            try await app.request(.post, "\(app.workspacePath)/records/nothing", token: app.ownerToken, json: #"{"fields": {}}"#)
                .expectProblem(.notFound, "not-found")
            #expect(try await app.count("records") == 0)
            #expect(try await app.count("events") == 0)
        }
    }

    @Test("a write that fails midway leaves no record and no event")
    func failureMidway() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.createWorkOrder(#"{"number": "WO-1"}"#)
            // The record row is inserted before its unique value is claimed; the conflict undoes it.
            try await app.createWorkOrder(#"{"number": "WO-1"}"#).expectProblem(.conflict, "conflict", field: "fields.number")
            #expect(try await app.count("records") == 1)
            #expect(try await app.count("events") == 1)
        }
    }

    @Test("notes reference their work order")
    func references() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.request(.post, "\(app.workspacePath)/object-types", token: app.ownerToken, json: noteType)
            let order = try #require(try await app.createWorkOrder(#"{"number": "WO-1"}"#)["id"] as? String)
            let note = try await app.request(
                .post,
                "\(app.workspacePath)/records/note",
                token: app.ownerToken,
                json: #"{"fields": {"work_order": "\#(order)", "body": "Tech on site at 9"}}"#
            )
            #expect(note.status == .created)
            let notes = try await app.request(.get, "\(app.workspacePath)/records/note?filter[work_order]=\(order)", token: app.ownerToken)
            #expect((notes["data"] as? [Any])?.count == 1)
        }
    }

    @Test("a partial update bumps the version, and its event carries the previous values")
    func update() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let id = try #require(try await app.createWorkOrder(#"{"number": "WO-1", "trade": "HVAC"}"#)["id"] as? String)
            let path = "\(app.workspacePath)/records/work_order/\(id)"
            let updated = try await app.request(
                .patch,
                path,
                token: app.ownerToken,
                json: #"{"fields": {"status": "completed", "trade": null}}"#,
                headers: [.ifMatch: "\"1\""]
            )
            #expect(updated.status == .ok, "\(updated.body)")
            #expect(updated["version"] as? Int == 2)
            #expect(updated.headers[.eTag] == "\"2\"")
            let fields = try #require(updated["fields"] as? [String: Any])
            #expect(fields["status"] as? String == "completed" && fields["trade"] == nil && fields["number"] as? String == "WO-1")

            try await app.request(.patch, path, token: app.ownerToken, json: #"{"fields": {"status": "open"}}"#, headers: [.ifMatch: "\"1\""])
                .expectProblem(.preconditionFailed, "version-mismatch")
            try await app.request(.patch, path, token: app.ownerToken, json: #"{"fields": {"number": null}}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "fields.number")

            let events = try await app.events("?type=work_order.updated", count: 1)
            let event = try #require((events["data"] as? [[String: Any]])?.first)
            #expect((events["data"] as? [Any])?.count == 1)
            let changed = try #require(event["changed_fields"] as? [String: Any])
            #expect(changed["status"] as? String == "open")
            #expect(changed["trade"] as? String == "HVAC")
            #expect(changed["number"] == nil)
            #expect(((event["data"] as? [String: Any])?["fields"] as? [String: Any])?["status"] as? String == "completed")

            // No change, no new version and no event.
            let same = try await app.request(.patch, path, token: app.ownerToken, json: #"{"fields": {"status": "completed"}}"#)
            #expect(same["version"] as? Int == 2)
            #expect(try await app.count("events") == 2)
        }
    }

    @Test("50 concurrent updates with the same If-Match: exactly one succeeds, one event")
    func concurrentUpdates() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let id = try #require(try await app.createWorkOrder(#"{"number": "WO-1"}"#)["id"] as? String)
            let path = "\(app.workspacePath)/records/work_order/\(id)"
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for n in 0..<50 {
                    group.addTask {
                        try await app.request(
                            .patch,
                            path,
                            token: app.ownerToken,
                            json: #"{"fields": {"trade": "T\#(n)"}}"#,
                            headers: [.ifMatch: "\"1\""]
                        ).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.filter { $0 == .preconditionFailed }.count == 49)
            let record = try await app.request(.get, path, token: app.ownerToken)
            #expect(record["version"] as? Int == 2)
            let updates = try await app.events("?type=work_order.updated", count: 1)
            #expect((updates["data"] as? [Any])?.count == 1)
        }
    }

    @Test("delete writes a deleted event; a stale If-Match refuses it")
    func delete() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let id = try #require(try await app.createWorkOrder(#"{"number": "WO-1"}"#)["id"] as? String)
            let path = "\(app.workspacePath)/records/work_order/\(id)"
            try await app.request(.delete, path, token: app.ownerToken, headers: [.ifMatch: "7"]).expectProblem(
                .preconditionFailed,
                "version-mismatch"
            )
            #expect(try await app.request(.delete, path, token: app.ownerToken).status == .noContent)
            try await app.request(.get, path, token: app.ownerToken).expectProblem(.notFound, "not-found")
            let events = try await app.events(count: 2)
            #expect((events["data"] as? [[String: Any]])?.map { $0["type"] as? String } == ["work_order.created", "work_order.deleted"])
            // The number is free again.
            #expect(try await app.createWorkOrder(#"{"number": "WO-1"}"#).status == .created)
        }
    }

    @Test("Idempotency-Key on creation returns the first result and creates nothing more")
    func idempotentCreate() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let path = "\(app.workspacePath)/records/work_order"
            let body = #"{"fields": {"number": "WO-9"}}"#
            let first = try await app.request(.post, path, token: app.ownerToken, json: body, headers: [.idempotencyKey: "order-9"])
            let again = try await app.request(.post, path, token: app.ownerToken, json: body, headers: [.idempotencyKey: "order-9"])
            #expect(first.status == .created && again.status == .created)
            #expect(first.headers[.eTag] == "\"1\"")
            #expect(first["id"] as? String == again["id"] as? String)
            #expect(try await app.count("records") == 1)
            #expect(try await app.count("events") == 1)
            try await app.request(
                .post,
                path,
                token: app.ownerToken,
                json: #"{"fields": {"number": "WO-10"}}"#,
                headers: [.idempotencyKey: "order-9"]
            )
            .expectProblem(.unprocessableContent, "idempotency-key-reused")
            // After 24 hours the key is forgotten, and housekeeping removes it.
            app.clock.advance(by: 24 * 3600 + 1)
            try await app.services.sweep()
            #expect(try await app.count("idempotency_keys") == 0)
            try await app.request(.post, path, token: app.ownerToken, json: body, headers: [.idempotencyKey: "order-9"])
                .expectProblem(.conflict, "conflict", field: "fields.number")
        }
    }
}

@Suite("Record answers")
struct RecordJSONTests {
    @Test("the hand-written record answer is what the JSON encoder writes")
    func sameAsEncoder() throws {
        let record = Record(
            id: ID.make("rec"),
            workspaceId: ID.make("ws"),
            type: "work_order",
            fields: [
                "status": .string("open"), "nte": .double(250.5), "count": .int(3), "details": .object(["floorPlan": .array([.int(1), .null])]),
                "note": .string("say \"hi\"\n/ü"),
            ],
            version: 4,
            createdAt: Date(timeIntervalSince1970: 1_790_000_000.123),
            updatedAt: Date(timeIntervalSince1970: -1.5),
            createdBy: .init(type: "api_token", id: "tok_1")
        )
        #expect(RecordJSON.render(record) == (try JSONCoding.encodeText(record)))
        var anonymous = record
        anonymous.createdBy = .init(type: "system", id: nil)
        #expect(RecordJSON.render(anonymous) == (try JSONCoding.encodeText(anonymous)))
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1.5)) == "1969-12-31T23:59:58.500Z")
    }
}
