import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import Switchyard

extension TestApp {
    /// A form-encoded POST, as OAuth clients send them; `basic` authenticates with HTTP Basic.
    func form(
        _ path: String,
        _ parameters: [(String, String)],
        basic: (id: String, secret: String)? = nil,
        contentType: String = "application/x-www-form-urlencoded"
    ) async throws -> TestResponse {
        let body = parameters.map { "\(OAuthTestSupport.encode($0.0))=\(OAuthTestSupport.encode($0.1))" }.joined(separator: "&")
        return try await raw(path, body, basic: basic, contentType: contentType)
    }

    func raw(
        _ path: String,
        _ body: String,
        basic: (id: String, secret: String)? = nil,
        contentType: String? = "application/x-www-form-urlencoded"
    )
        async throws -> TestResponse
    {
        var headers: HTTPFields = [:]
        if let contentType { headers[.contentType] = contentType }
        if let basic { headers[.authorization] = "Basic " + Data("\(basic.id):\(basic.secret)".utf8).base64EncodedString() }
        let response = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
        return TestResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    /// A token for `made` by client_secret_basic; `scope` narrows it.
    func issuedToken(_ made: MadeApp, scope: String? = nil) async throws -> String {
        let secret = try #require(made.clientSecret)
        var parameters = [("grant_type", "client_credentials")]
        if let scope { parameters.append(("scope", scope)) }
        let answer = try await form("/oauth/token", parameters, basic: (made.app.clientId, secret))
        #expect(answer.status == .ok, "body: \(answer.body)")
        return try #require(answer["access_token"] as? String)
    }

    /// What the token resolves to, as the API's authentication sees it.
    func appPrincipal(_ token: String) async throws -> AppPrincipal? {
        let caller = Caller(credentials: .bearer(token), audit: .system("test"))
        guard case .app(let app) = try? await services.authenticator.principal(caller) else { return nil }
        return app
    }

    func activity(_ action: String) async throws -> [ActivityEntry] {
        try await services.activity.list(ActivityFilter(action: action, limit: 200))
    }
}

enum OAuthTestSupport {
    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

extension TestResponse {
    /// Asserts RFC 6749's error JSON: status, `error`, a description, and never cached.
    func expectOAuthError(_ status: HTTPResponse.Status, _ error: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self.status == status, "body: \(body)", sourceLocation: sourceLocation)
        #expect(headers[.contentType] == "application/json", sourceLocation: sourceLocation)
        #expect(headers[.cacheControl] == "no-store", sourceLocation: sourceLocation)
        #expect(json["error"] as? String == error, "body: \(body)", sourceLocation: sourceLocation)
        #expect((json["error_description"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        if status == .unauthorized {
            #expect(headers[.wwwAuthenticate] == "Basic realm=\"switchyard\"", sourceLocation: sourceLocation)
        }
    }
}

@Suite("OAuth token endpoint")
struct OAuthTests {
    @Test("client_secret_basic gets a live token of one hour that authenticates as the app, in the activity log")
    func basic() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(permissions: ["events:read"])
            let secret = try #require(made.clientSecret)
            let answer = try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: (made.app.clientId, secret))
            #expect(answer.status == .ok, "body: \(answer.body)")
            #expect(answer.headers[.cacheControl] == "no-store")
            let token = try #require(answer["access_token"] as? String)
            #expect(token.hasPrefix("sya_live_"))
            #expect(TokenFormat.isWellFormed(token, prefixes: AppTokenResolver.prefixes))
            #expect(answer["token_type"] as? String == "Bearer")
            #expect(answer["expires_in"] as? Int == 3600)
            #expect(answer["scope"] as? String == "events:read")

            let principal = try #require(try await app.appPrincipal(token))
            #expect(principal.id == made.app.id)
            #expect(principal.permissions == ["events:read"])

            let issued = try await app.activity("app.token_issued")
            #expect(issued.count == 1)
            #expect(issued.first?.actorType == "app")
            #expect(issued.first?.targetId == made.app.id)
            #expect(issued.first?.targetLabel == made.app.name)
            #expect(issued.first?.appId == made.app.id)
            // Only hashes are kept, and no secret reaches the log.
            let stored = try await app.database.read { tx in try tx.query("SELECT * FROM app_tokens") }
            #expect(stored.first?["secret_hash"] == .text(TokenFormat.hash(token)))
            let logged = try await app.database.read { tx in try tx.query("SELECT * FROM activity_entries") }.flatMap(\.values)
            #expect(!logged.contains { value in "\(value)".contains(token) || "\(value)".contains(secret) })
        }
    }

    @Test("client_secret_post gets a test token for a test app")
    func post() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(mode: .test, permissions: ["events:read"])
            let answer = try await app.form(
                "/oauth/token",
                [("grant_type", "client_credentials"), ("client_id", made.app.clientId), ("client_secret", try #require(made.clientSecret))]
            )
            #expect(answer.status == .ok, "body: \(answer.body)")
            let token = try #require(answer["access_token"] as? String)
            #expect(token.hasPrefix("sya_test_"))
            #expect(try await app.appPrincipal(token)?.mode == .test)
        }
    }

    @Test("scope narrows the token to a subset of the app's permissions; anything else is invalid_scope and writes nothing")
    func scope() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp(permissions: ["work_order:read", "events:read", "webhooks:manage"])
            let token = try await app.issuedToken(made, scope: "events:read  work_order:read events:read")
            #expect(try await app.appPrincipal(token)?.permissions == ["events:read", "work_order:read"])

            let secret = try #require(made.clientSecret)
            let refused = try await app.form(
                "/oauth/token",
                [("grant_type", "client_credentials"), ("scope", "events:read work_order:delete")],
                basic: (made.app.clientId, secret)
            )
            refused.expectOAuthError(.badRequest, "invalid_scope")
            #expect((refused["error_description"] as? String)?.contains("work_order:delete") == true)
            #expect(try await app.count("app_tokens") == 1)
            try await app.form(
                "/oauth/token",
                [("grant_type", "client_credentials"), ("scope", "events:read\u{7F}")],
                basic: (made.app.clientId, secret)
            )
            .expectOAuthError(.badRequest, "invalid_scope")
            #expect(try await app.activity("app.token_refused").contains { $0.detail == "scope not granted: work_order:delete" })
        }
    }

    @Test("a wrong secret or an unknown client id is invalid_client with a Basic challenge, logged without the secret")
    func wrongCredentials() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let wrong = TokenFormat.generate(prefix: "syc_")
            try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: (made.app.clientId, wrong))
                .expectOAuthError(.unauthorized, "invalid_client")
            try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: (made.app.clientId, "not-a-secret"))
                .expectOAuthError(.unauthorized, "invalid_client")
            // Another app's secret is no secret of this one.
            let other = try await app.makeApp("Other Ledger")
            try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: (made.app.clientId, try #require(other.clientSecret)))
                .expectOAuthError(.unauthorized, "invalid_client")
            let unknown = try await app.form(
                "/oauth/token",
                [("grant_type", "client_credentials")],
                basic: (ID.make("cid"), try #require(made.clientSecret))
            )
            unknown.expectOAuthError(.unauthorized, "invalid_client")
            // No credentials at all, another scheme, or something that is no client id.
            try await app.form("/oauth/token", [("grant_type", "client_credentials")]).expectOAuthError(.unauthorized, "invalid_client")
            try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: (wrong, wrong))
                .expectOAuthError(.unauthorized, "invalid_client")

            let refused = try await app.activity("app.token_refused")
            #expect(refused.filter { $0.detail == "wrong client secret" && $0.targetId == made.app.id }.count == 3)
            #expect(refused.contains { $0.detail == "unknown client id" })
            #expect(refused.allSatisfy { $0.outcome == .failure })
            let logged = try await app.database.read { tx in try tx.query("SELECT * FROM activity_entries") }.flatMap(\.values)
            #expect(!logged.contains { "\($0)".contains(wrong) || "\($0)".contains(made.clientSecret ?? "-") })
            #expect(try await app.count("app_tokens") == 0)
        }
    }

    @Test("only client_credentials is granted; a request without grant_type is invalid_request")
    func grantTypes() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let basic = (made.app.clientId, try #require(made.clientSecret))
            try await app.form("/oauth/token", [("grant_type", "authorization_code"), ("code", "x")], basic: basic)
                .expectOAuthError(.badRequest, "unsupported_grant_type")
            try await app.form("/oauth/token", [("grant_type", "password")], basic: basic).expectOAuthError(.badRequest, "unsupported_grant_type")
            try await app.form("/oauth/token", [("scope", "events:read")], basic: basic).expectOAuthError(.badRequest, "invalid_request")
            #expect(try await app.count("app_tokens") == 0)
            #expect(try await app.activity("app.token_refused").contains { $0.detail?.hasPrefix("unsupported_grant_type") == true })
        }
    }

    @Test("malformed requests are invalid_request saying what to fix, and never quote a secret")
    func malformed() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let id = made.app.clientId
            let secret = try #require(made.clientSecret)
            let grant = "grant_type=client_credentials"
            let refusals: [TestResponse] = [
                try await app.raw("/oauth/token", #"{"grant_type": "client_credentials"}"#, basic: (id, secret), contentType: "application/json"),
                try await app.raw("/oauth/token", grant, basic: (id, secret), contentType: nil),
                try await app.raw("/oauth/token", "\(grant)&grant_type=client_credentials", basic: (id, secret)),
                try await app.raw("/oauth/token", "\(grant)&scope=%zz", basic: (id, secret)),
                try await app.raw("/oauth/token", "\(grant)&client_secret=\(secret)", basic: (id, secret)),
                try await app.raw("/oauth/token", "\(grant)&client_id=\(ID.make("cid"))", basic: (id, secret)),
                try await app.raw("/oauth/token", "\(grant)&client_secret=\(secret)"),
                try await app.raw("/oauth/token?client_secret=\(secret)", "\(grant)&client_id=\(id)"),
                try await app.raw("/oauth/token", "\(grant)&x=%00", basic: (id, secret)),
            ]
            for refusal in refusals {
                refusal.expectOAuthError(.badRequest, "invalid_request")
                #expect(!refusal.body.contains(secret))
            }
            try await app.raw("/oauth/token", "\(grant)&scope=" + String(repeating: "a", count: 20_000), basic: (id, secret))
                .expectProblem(.contentTooLarge, "body-too-large")
            var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .authorization: "Basic not*base64"]
            let badBasic = try await app.client.execute(uri: "/oauth/token", method: .post, headers: headers, body: ByteBuffer(string: grant))
            #expect(badBasic.status == .badRequest)
            headers[.authorization] = "Bearer \(secret)"
            let bearer = try await app.client.execute(uri: "/oauth/token", method: .post, headers: headers, body: ByteBuffer(string: grant))
            #expect(bearer.status == .unauthorized)
            #expect(!String(buffer: bearer.body).contains(secret))
            #expect(try await app.count("app_tokens") == 0)
            // A malformed body still authenticates nobody, and the form is accepted with a charset.
            let charset = try await app.raw(
                "/oauth/token",
                grant,
                basic: (id, secret),
                contentType: "application/x-www-form-urlencoded; charset=UTF-8"
            )
            #expect(charset.status == .ok, "body: \(charset.body)")
        }
    }

    @Test("a revoked app is invalid_client; a pending one gets no token even with a secret; both invalid_client")
    func appStatus() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let token = try await app.issuedToken(made)
            let now = app.clock.now
            try await app.database.write { tx in
                var revoked = made.app
                revoked.status = .revoked
                revoked.revokedAt = now
                try AppStore.update(tx, revoked)
                try AppCredentialStore.revokeAll(tx, appID: made.app.id, at: now)
            }
            let refused = try await app.form(
                "/oauth/token",
                [("grant_type", "client_credentials")],
                basic: (made.app.clientId, made.clientSecret ?? "")
            )
            refused.expectOAuthError(.unauthorized, "invalid_client")
            #expect((refused["error_description"] as? String)?.contains("revoked") == true)
            #expect(try await app.appPrincipal(token) == nil)

            let pending = try await app.makeApp("Pending Ledger", verified: false)
            let secret = TokenFormat.generate(prefix: "syc_")
            try await app.database.write { tx in
                try AppCredentialStore.insertSecret(
                    tx,
                    AppSecret(id: ID.make("sec"), appId: pending.app.id, lastFour: String(secret.suffix(4)), createdAt: now),
                    secretHash: TokenFormat.hash(secret)
                )
            }
            try await app.form("/oauth/token", [("grant_type", "client_credentials")], basic: (pending.app.clientId, secret))
                .expectOAuthError(.unauthorized, "invalid_client")
            #expect(try await app.count("app_tokens") == 1)
        }
    }

    @Test("a token expires after an hour; the secret's last use is written at most once a minute")
    func expiryAndLastUse() async throws {
        try await TestApp.run { app in
            let made = try await app.makeApp()
            let token = try await app.issuedToken(made)
            let lastUsed = { @Sendable in
                try await app.database.read { tx in try AppCredentialStore.secrets(tx, appID: made.app.id).first?.lastUsedAt }
            }
            let first = try #require(try await lastUsed())
            app.clock.advance(by: 30)
            _ = try await app.issuedToken(made)
            #expect(try await lastUsed() == first)
            app.clock.advance(by: 31)
            _ = try await app.issuedToken(made)
            #expect(try await lastUsed()?.millisecondsSince1970 == app.clock.now.millisecondsSince1970)

            #expect(try await app.appPrincipal(token) != nil)
            app.clock.advance(by: 3600 - 61)
            #expect(try await app.appPrincipal(token) == nil)
            try await app.request(.get, "/v1/ping", token: token).expectProblem(.unauthorized, "unauthenticated")
        }
    }

    @Test("metadata names the endpoints and methods, with the public URL as issuer")
    func metadata() async throws {
        try await TestApp.run(configure: { $0.publicURL = "https://hub.example.com" }) { app in
            let answer = try await app.request(.get, "/.well-known/oauth-authorization-server")
            #expect(answer.status == .ok)
            #expect(answer["issuer"] as? String == "https://hub.example.com")
            #expect(answer["token_endpoint"] as? String == "https://hub.example.com/oauth/token")
            #expect(answer["revocation_endpoint"] as? String == "https://hub.example.com/oauth/revoke")
            #expect(answer["introspection_endpoint"] as? String == "https://hub.example.com/oauth/introspect")
            #expect(answer["grant_types_supported"] as? [String] == ["client_credentials"])
            #expect(answer["token_endpoint_auth_methods_supported"] as? [String] == ["client_secret_basic", "client_secret_post"])
        }
    }
}
