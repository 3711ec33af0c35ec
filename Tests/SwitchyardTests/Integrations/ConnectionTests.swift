import Foundation
import Testing

@testable import Switchyard

/// `POST/GET/DELETE /v1/workspaces/{ws}/connections`: credentials checked by running the auth
/// once, nothing stored when the check fails, one connection per integration and workspace,
/// credentials never shown.
@Suite("Connections")
struct ConnectionTests {
    @Test("an API key connects (201), is never shown, and connecting again replaces it (200)")
    func apiKey() async throws {
        try await TestApp.runWithProviders { app in
            let integration = try await app.insertIntegration(auth: AuthSpec(type: .apiKey))
            let body = #"{"integration": "\#(integration.id)", "credentials": {"api_key": "k-secret-1"}}"#
            let created = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: body)
            #expect(created.status == .created, "\(created.body)")
            #expect(created["status"] as? String == "active" && created["auth_type"] as? String == "api_key")
            #expect(created["integration_name"] as? String == "Provider")
            #expect(created["last_authorized_at"] as? String == RFC3339.format(app.clock.now))
            for key in ["scopes", "expires_at", "last_refreshed_at", "last_error"] { #expect(created[key] is NSNull, "\(key)") }
            #expect(!created.body.contains("k-secret-1"))
            let id = try #require(created["id"] as? String)
            #expect(id.hasPrefix("con_"))

            app.clock.advance(by: 5)
            let replaced = try await app.request(
                .post,
                app.connectionsPath,
                token: app.ownerToken,
                json: #"{"integration": "\#(integration.id)", "credentials": {"api_key": "k-secret-2"}}"#
            )
            #expect(replaced.status == .ok && replaced["id"] as? String == id, "\(replaced.body)")
            #expect(replaced["last_authorized_at"] as? String == RFC3339.format(app.clock.now))
            #expect(try await app.count("connections") == 1)
            let credentials = try await app.services.connections.credentials(connectionID: id)
            #expect(credentials.secrets == .object(["api_key": .string("k-secret-2")]))
            let sealed = try await app.database.read { tx in try ConnectionStore.secrets(tx, id: id) }
            #expect(!String(decoding: try #require(sealed), as: UTF8.self).contains("k-secret"))

            let read = try await app.request(.get, "\(app.connectionsPath)/\(id)", token: app.ownerToken)
            #expect(read.status == .ok && !read.body.contains("k-secret"))
            let entries = try await app.connectionActivity("connection.authorized")
            #expect(entries.count == 2 && !entries.contains { ($0.optionalString("detail") ?? "").contains("k-secret") })
        }
    }

    @Test("credentials of the wrong shape are a 422 naming the member, and nothing is stored")
    func badCredentials() async throws {
        try await TestApp.runWithProviders { app in
            let keyed = try await app.insertIntegration(name: "Keyed", auth: AuthSpec(type: .apiKey))
            let basic = try await app.insertIntegration(name: "Basic", auth: AuthSpec(type: .basic))
            let open = try await app.insertIntegration(name: "Open", auth: AuthSpec(type: .none))
            let cases: [(String, String?)] = [
                (#"{"integration": "\#(keyed.id)"}"#, "credentials.api_key"),
                (#"{"integration": "\#(keyed.id)", "credentials": {"api_key": ""}}"#, "credentials.api_key"),
                (#"{"integration": "\#(keyed.id)", "credentials": {"api_key": 5}}"#, "credentials.api_key"),
                (#"{"integration": "\#(keyed.id)", "credentials": {"api_key": "k", "other": "x"}}"#, "credentials.other"),
                (#"{"integration": "\#(basic.id)", "credentials": {"username": "ada"}}"#, "credentials.password"),
                (#"{"integration": "\#(open.id)", "credentials": {"token": "x"}}"#, "credentials.token"),
                (#"{"integration": "\#(keyed.id)", "credentials": ["k"]}"#, "credentials"),
                (#"{"integration": "int_01JD8Q3Z5C4V7N2M8K6H1G0F9E", "credentials": {}}"#, "integration"),
                (#"{"integration": 7}"#, "integration"),
                (#"{"credentials": {}}"#, "integration"),
                (#"{"integration": "\#(keyed.id)", "extra": 1}"#, "extra"),
            ]
            for (body, field) in cases {
                let answer = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: body)
                answer.expectProblem(.unprocessableContent, "validation-failed", field: field)
            }
            (try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: "{not json")).expectProblem(
                .badRequest,
                "malformed-request"
            )
            #expect(try await app.count("connections") == 0)
            #expect(try await app.connectionActivity("connection.authorized").isEmpty)

            let pair = try await app.request(
                .post,
                app.connectionsPath,
                token: app.ownerToken,
                json: #"{"integration": "\#(basic.id)", "credentials": {"username": "ada", "password": ""}}"#
            )
            #expect(pair.status == .created, "\(pair.body)")
            let none = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: #"{"integration": "\#(open.id)"}"#)
            #expect(none.status == .created, "\(none.body)")
        }
    }

    @Test("OAuth 2.0 with authorization codes is authorized, not posted; client credentials fetch a token at once")
    func oauthConnections() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let code = try await app.insertOAuthIntegration(provider, name: "Code")
            let refused = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: #"{"integration": "\#(code.id)"}"#)
            refused.expectProblem(.unprocessableContent, "validation-failed", field: "integration")
            #expect((refused["detail"] as? String)?.contains("/authorize?workspace=\(app.liveWorkspace.id)") == true)

            provider.update { $0.method = "client_secret_basic" }
            let machine = try await app.insertOAuthIntegration(provider, name: "Machine") { auth in
                auth.grant = .clientCredentials
                auth.tokenAuthMethod = .clientSecretBasic
            }
            let created = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: #"{"integration": "\#(machine.id)"}"#)
            #expect(created.status == .created, "\(created.body)")
            #expect(created["expires_at"] as? String == RFC3339.format(app.clock.now.addingTimeInterval(3600)))
            #expect(created["scopes"] as? [String] == ["read", "write"])
            let request = try #require(provider.requests(grant: "client_credentials").first)
            #expect(request.form["scope"] == "read write" && request.authorization?.hasPrefix("Basic ") == true)
            let id = try #require(created["id"] as? String)
            let token = try await app.services.connections.credentials(connectionID: id).secrets.objectValue?["access_token"]?.stringValue
            #expect(token.map(provider.isValid(accessToken:)) == true)

            // The provider refuses the client: a 422 with its error, and the old token stays.
            provider.update { $0.clientSecret = "rotated" }
            let failed = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: #"{"integration": "\#(machine.id)"}"#)
            failed.expectProblem(.unprocessableContent, "validation-failed", field: "integration")
            #expect((failed["detail"] as? String)?.contains("invalid_client") == true, "\(failed.body)")
            #expect(try await app.services.connections.credentials(connectionID: id).secrets.objectValue?["access_token"]?.stringValue == token)
            #expect(try await app.count("connections") == 1)
            await provider.shutdown()
        }
    }

    @Test("a token endpoint the outbound guard refuses is a 422 that says so, and nothing is stored")
    func blockedTokenEndpoint() async throws {
        // Without runWithProviders loopback is not an allowed target.
        try await TestApp.run { app in
            var auth = AuthSpec(type: .oauth2)
            auth.tokenUrl = "http://127.0.0.1:9/token"
            auth.clientId = "c"
            auth.grant = .clientCredentials
            let integration = try await app.insertIntegration(auth: auth, clientSecret: "s")
            let answer = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: #"{"integration": "\#(integration.id)"}"#)
            answer.expectProblem(.unprocessableContent, "validation-failed", field: "integration")
            #expect((answer["detail"] as? String)?.contains("not an allowed target") == true, "\(answer.body)")
            #expect(try await app.count("connections") == 0)
        }
    }

    @Test("custom auth runs authenticate(config, credentials, ctx) once; a failure or a wrong shape stores nothing")
    func customAuth() async throws {
        try await TestApp.runWithProviders { app in
            var auth = AuthSpec(type: .custom)
            auth.code = "export async function authenticate(config, credentials, ctx) {}"
            let integration = try await app.insertIntegration(
                auth: auth,
                configuration: .object(["baseUrl": .string("https://api.example")]),
                secretConfiguration: ["integrationKey": "ik-1"]
            )
            let runner = ScriptedRunner(returning: .object(["headers": .object(["X-Token": .string("t")])]))
            let service = app.connectionService(scripts: runner)
            let input = try CreateConnectionInput(json: ["integration": .string(integration.id), "credentials": .object(["user": .string("ada")])])
            let (connection, created) = try await service.connect(caller: app.caller(), workspaceID: app.liveWorkspace.id, input)
            #expect(created && connection.status == .active)
            let request = try #require(runner.requests.first)
            #expect(request.entry == "authenticate")
            guard request.arguments.count == 3, case .json(let config) = request.arguments[0], case .json(let credentials) = request.arguments[1]
            else {
                Issue.record("unexpected arguments \(request.arguments)")
                return
            }
            #expect(config == .object(["baseUrl": .string("https://api.example"), "integrationKey": .string("ik-1")]))
            #expect(credentials == .object(["user": .string("ada")]))

            let other = try await app.insertIntegration(name: "Other", auth: auth)
            let attempt = try CreateConnectionInput(json: ["integration": .string(other.id), "credentials": .object([:])])
            for (outcome, words) in [
                (ScriptOutcome(status: .succeeded, result: .object(["headers": .object(["X": .array([])])]), duration: 0), "`headers.X` is an array"),
                (
                    ScriptOutcome(status: .succeeded, result: .object(["cookies": .object([:])]), duration: 0),
                    "`cookies` is neither headers nor query"
                ),
                (ScriptOutcome(status: .succeeded, result: .string("t"), duration: 0), "it returned a string"),
                (
                    ScriptOutcome(status: .failed, failure: ScriptFailure(name: "Error", message: "bad key", line: 2, column: 9), duration: 0),
                    "Error: authenticate failed: bad key (line 2, column 9)"
                ),
                (ScriptOutcome(status: .timedOut, failure: ScriptFailure(name: "TimeLimit", message: "stopped at 10 s"), duration: 10), "TimeLimit"),
            ] {
                runner.answer { _ in outcome }
                do {
                    _ = try await service.connect(caller: app.caller(), workspaceID: app.liveWorkspace.id, attempt)
                    Issue.record("accepted \(outcome.status)")
                } catch let error as APIError {
                    #expect(error.problem == .validationFailed && error.field == "credentials")
                    #expect(error.detail.contains(words), "\(error.detail)")
                }
            }
            // What the script threw is shown with the credentials' values redacted.
            runner.answer { _ in ScriptOutcome(status: .failed, failure: ScriptFailure(name: "Error", message: "no user s3cr3t-value"), duration: 0) }
            let secret = try CreateConnectionInput(json: ["integration": .string(other.id), "credentials": .object(["key": .string("s3cr3t-value")])])
            do {
                _ = try await service.connect(caller: app.caller(), workspaceID: app.liveWorkspace.id, secret)
                Issue.record("accepted")
            } catch let error as APIError {
                #expect(!error.detail.contains("s3cr3t-value"), "\(error.detail)")
            }
            #expect(try await app.count("connections") == 1)
        }
    }

    @Test("custom auth in the JavaScript runtime: authenticate accepts or throws, and a throw is a 422 with its line")
    func customAuthInTheRuntime() async throws {
        try await TestApp.runWithProviders { app in
            var auth = AuthSpec(type: .custom)
            auth.code = """
                export async function authenticate(config, credentials, ctx) {
                  if (credentials.key !== config.integrationKey) throw new Error("this key is not for " + config.baseUrl);
                  return {headers: {"X-Key": credentials.key}};
                }
                """
            let integration = try await app.insertIntegration(
                auth: auth,
                configuration: .object(["baseUrl": .string("https://api.example")]),
                secretConfiguration: ["integrationKey": "ik-1"]
            )
            let wrong = try await app.request(
                .post,
                app.connectionsPath,
                token: app.ownerToken,
                json: #"{"integration": "\#(integration.id)", "credentials": {"key": "ik-2"}}"#
            )
            wrong.expectProblem(.unprocessableContent, "validation-failed", field: "credentials")
            #expect((wrong["detail"] as? String)?.contains("this key is not for https://api.example") == true, "\(wrong.body)")
            #expect((wrong["detail"] as? String)?.contains("line 2") == true, "\(wrong.body)")
            #expect(try await app.count("connections") == 0)
            let right = try await app.request(
                .post,
                app.connectionsPath,
                token: app.ownerToken,
                json: #"{"integration": "\#(integration.id)", "credentials": {"key": "ik-1"}}"#
            )
            #expect(right.status == .created, "\(right.body)")
        }
    }

    @Test("listing, reading and deleting: pages, the integration filter, other workspaces' connections are 404")
    func listGetDelete() async throws {
        try await TestApp.runWithProviders { app in
            var ids: [String] = []
            var integrations: [Integration] = []
            for name in ["A", "B", "C"] {
                let integration = try await app.insertIntegration(name: name, auth: AuthSpec(type: .none))
                integrations.append(integration)
                let created = try await app.request(
                    .post,
                    app.connectionsPath,
                    token: app.ownerToken,
                    json: #"{"integration": "\#(integration.id)"}"#
                )
                ids.append(try #require(created["id"] as? String))
            }
            let first = try await app.request(.get, "\(app.connectionsPath)?limit=2", token: app.ownerToken)
            #expect((first["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(ids.prefix(2)))
            let cursor = try #require(first["next_after"] as? String)
            let second = try await app.request(.get, "\(app.connectionsPath)?limit=2&after=\(cursor)", token: app.ownerToken)
            #expect((second["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[2]])
            #expect(second["next_after"] is NSNull)
            let filtered = try await app.request(.get, "\(app.connectionsPath)?integration=\(integrations[1].id)", token: app.ownerToken)
            #expect((filtered["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[1]])
            (try await app.request(.get, "\(app.connectionsPath)?after=nope", token: app.ownerToken))
                .expectProblem(.unprocessableContent, "validation-failed", field: "after")
            (try await app.request(.get, "\(app.connectionsPath)?integration=nope", token: app.ownerToken))
                .expectProblem(.unprocessableContent, "validation-failed", field: "integration")

            let sandbox = "/v1/workspaces/\(app.sandboxWorkspace.id)/connections"
            (try await app.request(.get, "\(sandbox)/\(ids[0])", token: app.ownerToken)).expectProblem(.notFound, "not-found")
            (try await app.request(.delete, "\(sandbox)/\(ids[0])", token: app.ownerToken)).expectProblem(.notFound, "not-found")
            (try await app.request(.get, "\(app.connectionsPath)/con_nope", token: app.ownerToken)).expectProblem(.notFound, "not-found")

            #expect(try await app.request(.delete, "\(app.connectionsPath)/\(ids[0])", token: app.ownerToken).status == .noContent)
            (try await app.request(.get, "\(app.connectionsPath)/\(ids[0])", token: app.ownerToken)).expectProblem(.notFound, "not-found")
            #expect(try await app.connectionActivity("connection.deleted").count == 1)
            #expect(try await app.count("connections") == 2)
        }
    }

    @Test("members read, managers manage, developers and scoped tokens of other workspaces are refused")
    func roles() async throws {
        try await TestApp.runWithProviders { app in
            let integration = try await app.insertIntegration(auth: AuthSpec(type: .none))
            let body = #"{"integration": "\#(integration.id)"}"#
            let member = try await app.makeUser("member@example.com", role: .member)
            let developer = try await app.makeUser("dev@example.com", role: .developer)
            let admin = try await app.makeUser("ia@example.com", role: .integrationAdmin)
            (try await app.request(.post, app.connectionsPath, token: member.token, json: body)).expectProblem(.forbidden, "forbidden")
            let created = try await app.request(.post, app.connectionsPath, token: admin.token, json: body)
            #expect(created.status == .created)
            let id = try #require(created["id"] as? String)
            #expect(try await app.request(.get, app.connectionsPath, token: member.token).status == .ok)
            #expect(try await app.request(.get, "\(app.connectionsPath)/\(id)", token: member.token).status == .ok)
            (try await app.request(.delete, "\(app.connectionsPath)/\(id)", token: member.token)).expectProblem(.forbidden, "forbidden")
            (try await app.request(.get, app.connectionsPath, token: developer.token)).expectProblem(.forbidden, "forbidden")
            (try await app.request(.get, app.connectionsPath)).expectProblem(.unauthorized, "unauthenticated")

            let scoped = try await app.services.tokens.create(
                CreateTokenInput(name: "sandbox only", workspaces: [app.sandboxWorkspace.id]),
                for: admin.user.id,
                by: nil,
                audit: .system("test")
            )
            (try await app.request(.get, app.connectionsPath, token: scoped.token)).expectProblem(.forbidden, "forbidden")
            let sandbox = "/v1/workspaces/\(app.sandboxWorkspace.id)/connections"
            #expect(try await app.request(.post, sandbox, token: scoped.token, json: body).status == .created)
        }
    }
}
