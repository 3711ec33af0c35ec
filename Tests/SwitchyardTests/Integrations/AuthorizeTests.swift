import Foundation
import Testing

@testable import Switchyard

/// The Authorize flow against a real token endpoint on loopback: the authorization URL, state and
/// PKCE, the callback's exchange, and every way it can fail (each a 400 page, a `last_error`, an
/// activity entry, and nothing half-stored).
@Suite("Authorize flow")
struct AuthorizeTests {
    @Test("the authorization URL carries the code flow's parameters, an S256 challenge and query_params; the state is stored hashed")
    func authorizationURL() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider) { auth in
                auth.queryParams = .object(["prompt": .string("consent"), "state": .string("not ours")])
                auth.scopeSeparator = ","
            }
            let path = "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)"
            let redirect = try await app.request(.get, path, token: app.ownerToken)
            #expect(redirect.status == .found)
            let location = try #require(redirect.headers[.location])
            #expect(location.hasPrefix(provider.authorizationURL + "?"))
            let query = try TestApp.query(of: location)
            #expect(query["response_type"] == "code")
            #expect(query["client_id"] == "client-1")
            #expect(query["redirect_uri"] == "http://127.0.0.1:8080/integrations/callback")
            #expect(query["scope"] == "read,write")
            #expect(query["code_challenge_method"] == "S256")
            #expect(query["prompt"] == "consent")
            let state = try #require(query["state"])
            #expect(state != "not ours" && state.count == 43)
            #expect(try #require(query["code_challenge"]).count == 43)

            let json = try await app.request(.get, path + "&format=json", token: app.ownerToken)
            #expect(json.status == .ok, "\(json.body)")
            #expect((json["authorization_url"] as? String)?.hasPrefix(provider.authorizationURL) == true)
            let connection = try await app.storedConnection(integration)
            #expect(json["connection_id"] as? String == connection.id)
            #expect(connection.status == .pendingAuthorization)

            // Only the hash of the state is kept, and the verifier is sealed.
            let rows = try await app.database.read { tx in try tx.query("SELECT * FROM authorize_states") }
            #expect(rows.count == 2)
            #expect(rows.contains { $0.optionalString("state_hash") == Hex.sha256(state) })
            #expect(!rows.contains { $0.optionalString("state_hash") == state })
            #expect(try await app.connectionActivity("connection.authorization_started").count == 2)

            let noPKCE = try await app.insertOAuthIntegration(provider, name: "Plain") { $0.pkce = false }
            let plain = try await app.request(
                .get,
                "/v1/integrations/\(noPKCE.id)/authorize?workspace=\(app.liveWorkspace.id)",
                token: app.ownerToken
            )
            #expect(try TestApp.query(of: try #require(plain.headers[.location]))["code_challenge"] == nil)
            await provider.shutdown()
        }
    }

    @Test("the callback exchanges the code with the PKCE verifier and stores sealed tokens: active, scopes, expiry, last_authorized_at")
    func callbackStoresTokens() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider, name: "Docs <&> Sign")
            let page = try await app.authorize(integration, provider: provider)
            #expect(page.status == .ok, "\(page.body)")
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.body.contains("Connected") && page.body.contains("Docs &lt;&amp;&gt; Sign") && page.body.contains("close this window"))

            let exchange = try #require(provider.requests(grant: "authorization_code").first)
            #expect(exchange.form["client_id"] == "client-1" && exchange.form["client_secret"] == "secret-1" && exchange.authorization == nil)
            #expect(exchange.form["redirect_uri"] == "http://127.0.0.1:8080/integrations/callback")
            #expect(exchange.form["code_verifier"]?.count == 43)

            let connection = try await app.storedConnection(integration)
            let answer = try await app.request(.get, "\(app.connectionsPath)/\(connection.id)", token: app.ownerToken)
            #expect(answer.status == .ok)
            #expect(answer["status"] as? String == "active")
            #expect(answer["scopes"] as? [String] == ["read", "write"])
            #expect(answer["expires_at"] as? String == RFC3339.format(app.clock.now.addingTimeInterval(3600)))
            #expect(answer["last_authorized_at"] as? String == RFC3339.format(app.clock.now))
            #expect(answer["last_error"] is NSNull)
            #expect(!answer.body.contains("at-") && !answer.body.contains("rt-"))

            // Sealed at rest: the stored bytes hold no token.
            let sealed = try await app.database.read { tx in try ConnectionStore.secrets(tx, id: connection.id) }
            #expect(!String(decoding: try #require(sealed), as: UTF8.self).contains("at-"))
            let credentials = try await app.services.connections.credentials(connectionID: connection.id)
            #expect(credentials.secrets.objectValue?["access_token"]?.stringValue.map(provider.isValid(accessToken:)) == true)
            #expect(credentials.secrets.objectValue?["refresh_token"] != nil)
            let entries = try await app.connectionActivity("connection.authorized")
            #expect(entries.count == 1)
            #expect(entries.first?.optionalString("actor_type") == "api_token")
            await provider.shutdown()
        }
    }

    @Test("client_secret_basic sends the client in the Authorization header, not the body")
    func clientSecretBasic() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            provider.update { $0.method = "client_secret_basic" }
            let integration = try await app.insertOAuthIntegration(provider) { $0.tokenAuthMethod = .clientSecretBasic }
            let page = try await app.authorize(integration, provider: provider)
            #expect(page.status == .ok, "\(page.body)")
            let exchange = try #require(provider.requests.first)
            #expect(exchange.authorization?.hasPrefix("Basic ") == true)
            #expect(exchange.form["client_secret"] == nil)
            await provider.shutdown()
        }
    }

    @Test("a state works once: the replayed callback is a 400 page, recorded, and the tokens stay")
    func replayedState() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            let start = try await app.request(
                .get,
                "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)&format=json",
                token: app.ownerToken
            )
            let query = try TestApp.query(of: try #require(start["authorization_url"] as? String))
            let code = provider.issueCode(challenge: query["code_challenge"], redirectURI: try #require(query["redirect_uri"]))
            let parameters = ["code": code, "state": try #require(query["state"])]
            #expect(try await app.callback(parameters).status == .ok)
            let tokens = try await app.services.connections.credentials(connectionID: try await app.storedConnection(integration).id).secrets

            let replay = try await app.callback(parameters)
            #expect(replay.status == .badRequest)
            #expect(replay.body.contains("used already"))
            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .active)
            #expect(connection.lastError?.message.contains("used already") == true)
            #expect(try await app.services.connections.credentials(connectionID: connection.id).secrets == tokens)
            #expect(provider.requests.count == 1)
            let failed = try await app.connectionActivity("connection.authorization_failed")
            #expect(failed.count == 1 && failed.first?.optionalString("outcome") == "failure")
            await provider.shutdown()
        }
    }

    @Test("a state expires after 10 minutes; a missing or unknown state names no connection and is recorded")
    func expiredAndUnknownStates() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            let start = try await app.request(
                .get,
                "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)&format=json",
                token: app.ownerToken
            )
            #expect(start["expires_at"] as? String == RFC3339.format(app.clock.now.addingTimeInterval(600)))
            let query = try TestApp.query(of: try #require(start["authorization_url"] as? String))
            app.clock.advance(by: 601)
            let late = try await app.callback(["code": "whatever", "state": try #require(query["state"])])
            #expect(late.status == .badRequest && late.body.contains("expired"))
            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .pendingAuthorization)
            #expect(connection.lastError?.message.contains("10 minutes") == true)
            #expect(provider.requests.isEmpty)

            let unknown = try await app.callback(["code": "c", "state": "forged"])
            #expect(unknown.status == .badRequest && unknown.body.contains("Unknown state"))
            let missing = try await app.request(.get, "/integrations/callback?code=c")
            #expect(missing.status == .badRequest && missing.body.contains("No state"))
            #expect(try await app.connectionActivity("connection.callback_refused").count == 2)
            #expect(try await app.request(.get, "/healthz").status == .ok)
            await provider.shutdown()
        }
    }

    @Test("error=access_denied leaves the connection as it was, with last_error and an activity entry")
    func accessDenied() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            let start = try await app.request(
                .get,
                "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)&format=json",
                token: app.ownerToken
            )
            let url = try #require(start["authorization_url"] as? String)
            let state = try #require(try TestApp.query(of: url)["state"])
            let page = try await app.callback(["error": "access_denied", "error_description": "The user said <no>", "state": state])
            #expect(page.status == .badRequest)
            #expect(page.body.contains("Access denied") && page.body.contains("The user said &lt;no&gt;"))
            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .pendingAuthorization)
            #expect(connection.lastError?.message.contains("access_denied") == true)
            #expect(try await app.database.read { tx in try ConnectionStore.secrets(tx, id: connection.id) } == nil)
            #expect(
                try await app.connectionActivity("connection.authorization_failed").first?.optionalString("detail")?.contains("access_denied") == true
            )
            #expect(provider.requests.isEmpty)
            await provider.shutdown()
        }
    }

    @Test("a replayed code (invalid_grant) stores nothing: the first authorization's tokens stay")
    func replayedCode() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            func start() async throws -> [String: String] {
                let answer = try await app.request(
                    .get,
                    "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)&format=json",
                    token: app.ownerToken
                )
                return try TestApp.query(of: try #require(answer["authorization_url"] as? String))
            }
            let first = try await start()
            let code = provider.issueCode(challenge: first["code_challenge"], redirectURI: try #require(first["redirect_uri"]))
            #expect(try await app.callback(["code": code, "state": try #require(first["state"])]).status == .ok)
            let connection = try await app.storedConnection(integration)
            let tokens = try await app.services.connections.credentials(connectionID: connection.id).secrets

            let second = try await start()
            let page = try await app.callback(["code": code, "state": try #require(second["state"])])
            #expect(page.status == .badRequest)
            #expect(page.body.contains("invalid_grant") && page.body.contains("used already"))
            let after = try await app.storedConnection(integration)
            #expect(after.status == .active && after.lastError?.message.contains("invalid_grant") == true)
            #expect(try await app.services.connections.credentials(connectionID: connection.id).secrets == tokens)
            await provider.shutdown()
        }
    }

    @Test("a token endpoint answering HTML, an error JSON with a 500, or nothing at all: a clear page, nothing stored, the server healthy")
    func tokenEndpointFailures() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            provider.enqueue(
                .respond(status: 200, contentType: "text/html", body: "<html><head><title>Sign in to Acme</title></head><body>…</body></html>")
            )
            let html = try await app.authorize(integration, provider: provider)
            #expect(html.status == .badRequest)
            #expect(html.body.contains("not JSON") && html.body.contains("Sign in to Acme"), "\(html.body)")

            provider.enqueue(.respond(status: 500, contentType: "application/json", body: #"{"error":"server_error","error_description":"db down"}"#))
            let broken = try await app.authorize(integration, provider: provider)
            #expect(broken.status == .badRequest && broken.body.contains("server_error: db down"), "\(broken.body)")

            provider.enqueue(.respond(status: 200, contentType: "application/json", body: #"{"token":"x"}"#))
            let shapeless = try await app.authorize(integration, provider: provider)
            #expect(shapeless.status == .badRequest && shapeless.body.contains("access_token"), "\(shapeless.body)")

            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .pendingAuthorization)
            #expect(try await app.database.read { tx in try ConnectionStore.secrets(tx, id: connection.id) } == nil)
            #expect(try await app.connectionActivity("connection.authorization_failed").count == 3)

            // The provider is gone: its port refuses connections.
            await provider.shutdown()
            let offline = try await app.authorize(integration, provider: provider)
            #expect(offline.status == .badRequest && offline.body.contains("did not answer"), "\(offline.body)")
            #expect(try await app.storedConnection(integration).lastError?.message.contains("did not answer") == true)
            #expect(try await app.request(.get, "/healthz").status == .ok)
        }
    }

    @Test("authorizing again replaces the tokens: the seed's change the password, authorize again")
    func reauthorize() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            #expect(try await app.authorize(integration, provider: provider).status == .ok)
            let connection = try await app.storedConnection(integration)
            let old = try await app.services.connections.credentials(connectionID: connection.id).secrets
            provider.revokeEverything()
            app.clock.advance(by: 60)
            #expect(try await app.authorize(integration, provider: provider).status == .ok)
            let again = try await app.storedConnection(integration)
            #expect(again.id == connection.id && again.status == .active)
            #expect(again.lastAuthorizedAt?.millisecondsSince1970 == app.clock.now.millisecondsSince1970)
            let new = try await app.services.connections.credentials(connectionID: connection.id).secrets
            #expect(new != old)
            #expect(new.objectValue?["access_token"]?.stringValue.map(provider.isValid(accessToken:)) == true)
            #expect(try await app.connectionActivity("connection.authorized").count == 2)
            await provider.shutdown()
        }
    }

    @Test("who may authorize, and what cannot be authorized")
    func authorizeRefusals() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            let path = "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)"
            let member = try await app.makeUser("member@example.com", role: .member)
            let developer = try await app.makeUser("dev@example.com", role: .developer)
            let admin = try await app.makeUser("ia@example.com", role: .integrationAdmin)
            (try await app.request(.get, path, token: member.token)).expectProblem(.forbidden, "forbidden")
            (try await app.request(.get, path, token: developer.token)).expectProblem(.forbidden, "forbidden")
            #expect(try await app.request(.get, path, token: admin.token).status == .found)
            (try await app.request(.get, path)).expectProblem(.unauthorized, "unauthenticated")
            (try await app.request(.get, "/v1/integrations/\(integration.id)/authorize", token: app.ownerToken))
                .expectProblem(.unprocessableContent, "validation-failed", field: "workspace")
            (try await app.request(.get, path + "&format=xml", token: app.ownerToken))
                .expectProblem(.unprocessableContent, "validation-failed", field: "format")
            (try await app.request(
                .get,
                "/v1/integrations/int_01JD8Q3Z5C4V7N2M8K6H1G0F9E/authorize?workspace=\(app.liveWorkspace.id)",
                token: app.ownerToken
            ))
            .expectProblem(.notFound, "not-found")
            (try await app.request(.get, "/v1/integrations/\(integration.id)/authorize?workspace=ws_nope", token: app.ownerToken))
                .expectProblem(.notFound, "not-found")

            let keyed = try await app.insertIntegration(name: "Keyed", auth: AuthSpec(type: .apiKey))
            let refused = try await app.request(
                .get,
                "/v1/integrations/\(keyed.id)/authorize?workspace=\(app.liveWorkspace.id)",
                token: app.ownerToken
            )
            refused.expectProblem(.unprocessableContent, "validation-failed")
            #expect((refused["detail"] as? String)?.contains("POST /v1/workspaces/") == true)
            let machine = try await app.insertOAuthIntegration(provider, name: "Machine") { $0.grant = .clientCredentials }
            (try await app.request(.get, "/v1/integrations/\(machine.id)/authorize?workspace=\(app.liveWorkspace.id)", token: app.ownerToken))
                .expectProblem(.unprocessableContent, "validation-failed")
            #expect(try await app.count("connections") == 1)
            await provider.shutdown()
        }
    }

    @Test("deleting the connection ends its authorization under way")
    func deletedConnection() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider)
            let start = try await app.request(
                .get,
                "/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)&format=json",
                token: app.ownerToken
            )
            let id = try #require(start["connection_id"] as? String)
            #expect(try await app.request(.delete, "\(app.connectionsPath)/\(id)", token: app.ownerToken).status == .noContent)
            let url = try #require(start["authorization_url"] as? String)
            let state = try #require(try TestApp.query(of: url)["state"])
            let page = try await app.callback(["code": "c", "state": state])
            #expect(page.status == .badRequest && page.body.contains("Unknown state"))
            #expect(try await app.count("connections") == 0)
            await provider.shutdown()
        }
    }
}
