import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

@Suite("OAuth revocation, introspection and throttling")
struct OAuthRevocationTests {
    @Test("introspection shows the app's own live tokens only")
    func introspect() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(permissions: ["events:read", "webhooks:manage"])
            let other = try await app.makeApp("Other Ledger", permissions: ["events:read"])
            let token = try await app.issuedToken(made, scope: "events:read")
            let othersToken = try await app.issuedToken(other)
            let basic = (made.app.clientId, try #require(made.clientSecret))

            let own = try await app.form("/oauth/introspect", [("token", token)], basic: basic)
            #expect(own.status == .ok, "body: \(own.body)")
            #expect(own.headers[.cacheControl] == "no-store")
            #expect(own["active"] as? Bool == true)
            #expect(own["scope"] as? String == "events:read")
            #expect(own["client_id"] as? String == made.app.clientId)
            #expect(own["token_type"] as? String == "Bearer")
            let exp = try #require(own["exp"] as? Int)
            #expect(exp == Int(app.clock.now.timeIntervalSince1970 + 3600))

            // Another app's token, an unknown one and junk all look the same: inactive, nothing else.
            for probe in [othersToken, TokenFormat.generate(prefix: "sya_live_"), "junk"] {
                let answer = try await app.form("/oauth/introspect", [("token", probe)], basic: basic)
                #expect(answer.status == .ok)
                #expect(answer.json.count == 1 && answer["active"] as? Bool == false, "body: \(answer.body)")
            }
            // By client_secret_post too; and an expired token is inactive.
            let posted = try await app.form(
                "/oauth/introspect",
                [("token", othersToken), ("client_id", other.app.clientId), ("client_secret", try #require(other.clientSecret))]
            )
            #expect(posted["active"] as? Bool == true)
            app.clock.advance(by: 3600)
            #expect(try await app.form("/oauth/introspect", [("token", token)], basic: basic)["active"] as? Bool == false)

            try await app.form("/oauth/introspect", [("token", token)]).expectOAuthError(.unauthorized, "invalid_client")
            try await app.form("/oauth/introspect", [], basic: basic).expectOAuthError(.badRequest, "invalid_request")
        }
    }

    @Test("a revoked token is refused on the next call; another app's token cannot be revoked, with the same 200")
    func revoke() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let other = try await app.makeApp("Other Ledger")
            let token = try await app.issuedToken(made)
            let othersToken = try await app.issuedToken(other)
            let basic = (made.app.clientId, try #require(made.clientSecret))

            // The ping is the lead's route for apps; until it serves them, an app gets 403, not 401.
            #expect(try await app.request(.get, "/v1/ping", token: token).status != .unauthorized)
            let notMine = try await app.form("/oauth/revoke", [("token", othersToken), ("token_type_hint", "access_token")], basic: basic)
            #expect(notMine.status == .ok)
            #expect(try await app.appPrincipal(othersToken) != nil)
            #expect(try await app.form("/oauth/revoke", [("token", "junk")], basic: basic).status == .ok)

            let revoked = try await app.form("/oauth/revoke", [("token", token)], basic: basic)
            #expect(revoked.status == .ok)
            #expect(revoked.body.isEmpty)
            try await app.request(.get, "/v1/ping", token: token).expectProblem(.unauthorized, "unauthenticated")
            #expect(try await app.appPrincipal(token) == nil)
            // Again: harmless, and logged once.
            #expect(try await app.form("/oauth/revoke", [("token", token)], basic: basic).status == .ok)
            let entries = try await app.activity("app.token_revoked")
            #expect(entries.count == 1)
            #expect(entries.first?.actorId == made.app.id)

            try await app.form("/oauth/revoke", [("token", othersToken)], basic: (made.app.clientId, TokenFormat.generate(prefix: "syc_")))
                .expectOAuthError(.unauthorized, "invalid_client")
            try await app.form("/oauth/revoke", [], basic: basic).expectOAuthError(.badRequest, "invalid_request")
            #expect(try await app.appPrincipal(othersToken) != nil)
        }
    }

    @Test("wrong secrets are throttled per client id and address, right ones too once throttled, until the window passes")
    func throttle() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let grant = [("grant_type", "client_credentials")]
            let right = (made.app.clientId, try #require(made.clientSecret))
            // Refusals with the right secret are no wrong guesses: they never throttle.
            for _ in 0...OAuthThrottle.failuresPerClient {
                try await app.form("/oauth/token", grant + [("scope", "webhooks:manage")], basic: right)
                    .expectOAuthError(.badRequest, "invalid_scope")
            }
            _ = try await app.issuedToken(made)
            let wrong = (made.app.clientId, TokenFormat.generate(prefix: "syc_"))
            for _ in 0..<OAuthThrottle.failuresPerClient {
                try await app.form("/oauth/token", grant, basic: wrong).expectOAuthError(.unauthorized, "invalid_client")
            }
            for credentials in [wrong, right] {
                let throttled = try await app.form("/oauth/token", grant, basic: credentials)
                throttled.expectOAuthError(.tooManyRequests, "temporarily_unavailable")
                let seconds = try #require(throttled.headers[.retryAfter].flatMap { Int($0) })
                #expect(seconds > 0 && seconds <= Int(OAuthThrottle.window))
            }
            // Another client id is not throttled by this one's failures.
            let other = try await app.makeApp("Other Ledger")
            _ = try await app.issuedToken(other)
            let throttled = try await app.activity("app.token_refused").filter { $0.detail?.lowercased().contains("too many") == true }
            #expect(!throttled.isEmpty)

            app.clock.advance(by: OAuthThrottle.window + 1)
            _ = try await app.issuedToken(made)
        }
    }

    @Test("many parallel requests with the right secret are never throttled")
    func parallel() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<(3 * OAuthThrottle.failuresPerAddress) { group.addTask { try await app.issuedToken(made) } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(tokens.count == 3 * OAuthThrottle.failuresPerAddress)
        }
    }

    @Test("the throttle counts every process's failures from the activity log")
    func throttleAcrossProcesses() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let wrong = (made.app.clientId, TokenFormat.generate(prefix: "syc_"))
            for _ in 0..<OAuthThrottle.failuresPerClient {
                try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: wrong)
                    .expectOAuthError(.unauthorized, "invalid_client")
            }
            // A second process over the same database has seen none of them; the same address asks it.
            let ip = try await app.activity("app.token_refused").first?.ip
            let audit = AuditContext(actorType: "anonymous", actorID: nil, actorLabel: nil, appID: nil, ip: ip, requestID: nil)
            let second = OAuthService(database: app.database, clock: app.clock, activity: app.services.activity, publicURL: "http://x")
            let request = OAuthRequest(
                parameters: ["grant_type": "client_credentials"],
                client: ClientCredentials(clientID: wrong.0, secret: wrong.1, method: .basic)
            )
            do {
                _ = try await second.issueToken(request, audit: audit)
                Issue.record("the second process issued a token")
            } catch let error as OAuthError {
                #expect(error.error == "temporarily_unavailable")
            }
        }
    }
}
