import Foundation
import Testing

@testable import Switchyard

extension TestApp {
    /// Posts a host event and answers its id.
    func postEvent(_ type: String = "invoice.paid", workspace: String? = nil) async throws -> String {
        let posted = try await request(
            .post,
            "/v1/workspaces/\(workspace ?? liveWorkspace.id)/events",
            token: ownerToken,
            json: #"{"type": "\#(type)"}"#
        )
        return try #require(posted["id"] as? String, "\(posted.body)")
    }

    func eventIDs() async throws -> [String] {
        try await database.read { tx in try tx.query("SELECT id FROM events ORDER BY id").map { try $0.string("id") } }
    }

    /// A webhook endpoint row, as the webhooks feature writes one; answers its id.
    func insertEndpoint() async throws -> String {
        let id = ID.make("ep", at: clock.now)
        let (workspaceID, now) = (liveWorkspace.id, clock.now)
        try await database.write { tx in
            _ = try tx.execute(
                """
                INSERT INTO webhook_endpoints (id, workspace_id, url, status, subscriptions, alert_emails, headers, secret_header_names,
                                               secret, created_at, updated_at)
                VALUES (?, ?, 'http://127.0.0.1:9/', 'active', '[{"events":["*"]}]', '[]', '{}', '[]', ?, ?, ?)
                """,
                id,
                workspaceID,
                SQLValue.blob([1, 2, 3]),
                now,
                now
            )
        }
        return id
    }

    /// A delivery of `eventID` to `endpointID` with `status`, with one attempt; answers its id.
    @discardableResult
    func insertDelivery(endpointID: String, eventID: String, status: String) async throws -> String {
        let (id, attempt, workspaceID, now) = (ID.make("dlv", at: clock.now), ID.make("att", at: clock.now), liveWorkspace.id, clock.now)
        try await database.write { tx in
            _ = try tx.execute(
                """
                INSERT INTO webhook_deliveries (id, endpoint_id, workspace_id, event_id, event_type, event_position, status, attempts,
                                                created_at, updated_at)
                VALUES (?, ?, ?, ?, 'invoice.paid', 0, ?, 1, ?, ?)
                """,
                id,
                endpointID,
                workspaceID,
                eventID,
                status,
                now,
                now
            )
            _ = try tx.execute(
                """
                INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, number, url, request_headers, request_body, duration_ms, attempted_at)
                VALUES (?, ?, ?, 1, 'https://example.com/h', '{}', '{}', 1.5, ?)
                """,
                attempt,
                id,
                endpointID,
                now
            )
        }
        return id
    }

    /// Puts the fan-out cursor at `eventID`, as the delivery worker records it.
    func setFanout(at eventID: String) async throws {
        try await database.write { tx in
            let position = try #require(try tx.queryOne("SELECT position FROM events WHERE id = ?", eventID)).int("position")
            _ = try tx.execute("DELETE FROM webhook_fanout")
            _ = try tx.execute("INSERT INTO webhook_fanout (id, after_position, after_id) VALUES ('events', ?, ?)", position, eventID)
        }
    }
}

/// Ids are made from one process-wide monotonic state (ID.make): a test that moves its clock ahead
/// makes every id made meanwhile, in any test, that far ahead. So these tests name their cutoff by
/// an event id where they can, and move the clock only after their last id, far enough that no
/// other test's clock is further.
@Suite("Event retention")
struct EventRetentionTests {
    static let day: TimeInterval = 86_400

    @Test("old events leave the log once their deliveries are finished and the fan-out has passed them")
    func finishedEventsGo() async throws {
        try await TestApp.run { app in
            let events = app.services.events
            var old: [String] = []
            for _ in 0..<5 { old.append(try await app.postEvent()) }
            let recent = try await app.postEvent()
            let endpoint = try await app.insertEndpoint()
            try await app.insertDelivery(endpointID: endpoint, eventID: old[0], status: "succeeded")
            let pending = try await app.insertDelivery(endpointID: endpoint, eventID: old[1], status: "pending")
            try await app.insertDelivery(endpointID: endpoint, eventID: old[2], status: "failed")
            try await app.insertDelivery(endpointID: endpoint, eventID: recent, status: "succeeded")

            // Endpoints exist but the fan-out has not started: any event may still become deliveries.
            #expect(try await events.deleteExpired(before: recent) == 0)

            try await app.setFanout(at: old[2])
            #expect(try await events.deleteExpired(before: recent) == 2)
            #expect(try await app.eventIDs() == [old[1], old[3], old[4], recent])
            #expect(try await app.count("webhook_deliveries") == 2, "the deliveries of the removed events went with them")
            #expect(try await app.count("webhook_attempts") == 2)

            try await app.setFanout(at: recent)
            #expect(try await events.deleteExpired(before: recent, batchSize: 1) == 2)
            #expect(try await app.eventIDs() == [old[1], recent], "a pending delivery keeps its event; recent events stay")

            _ = try await app.database.write { tx in try tx.execute("UPDATE webhook_deliveries SET status = 'succeeded' WHERE id = ?", pending) }
            #expect(try await events.deleteExpired(before: recent) == 1)
            #expect(try await app.eventIDs() == [recent])
            #expect(try await app.count("webhook_deliveries") == 1)
        }
    }

    @Test("without webhook endpoints, housekeeping removes events by age alone, with --event-retention-days")
    func housekeeping() async throws {
        try await TestApp.run(configure: { $0.eventRetentionDays = 7 }) { app in
            for _ in 0..<3 { _ = try await app.postEvent() }
            _ = try await app.postEvent(workspace: app.sandboxWorkspace.id)
            try await app.services.sweep()
            #expect(try await app.eventIDs().count == 4, "young events stay")
            app.clock.advance(by: 400 * Self.day)
            try await app.services.sweep()
            #expect(try await app.eventIDs() == [])
            #expect(try await app.count("host_event_types") == 2, "the catalog keeps the host types of removed events")
        }
    }

    @Test("an `after` naming a removed event is 410 cursor-expired; an id that never was keeps its 422")
    func cursorExpired() async throws {
        try await TestApp.run(configure: { $0.eventRetentionDays = 7 }) { app in
            let path = "\(app.workspacePath)/events"
            let first = try await app.postEvent()
            let second = try await app.postEvent()
            let recent = try await app.postEvent()
            #expect(try await app.services.events.deleteExpired(before: recent) == 2)
            _ = try await app.events(count: 1)

            for removed in [first, second] {
                let answer = try await app.request(.get, "\(path)?after=\(removed)", token: app.ownerToken)
                answer.expectProblem(.gone, "cursor-expired", field: "after")
                #expect((answer["detail"] as? String)?.contains("oldest") == true, "\(answer.body)")
            }
            let page = try await app.request(.get, "\(path)?after=\(recent)", token: app.ownerToken)
            #expect(page.status == .ok)
            // Well-formed but never in the log, and newer than the retention cutoff: as before.
            let never = "evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
            try await app.request(.get, "\(path)?after=\(never)", token: app.ownerToken)
                .expectProblem(.unprocessableContent, "validation-failed", field: "after")
            try await app.request(.get, "\(path)?after=evt_nonsense", token: app.ownerToken)
                .expectProblem(.unprocessableContent, "validation-failed", field: "after")

            // A log that retention emptied still says so.
            app.clock.advance(by: 400 * Self.day)
            #expect(try await app.services.events.deleteExpired(olderThanDays: 7) == 1)
            try await app.request(.get, "\(path)?after=\(recent)", token: app.ownerToken).expectProblem(.gone, "cursor-expired", field: "after")
        }
    }

    @Test("without retention set, an id older than the oldest event left is still expired")
    func expiredWithoutRetention() async throws {
        try await TestApp.run { app in
            let first = try await app.postEvent()
            let second = try await app.postEvent()
            #expect(try await app.services.events.deleteExpired(before: second) == 1)
            try await app.request(.get, "\(app.workspacePath)/events?after=\(first)", token: app.ownerToken)
                .expectProblem(.gone, "cursor-expired", field: "after")
        }
    }
}
