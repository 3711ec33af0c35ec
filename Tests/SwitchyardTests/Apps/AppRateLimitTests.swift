import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

@Suite("App rate limits")
struct AppRateLimitTests {
    @Test("over the limit: 429 with Retry-After; every answer carries the RateLimit headers; a refused write writes nothing")
    func overTheLimit() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            // 2 calls a second: a bucket of 4.
            let made = try await app.makeApp(permissions: ["work_order:read", "work_order:create"], rateLimit: 2)
            let token = try await app.accessToken(for: made.app)
            for remaining in [3, 2, 1, 0] {
                let answer = try await app.request(.get, app.workspaceRead, token: token)
                #expect(answer.status == .ok, "\(answer.body)")
                #expect(answer.headers[.rateLimitLimit] == "4")
                #expect(answer.headers[.rateLimitRemaining] == "\(remaining)")
                #expect(answer.headers[.rateLimitReset] == "\(Int((Double(4 - remaining) / 2).rounded(.up)))")
                #expect(answer.headers[.retryAfter] == nil)
            }
            let refused = try await app.request(.get, app.workspaceRead, token: token)
            refused.expectProblem(.tooManyRequests, "rate-limited")
            #expect(refused.headers[.retryAfter] == "1")
            #expect(refused.headers[.rateLimitLimit] == "4")
            #expect(refused.headers[.rateLimitRemaining] == "0")
            #expect(refused.headers[.rateLimitReset] == "2")

            let records = try await app.count("records")
            let events = try await app.count("events")
            let entries = try await app.count("activity_entries")
            try await app.createWorkOrder(#"{"number": "WO-1"}"#, token: token).expectProblem(.tooManyRequests, "rate-limited")
            #expect(try await app.count("records") == records)
            #expect(try await app.count("events") == events)
            #expect(try await app.count("activity_entries") == entries, "the call's entry waits in the batcher")

            // Errors carry the headers too; a user's call carries none.
            app.clock.advance(by: 0.5)
            let notGranted = try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)", token: token)
            notGranted.expectProblem(.forbidden, "forbidden")
            #expect(notGranted.headers[.rateLimitLimit] == "4")
            #expect(notGranted.headers[.rateLimitRemaining] == "0")
            let user = try await app.request(.get, app.workspaceRead, token: app.ownerToken)
            #expect(user.status == .ok)
            #expect(user.headers[.rateLimitLimit] == nil)
        }
    }

    @Test("the bucket refills with time, up to twice the rate; the app's own rate or --app-rate-limit")
    func refill() async throws {
        try await TestApp.run(configure: { $0.appRateLimit = 3 }) { app in
            let made = try await app.makeApp()
            let token = try await app.accessToken(for: made.app)
            func admitted(_ calls: Int) async throws -> Int {
                var count = 0
                for _ in 0..<calls where try await app.request(.get, app.workspaceRead, token: token).status == .ok { count += 1 }
                return count
            }
            #expect(try await admitted(10) == 6, "a full bucket: twice --app-rate-limit")
            app.clock.advance(by: 1)
            #expect(try await admitted(10) == 3)
            app.clock.advance(by: 0.5)
            #expect(try await admitted(10) == 1, "1.5 tokens refilled: one call, half a token left")
            app.clock.advance(by: 60)
            #expect(try await admitted(10) == 6, "never more than the bucket holds")
            let answer = try await app.request(.get, app.workspaceRead, token: token)
            #expect(answer.headers[.rateLimitLimit] == "6")
        }
    }

    @Test("two processes on one database together stay within the limit (±10 %), and neither starves")
    func twoProcesses() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(rateLimit: 100)
            let token = try await app.accessToken(for: made.app)
            let path = app.workspaceRead
            try await app.otherProcess { other, client in
                // 2 simulated seconds in steps of 20 ms, each with 6 calls from each process at once:
                // 600 calls a second against a limit of 100.
                var counts = [0, 0]
                for _ in 0..<100 {
                    let admitted = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                        for _ in 0..<6 {
                            group.addTask { (0, try await app.client.get(path, token: token).status == .ok) }
                            group.addTask { (1, try await client.get(path, token: token).status == .ok) }
                        }
                        var admitted = [0, 0]
                        for try await (process, ok) in group where ok { admitted[process] += 1 }
                        return admitted
                    }
                    counts[0] += admitted[0]
                    counts[1] += admitted[1]
                    await app.services.appRateLimiter.returnIdle()
                    await other.appRateLimiter.returnIdle()
                    app.clock.advance(by: 0.02)
                }
                // A bucket of 200 and 2 s of refill at 100 a second.
                let expected = 200.0 + 100 * 2
                let total = Double(counts[0] + counts[1])
                #expect(abs(total - expected) <= expected * 0.1, "admitted \(counts) = \(total), expected \(expected) ± 10 %")
                #expect(counts[0] > 50 && counts[1] > 50, "each process got its part: \(counts)")
            }
        }
    }

    @Test("a burst of concurrent calls within the bucket is admitted whole: one lease serves every waiting call")
    func concurrentBurst() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(rateLimit: 50)
            let token = try await app.accessToken(for: made.app)
            let path = app.workspaceRead
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<100 { group.addTask { try await app.client.get(path, token: token).status } }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 100, "\(statuses.filter { $0 != .ok })")
            #expect(try await app.request(.get, path, token: token).status == .tooManyRequests)
        }
    }

    @Test("a share left unused goes back to the shared bucket")
    func idleShareReturns() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(rateLimit: 100)
            let token = try await app.accessToken(for: made.app)
            // Leases of 5 (a twentieth of a second at 100 a second): 11 for 52 calls, 3 tokens unspent.
            for _ in 0..<52 { #expect(try await app.request(.get, app.workspaceRead, token: token).status == .ok) }
            #expect(try await app.storedTokens(made.app.id) == 145)
            #expect(app.services.appRateLimiter.share(made.app.id)?.tokens == 3)
            await app.services.appRateLimiter.returnIdle()
            #expect(try await app.storedTokens(made.app.id) == 145, "not idle yet")
            app.clock.advance(by: AppRateLimiter.idleReturn)
            await app.services.appRateLimiter.returnIdle()
            // The 3 unspent, and 0.25 s of refill (25).
            #expect(try await app.storedTokens(made.app.id) == 173)
            #expect(app.services.appRateLimiter.share(made.app.id)?.tokens == 0)
        }
    }

    @Test("app.request entries: listed once the batcher flushes; a refused token is no app call")
    func requestEntries() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp("Ledger Sync", rateLimit: 1)
            let token = try await app.accessToken(for: made.app)
            #expect(try await app.request(.get, app.workspaceRead, token: token).status == .ok)
            #expect(try await app.request(.get, app.workspaceRead, token: token).status == .ok)
            #expect(try await app.request(.get, app.workspaceRead, token: token).status == .tooManyRequests)
            // A body refused before any service looked the token up is still the app's call.
            let malformed = try await app.request(.post, "\(app.workspaceRead)/records/work_order", token: token, json: "{")
            #expect(malformed.status == .badRequest || malformed.status == .unprocessableContent, "\(malformed.body)")
            #expect(malformed.headers[.rateLimitLimit] == "2")
            let stranger = TokenFormat.generate(prefix: "sya_live_")
            try await app.request(.get, app.workspaceRead, token: stranger).expectProblem(.unauthorized, "unauthenticated")

            let filter = ActivityFilter(action: "app.request")
            #expect(try await app.services.activity.list(filter).isEmpty, "nothing before the flush")
            try await app.services.activityBatcher.flush()
            let entries = try await app.services.activity.list(filter).reversed().map { $0 }
            let path = app.workspaceRead
            #expect(
                entries.map(\.detail) == [
                    "GET \(path) 200", "GET \(path) 200", "GET \(path) 429", "POST \(path)/records/work_order \(malformed.status.code)",
                ]
            )
            for entry in entries {
                #expect(entry.actorType == "app")
                #expect(entry.actorId == made.app.id)
                #expect(entry.actorLabel == "Ledger Sync")
                #expect(entry.appId == made.app.id)
                #expect(entry.workspaceId == app.liveWorkspace.id)
                #expect(entry.workspaceName == app.liveWorkspace.name)
                #expect(entry.requestId?.isEmpty == false)
            }
            #expect(entries.map(\.outcome) == [.success, .success, .failure, .failure])
            #expect(try await app.services.activity.list(ActivityFilter(appID: made.app.id)).count == 4)
            let refusals = try await app.services.activity.list(ActivityFilter(action: "api_token.rejected"))
            #expect(refusals.count == 1, "the stranger's token is recorded as a refusal, not as a call")
        }
    }

    @Test("the batcher writes many entries in one flush and drops beyond its capacity")
    func batcherCapacity() async throws {
        try await TestApp.run { app in
            let batcher = ActivityBatcher(database: app.database, capacity: 450, flushSize: 10_000, logger: TestDatabase.logger)
            let before = try await app.count("activity_entries")
            for index in 0..<500 {
                let now = app.clock.now
                batcher.add(
                    ActivityEntry(
                        id: ID.make("act", at: now),
                        occurredAt: now,
                        actorType: "app",
                        actorId: "app_x",
                        actorLabel: "X",
                        action: "app.request",
                        workspaceId: index.isMultiple(of: 2) ? app.liveWorkspace.id : nil,
                        appId: "app_x",
                        outcome: .success,
                        detail: "GET /v1/workspaces \(index)"
                    )
                )
            }
            #expect(batcher.counts == (waiting: 450, dropped: 50))
            try await batcher.flush()
            #expect(batcher.counts.waiting == 0)
            #expect(try await app.count("activity_entries") == before + 450)
            let named = try await app.services.activity.list(ActivityFilter(action: "app.request", workspaceID: app.liveWorkspace.id, limit: 500))
            #expect(named.count == 225)
            #expect(named.allSatisfy { $0.workspaceName == app.liveWorkspace.name })
        }
    }

    @Test("the workspace of a call is read from its path when no service noted it")
    func workspaceFromPath() {
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspaces/ws_01ABC/records/work_order/rec_1") == "ws_01ABC")
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspaces/ws_01ABC") == "ws_01ABC")
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspaces") == nil)
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspaces/ws_a%27b/records") == nil)
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/ping") == nil)
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspaces/") == nil)
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspacesws_01ABC") == nil)
        #expect(AppCallMiddleware.workspaceID(inPath: "/v2/workspaces/ws_01ABC") == nil)
        #expect(AppCallMiddleware.workspaceID(inPath: "/v1/workspaces/ws_" + String(repeating: "A", count: 62)) == nil)
    }

    @Test("an app's stored grants parse to the same permissions on every call, narrowed by the token's scope")
    func grantsFromStoredText() throws {
        let memo = AppTokenResolver.GrantMemo()
        let all = try memo.parsed(permissions: #"["work_order:read","events:read"]"#, scope: nil, workspaces: nil)
        #expect(all.permissions == ["work_order:read", "events:read"])
        #expect(all.workspaces == nil)
        let scoped = try memo.parsed(
            permissions: #"["work_order:read","events:read"]"#,
            scope: #"["events:read","webhooks:manage"]"#,
            workspaces: #"["ws_1"]"#
        )
        #expect(scoped.permissions == ["events:read"])
        #expect(scoped.workspaces == ["ws_1"])
        // The same text again, now from the memo; a changed grant is other text, parsed anew.
        #expect(try memo.parsed(permissions: #"["work_order:read","events:read"]"#, scope: nil, workspaces: nil).permissions == all.permissions)
        #expect(try memo.parsed(permissions: #"["events:read"]"#, scope: nil, workspaces: nil).permissions == ["events:read"])
    }
}

extension ActivityEntry {
    /// An entry with only what a test sets.
    init(
        id: String,
        occurredAt: Date,
        actorType: String,
        actorId: String?,
        actorLabel: String?,
        action: String,
        workspaceId: String?,
        appId: String?,
        outcome: Outcome,
        detail: String?
    ) {
        self.init(
            id: id,
            occurredAt: occurredAt,
            actorType: actorType,
            actorId: actorId,
            actorLabel: actorLabel,
            action: action,
            targetType: nil,
            targetId: nil,
            targetLabel: nil,
            workspaceId: workspaceId,
            workspaceName: nil,
            appId: appId,
            ip: nil,
            outcome: outcome,
            detail: detail,
            requestId: nil
        )
    }
}
