import Foundation
import Hummingbird
import Testing

@testable import Switchyard

/// The seed's eSign integration, as an admin would build it.
let eSignIntegration = """
    {"name": "eSign", "description": "Contracts out for signature",
     "configuration": {"baseUrl": "https://esign.example.com/api", "integrationKey": "ik-123", "retries": 3, "sandbox": true},
     "secret_configuration": {"accountSecret": "acct-secret-0123456789"},
     "auth": {"type": "oauth2", "authorization_url": "https://esign.example.com/oauth/auth", "token_url": "https://esign.example.com/oauth/token",
              "client_id": "client-1", "client_secret": "client-secret-abcdef", "scopes": ["signature", "extended"],
              "query_params": {"prompt": "login"}},
     "connectors": [{"key": "send_for_esign", "name": "Send for eSign", "description": "Sends a document",
                     "inputs": [{"name": "document_id", "type": "string", "required": true}, {"name": "copies", "type": "integer", "default": 1}],
                     "outputs": [{"name": "envelope_id", "type": "string", "required": true}],
                     "code": "export async function run(input, ctx) { return { envelope_id: 'env-' + input.document_id }; }"}]}
    """

@Suite("Integrations")
struct IntegrationTests {
    @Test("create, read, list, change and delete; members read, managers manage; activity entries")
    func lifecycle() async throws {
        try await TestApp.runWithIntegrations { app in
            let created = try await app.createIntegration(eSignIntegration)
            let id = try #require(created["id"] as? String)
            #expect(id.hasPrefix("int_"))
            #expect(created["name"] as? String == "eSign")
            #expect((created["configuration"] as? [String: Any])?["baseUrl"] as? String == "https://esign.example.com/api")
            #expect(created["secret_configuration_keys"] as? [String] == ["accountSecret"])
            let auth = try #require(created["auth"] as? [String: Any])
            #expect(auth["type"] as? String == "oauth2")
            #expect(auth["client_secret_set"] as? Bool == true)
            #expect(auth["client_secret"] == nil)
            #expect(auth["pkce"] as? Bool == true)
            #expect(auth["grant"] as? String == "authorization_code")
            #expect(auth["token_auth_method"] as? String == "client_secret_post")
            #expect(auth["scope_separator"] as? String == " ")
            let connectors = try #require(created["connectors"] as? [[String: Any]])
            #expect(connectors.map { $0["key"] as? String } == ["send_for_esign"])
            let inputs = try #require(connectors.first?["inputs"] as? [[String: Any]])
            #expect(inputs.map { $0["required"] as? Bool } == [true, false])
            #expect(inputs.last?["default"] as? Int == 1)

            let (_, memberToken) = try await app.makeUser("member@example.com", role: .member)
            let read = try await app.request(.get, "/v1/integrations/\(id)", token: memberToken)
            #expect(read.status == .ok)
            #expect(read["name"] as? String == "eSign")
            let list = try await app.request(.get, "/v1/integrations?q=ESIG", token: memberToken)
            #expect(list.objects("data").map { $0["id"] as? String } == [id])
            #expect(list.json.keys.contains("next_after"))
            #expect(try await app.request(.get, "/v1/integrations?q=nothing", token: memberToken).objects("data").isEmpty)
            try await app.request(.patch, "/v1/integrations/\(id)", token: memberToken, json: #"{"description": "x"}"#)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.delete, "/v1/integrations/\(id)", token: memberToken).expectProblem(.forbidden, "forbidden")

            let patched = try await app.request(
                .patch,
                "/v1/integrations/\(id)",
                token: app.ownerToken,
                json:
                    #"{"name": "eSign v2", "configuration": {"baseUrl": "https://esign.example.com/v2"}, "secret_configuration": {"other": "other-secret-0000", "gone": null}}"#
            )
            #expect(patched.status == .ok, "\(patched.body)")
            #expect(patched["name"] as? String == "eSign v2")
            #expect(patched.object("configuration").keys.sorted() == ["baseUrl"])
            #expect(patched["secret_configuration_keys"] as? [String] == ["other"])
            #expect(patched.object("auth")["client_secret_set"] as? Bool == true)
            #expect((patched["connectors"] as? [[String: Any]])?.count == 1)

            #expect(try await app.request(.delete, "/v1/integrations/\(id)", token: app.ownerToken).status == .noContent)
            try await app.request(.get, "/v1/integrations/\(id)", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.delete, "/v1/integrations/\(id)", token: app.ownerToken).expectProblem(.notFound, "not-found")
            #expect(try await app.count("connectors") == 0)
            let entries = try await app.activityEntries(targetID: id)
            #expect(entries.map(\.action) == ["integration.created", "integration.updated", "integration.deleted"])
            #expect(entries[0].detail == "auth oauth2, 1 connector")
            #expect(entries[1].detail == "name, configuration, secret_configuration")
        }
    }

    @Test("secret values never appear in an answer, an activity entry or the stored idempotent answer")
    func secretsNeverShown() async throws {
        try await TestApp.runWithIntegrations { app in
            let secrets = ["acct-secret-0123456789", "client-secret-abcdef", "other-secret-0000", "rotated-client-secret"]
            let created = try await app.request(
                .post,
                "/v1/integrations",
                token: app.ownerToken,
                json: eSignIntegration,
                headers: [.idempotencyKey: "k-1"]
            )
            let id = try #require(created["id"] as? String)
            var answers = [created.body]
            answers.append(try await app.request(.get, "/v1/integrations/\(id)", token: app.ownerToken).body)
            answers.append(try await app.request(.get, "/v1/integrations", token: app.ownerToken).body)
            answers.append(
                try await app.request(
                    .patch,
                    "/v1/integrations/\(id)",
                    token: app.ownerToken,
                    json: """
                        {"secret_configuration": {"accountSecret": "other-secret-0000"},
                         "auth": {"type": "oauth2", "token_url": "https://esign.example.com/oauth/token", "authorization_url": "https://esign.example.com/a",
                                  "client_id": "client-1", "client_secret": "rotated-client-secret"}}
                        """
                ).body
            )
            answers.append(try await app.request(.get, "/v1/activity", token: app.ownerToken).body)
            let stored = try await app.database.read { tx in
                try tx.query("SELECT * FROM idempotency_keys").map { row in row.columns.map { row.optionalString($0) ?? "" }.joined(separator: " ") }
            }
            answers += stored
            let rows = try await app.database.read { tx in
                try tx.query("SELECT name, description, configuration, secret_configuration_keys, auth FROM integrations").map { row in
                    ["name", "description", "configuration", "secret_configuration_keys", "auth"].map { row.optionalString($0) ?? "" }
                        .joined(separator: " ")
                }
            }
            answers += rows
            for answer in answers {
                for secret in secrets { #expect(!answer.contains(secret), "\(secret) in \(answer)") }
            }
            #expect(answers[0].contains("accountSecret"))
            // Sealed, and opened back to what was given.
            let opened = try await app.database.read { tx in
                let sealed = try #require(try IntegrationStore.sealedSecrets(tx, id: id))
                return try app.services.sealer.openIntegrationSecrets(configuration: sealed.configuration, auth: sealed.auth)
            }
            #expect(opened == IntegrationSecrets(secretConfiguration: ["accountSecret": "other-secret-0000"], clientSecret: "rotated-client-secret"))
        }
    }

    @Test("PATCH auth: a missing client secret stays while the type stays oauth2, and goes with another type")
    func clientSecretKept() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await app.integrationID(eSignIntegration)
            let oauth =
                #"{"auth": {"type": "oauth2", "token_url": "https://esign.example.com/t", "authorization_url": "https://esign.example.com/a", "client_id": "c2", "pkce": false}}"#
            let kept = try await app.request(.patch, "/v1/integrations/\(id)", token: app.ownerToken, json: oauth)
            #expect(kept.object("auth")["client_secret_set"] as? Bool == true)
            #expect(kept.object("auth")["client_id"] as? String == "c2")
            #expect(kept.object("auth")["pkce"] as? Bool == false)
            let other = try await app.request(
                .patch,
                "/v1/integrations/\(id)",
                token: app.ownerToken,
                json: #"{"auth": {"type": "api_key", "in": "query"}}"#
            )
            #expect(other.object("auth").keys.sorted() == ["in", "name", "type"])
            #expect(other.object("auth")["name"] as? String == "X-API-Key")
            let back = try await app.request(.patch, "/v1/integrations/\(id)", token: app.ownerToken, json: oauth)
            #expect(back.object("auth")["client_secret_set"] as? Bool == false)
            let sealed = try await app.database.read { tx in try IntegrationStore.sealedSecrets(tx, id: id) }
            #expect(sealed?.auth == nil)
            // client_credentials needs a secret.
            try await app.request(
                .patch,
                "/v1/integrations/\(id)",
                token: app.ownerToken,
                json: #"{"auth": {"type": "oauth2", "grant": "client_credentials", "token_url": "https://esign.example.com/t", "client_id": "c"}}"#
            )
            .expectProblem(.unprocessableContent, "validation-failed", field: "auth.client_secret")
        }
    }

    @Test("names are unique in any case: 409 on create and on rename")
    func uniqueNames() async throws {
        try await TestApp.runWithIntegrations { app in
            let first = try await app.integrationID(#"{"name": "DocuSign", "auth": {"type": "none"}}"#)
            try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: #"{"name": "docusign", "auth": {"type": "none"}}"#)
                .expectProblem(.conflict, "conflict", field: "name")
            let second = try await app.integrationID(#"{"name": "Other", "auth": {"type": "basic"}}"#)
            try await app.request(.patch, "/v1/integrations/\(second)", token: app.ownerToken, json: #"{"name": "DOCUSIGN"}"#)
                .expectProblem(.conflict, "conflict", field: "name")
            // Renaming to its own name in another case is fine.
            let renamed = try await app.request(.patch, "/v1/integrations/\(first)", token: app.ownerToken, json: #"{"name": "Docusign"}"#)
            #expect(renamed["name"] as? String == "Docusign")
            #expect(try await app.count("integrations") == 2)
        }
    }

    @Test("Idempotency-Key: a retry answers the first creation; another body with the key is refused")
    func idempotency() async throws {
        try await TestApp.runWithIntegrations { app in
            let body = #"{"name": "Once", "auth": {"type": "none"}}"#
            let first = try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: body, headers: [.idempotencyKey: "once-1"])
            let again = try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: body, headers: [.idempotencyKey: "once-1"])
            #expect(first.status == .created)
            #expect(again.status == .created)
            #expect(again.body == first.body)
            #expect(try await app.count("integrations") == 1)
            try await app.request(
                .post,
                "/v1/integrations",
                token: app.ownerToken,
                json: #"{"name": "Twice", "auth": {"type": "none"}}"#,
                headers: [.idempotencyKey: "once-1"]
            )
            .expectProblem(.unprocessableContent, "idempotency-key-reused")
        }
    }

    @Test("developers get 403 everywhere; workspace-limited and test tokens and apps cannot manage or read integrations")
    func roles() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await app.integrationID(eSignIntegration)
            let (_, developerToken) = try await app.makeUser("dev@example.com", role: .developer)
            let (_, adminToken) = try await app.makeUser("ia@example.com", role: .integrationAdmin)
            let limited = try await app.limitedToken([app.liveWorkspace.id])
            let testToken = try await app.limitedToken([app.sandboxWorkspace.id], mode: .test)
            let made = try await app.makeApp(permissions: ["connections:run"])
            let appToken = try await app.accessToken(for: made.app)
            let calls: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/v1/integrations", nil),
                (.get, "/v1/integrations/\(id)", nil),
                (.post, "/v1/integrations", #"{"name": "X", "auth": {"type": "none"}}"#),
                (.patch, "/v1/integrations/\(id)", #"{"description": "x"}"#),
                (.delete, "/v1/integrations/\(id)", nil),
                (.get, "/v1/integrations/\(id)/connectors", nil),
                (.get, "/v1/integrations/\(id)/connectors/send_for_esign", nil),
                (.put, "/v1/integrations/\(id)/connectors/x", #"{"name": "X", "code": "export async function run() {}"}"#),
                (.delete, "/v1/integrations/\(id)/connectors/send_for_esign", nil),
                (.post, "/v1/integrations/\(id)/test", #"{"target": "auth"}"#),
                (.get, "/v1/integrations/\(id)/test-runs", nil),
            ]
            for token in [developerToken, limited, testToken, appToken] {
                for (method, path, body) in calls {
                    let answer = try await app.request(method, path, token: token, json: body)
                    answer.expectProblem(.forbidden, "forbidden")
                }
            }
            try await app.request(.get, "/v1/integrations").expectProblem(.unauthorized, "unauthenticated")
            // An integration admin manages them.
            let patched = try await app.request(
                .patch,
                "/v1/integrations/\(id)",
                token: adminToken,
                json: #"{"description": "by the integration admin"}"#
            )
            #expect(patched.status == .ok)
            #expect(try await app.count("integrations") == 1)
            #expect(try await app.count("connectors") == 1)
        }
    }

    @Test("stored auth specs and parameters read back as written, as JSONDecoder would read them")
    func storedJSON() throws {
        var oauth = AuthSpec(type: .oauth2)
        oauth.authorizationUrl = "https://a.example.com/a"
        oauth.tokenUrl = "https://a.example.com/t"
        oauth.queryParams = .object(["prompt": .string("login")])
        oauth.scopes = ["a", "b"]
        oauth.scopeSeparator = ","
        oauth.clientId = "c"
        oauth.clientSecretSet = true
        oauth.pkce = false
        oauth.tokenAuthMethod = .clientSecretBasic
        oauth.grant = .clientCredentials
        oauth.callbackCode = "export async function exchange() {}"
        oauth.authenticationCode = "export async function refresh() {}"
        var key = AuthSpec(type: .apiKey)
        key.name = "X-Key"
        key.in = .query
        key.prefix = "Token "
        var custom = AuthSpec(type: .custom)
        custom.code = "export async function authenticate() {}"
        for spec in [oauth, key, custom, AuthSpec(type: .none), AuthSpec(type: .basic)] {
            let text = try IntegrationStore.authText(spec)
            #expect(try IntegrationStore.authSpec(fromText: text) == spec)
            #expect(try JSONDecoder().decode(AuthSpec.self, from: Data(text.utf8)) == spec)
        }
        let parameters = [
            ConnectorParameter(name: "a", type: .integer, required: true, description: "A", default: .int(3)),
            ConnectorParameter(name: "b", type: .object, default: .object(["x": .array([.bool(true)])])),
            ConnectorParameter(name: "c", type: .number, default: .double(1.5)),
            ConnectorParameter(name: "d", type: .string),
        ]
        let text = try IntegrationStore.parametersText(parameters)
        #expect(try IntegrationStore.parameters(fromText: text) == parameters)
        #expect(try JSONDecoder().decode([ConnectorParameter].self, from: Data(text.utf8)) == parameters)
    }
}
