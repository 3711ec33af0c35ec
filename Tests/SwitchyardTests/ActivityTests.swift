import Foundation
import Testing

@testable import Switchyard

@Suite("Activity log")
struct ActivityTests {
    @Test("housekeeping keeps activity and finished mail for their retention; queued mail stays")
    func retention() async throws {
        try await TestApp.run(configure: {
            $0.activityRetentionDays = 30
            $0.outboxRetentionDays = 7
        }) { app in
            // Old: an entry, a sent message and a queued one, 40 days back.
            _ = try await app.makeUser("old@example.com", role: .member)  // an activity entry and a welcome message
            try await app.database.write { tx in
                try tx.execute("UPDATE mail_messages SET status = 'sent'")
            }
            let oldEntries = try await app.count("activity_entries")
            try await app.database.write { tx in
                _ = try app.services.mail.enqueue(tx, to: "queued@example.com", subject: "Still waiting", body: "x")
            }
            app.clock.advance(by: 40 * 86_400)
            _ = try await app.makeUser("new@example.com", role: .member)
            let recent = try await app.count("activity_entries") - oldEntries
            try await app.services.sweep()
            #expect(oldEntries > 0 && recent > 0)
            #expect(try await app.count("activity_entries") == recent)
            let mail = try await app.database.read { tx in try tx.query("SELECT recipient, status FROM mail_messages ORDER BY id") }
            #expect(mail.map { $0.optionalString("recipient") } == ["queued@example.com", "new@example.com"])
        }
    }

    @Test("a flood of bad tokens writes at most 60 entries a minute per address; the rest are only counted")
    func refusalFlood() async throws {
        try await TestApp.run { app in
            for _ in 0..<70 {
                try await app.request(.get, "/v1/ping", token: "sy_live_nope").expectProblem(.unauthorized, "unauthenticated")
            }
            let count = { try await app.count("activity_entries WHERE action = 'api_token.rejected'") }
            #expect(try await count() == 60)
            app.clock.advance(by: 60)
            try await app.request(.get, "/v1/ping", token: "sy_live_nope").expectProblem(.unauthorized, "unauthenticated")
            #expect(try await count() == 61)
            let metrics = try await app.request(.get, "/metrics")
            #expect(metrics.body.contains("switchyard_activity_unrecorded_total"))
        }
    }

    @Test("batched entries carry their workspace's name unless they bring one, and none for an unknown workspace")
    func batchedWorkspaceNames() async throws {
        try await TestApp.run { app in
            let batcher = ActivityBatcher(database: app.database, flushSize: 10_000, logger: TestDatabase.logger)
            let workspaces: [(id: String?, name: String?)] = [
                (app.liveWorkspace.id, nil), (app.liveWorkspace.id, "Named at the time"), ("ws_01NOSUCHWORKSPACE0000000000", nil), (nil, nil),
            ]
            for (index, workspace) in workspaces.enumerated() {
                var entry = ActivityEntry(
                    id: ID.make("act", at: app.clock.now),
                    occurredAt: app.clock.now,
                    actorType: "app",
                    actorId: "app_x",
                    actorLabel: "X",
                    action: "batched.\(index)",
                    workspaceId: workspace.id,
                    appId: "app_x",
                    outcome: .success,
                    detail: nil
                )
                entry.workspaceName = workspace.name
                batcher.add(entry)
            }
            try await batcher.flush()
            var names: [String?] = []
            for index in workspaces.indices {
                names.append(try await app.services.activity.list(ActivityFilter(action: "batched.\(index)")).first?.workspaceName)
            }
            #expect(names == [app.liveWorkspace.name, "Named at the time", nil, nil])
        }
    }

    @Test("entries are found by target through the target index, which holds only entries that name one")
    func targetIndex() async throws {
        try await TestDatabase.with { database in
            let queries = [
                "SELECT * FROM activity_entries WHERE target_id = ? ORDER BY id DESC LIMIT 50",
                "SELECT * FROM activity_entries WHERE (app_id = ? OR target_id = ?) ORDER BY id DESC LIMIT 50",
            ]
            for query in queries {
                let arguments = Array(repeating: SQLValue.text("app_1"), count: query.filter { $0 == "?" }.count)
                let plan = try await database.write { tx in
                    switch tx.dialect {
                    case .postgres:
                        // An empty table would be scanned whatever its indexes.
                        try tx.execute("SET LOCAL enable_seqscan = off")
                        return try tx.query("EXPLAIN (COSTS OFF) \(query)", arguments).map { try $0.string("QUERY PLAN") }
                    case .sqlite:
                        return try tx.query("EXPLAIN QUERY PLAN \(query)", arguments).map { try $0.string("detail") }
                    }
                }.joined(separator: "\n")
                #expect(plan.contains("activity_entries_target"), "\(plan)")
            }
            let definition = try await database.read { tx in
                switch tx.dialect {
                // This schema's only: other tests drop theirs meanwhile.
                case .postgres:
                    try tx.queryOne(
                        "SELECT indexdef AS d FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'activity_entries_target'"
                    )
                case .sqlite: try tx.queryOne("SELECT sql AS d FROM sqlite_master WHERE name = 'activity_entries_target'")
                }
            }
            #expect(try definition?.string("d").contains("target_id IS NOT NULL") == true)
        }
    }

    @Test("CSV cells are quoted per RFC 4180 and formulas neutralised")
    func csvEscaping() {
        #expect(ActivityCSV.cell("plain") == "plain")
        #expect(ActivityCSV.cell("a,b") == "\"a,b\"")
        #expect(ActivityCSV.cell("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(ActivityCSV.cell("two\nlines") == "\"two\nlines\"")
        #expect(ActivityCSV.cell("two\r\nlines") == "\"two\r\nlines\"")
        #expect(ActivityCSV.cell("=HYPERLINK(\"http://evil\")") == "\"'=HYPERLINK(\"\"http://evil\"\")\"")
        #expect(ActivityCSV.cell("+1") == "'+1")
        #expect(ActivityCSV.cell("-2") == "'-2")
        #expect(ActivityCSV.cell("@SUM(A1)") == "'@SUM(A1)")
        #expect(ActivityCSV.cell("\tx") == "'\tx")
        #expect(ActivityCSV.line(["a", nil, "b"]) == "a,,b\r\n")
    }

    @Test("the export holds every change made through the API, escaped, with filters")
    func export() async throws {
        try await TestApp.run { app in
            let created = try await app.request(
                .post,
                "/v1/users",
                token: app.ownerToken,
                json: #"{"email": "eve@example.com", "name": "=cmd|' /C calc'!A0", "role": "member"}"#
            )
            #expect(created.status == .created)
            let csv = try await app.request(.get, "/v1/activity.csv?action=user.created", token: app.ownerToken)
            #expect(csv.status == .ok)
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            let lines = csv.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(lines.first == ActivityCSV.header.joined(separator: ","))
            #expect(lines.count == 3, "header, the owner's creation at first start, and eve's")
            #expect(lines.dropFirst().allSatisfy { $0.contains(",user.created,") })
            #expect(lines.contains { $0.contains(",api_token,") && $0.contains("owner@example.com") })
        }
    }

    @Test("the log pages newest first and filters by outcome, workspace and time")
    func listing() async throws {
        try await TestApp.run { app in
            for n in 1...5 {
                _ = try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "W\#(n)"}"#)
            }
            _ = try await app.request(.get, "/v1/ping", token: "sy_live_bad")
            let page = try await app.request(.get, "/v1/activity?action=workspace.created&limit=3", token: app.ownerToken)
            let first = try #require(page["data"] as? [[String: Any]])
            #expect(first.count == 3)
            let after = try #require(page["next_after"] as? String)
            let rest = try #require(
                try await app.request(
                    .get,
                    "/v1/activity?action=workspace.created&limit=3&after=\(after)",
                    token: app.ownerToken
                )["data"] as? [[String: Any]]
            )
            // Five through the API plus the sandbox made directly by the test fixture.
            #expect(first.count + rest.count == 6)
            let ids = (first + rest).compactMap { $0["id"] as? String }
            #expect(ids == ids.sorted(by: >))
            let failures = try await app.request(.get, "/v1/activity?outcome=failure", token: app.ownerToken)
            #expect((failures["data"] as? [[String: Any]])?.map { $0["action"] as? String } == ["api_token.rejected"])
            let future = RFC3339.format(app.clock.now.addingTimeInterval(60))
            let none = try await app.request(.get, "/v1/activity?since=\(future)", token: app.ownerToken)
            #expect((none["data"] as? [Any])?.isEmpty == true)
            let (_, member) = try await app.makeUser("m@example.com", role: .member)
            try await app.request(.get, "/v1/activity", token: member).expectProblem(.forbidden, "forbidden")
        }
    }
}
