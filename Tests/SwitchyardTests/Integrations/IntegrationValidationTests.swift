import Foundation
import Testing

@testable import Switchyard

@Suite("Integration input")
struct IntegrationValidationTests {
    static let code = jsonString("export async function run(input, ctx) { return {}; }")

    @Test("bad input is a 422 naming the field, and nothing is written")
    func badInput() async throws {
        try await TestApp.runWithIntegrations { app in
            let none = #""auth": {"type": "none"}"#
            let cases: [(String, String)] = [
                (#"{\#(none)}"#, "name"),
                (#"{"name": "", \#(none)}"#, "name"),
                (#"{"name": 5, \#(none)}"#, "name"),
                (#"{"name": "A"}"#, "auth"),
                (#"{"name": "A", "colour": "red", \#(none)}"#, "colour"),
                (#"{"name": "A", "auth": {"type": "magic"}}"#, "auth.type"),
                (#"{"name": "A", "auth": "none"}"#, "auth"),
                (#"{"name": "A", "auth": {"type": "none", "code": "x"}}"#, "auth.code"),
                (#"{"name": "A", "auth": {"type": "api_key", "in": "body"}}"#, "auth.in"),
                (#"{"name": "A", "auth": {"type": "api_key", "name": "bad name"}}"#, "auth.name"),
                (#"{"name": "A", "auth": {"type": "api_key", "name": "Host"}}"#, "auth.name"),
                (#"{"name": "A", "auth": {"type": "basic", "token_url": "https://x.example.com"}}"#, "auth.token_url"),
                (#"{"name": "A", "auth": {"type": "custom"}}"#, "auth.code"),
                (#"{"name": "A", "auth": {"type": "custom", "code": 5}}"#, "auth.code"),
                (#"{"name": "A", "auth": {"type": "oauth2", "client_id": "c", "authorization_url": "https://a.example.com/a"}}"#, "auth.token_url"),
                (#"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "client_id": "c"}}"#, "auth.authorization_url"),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "https://a.example.com/a"}}"#,
                    "auth.client_id"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "grant": "implicit", "token_url": "https://a.example.com/t", "client_id": "c"}}"#,
                    "auth.grant"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "grant": "client_credentials", "token_url": "https://a.example.com/t", "client_id": "c"}}"#,
                    "auth.client_secret"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "https://a.example.com/a", "client_id": "c", "scopes": ["a b"]}}"#,
                    "auth.scopes[0]"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "https://a.example.com/a", "client_id": "c", "pkce": "yes"}}"#,
                    "auth.pkce"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "https://a.example.com/a", "client_id": "c", "query_params": {"a": 1}}}"#,
                    "auth.query_params.a"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "ftp://a.example.com/t", "authorization_url": "https://a.example.com/a", "client_id": "c"}}"#,
                    "auth.token_url"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "not a url", "client_id": "c"}}"#,
                    "auth.authorization_url"
                ),
                (#"{"name": "A", "configuration": [], \#(none)}"#, "configuration"),
                (#"{"name": "A", "configuration": {"nested": {"a": 1}}, \#(none)}"#, "configuration.nested"),
                (#"{"name": "A", "configuration": {"baseUrl": 5}, \#(none)}"#, "configuration.baseUrl"),
                (#"{"name": "A", "configuration": {"baseUrl": "gopher://x.example.com"}, \#(none)}"#, "configuration.baseUrl"),
                (#"{"name": "A", "secret_configuration": {"k": 5}, \#(none)}"#, "secret_configuration.k"),
                (#"{"name": "A", "configuration": {"k": "a"}, "secret_configuration": {"k": "b"}, \#(none)}"#, "secret_configuration.k"),
                (#"{"name": "A", "connectors": {}, \#(none)}"#, "connectors"),
                (#"{"name": "A", "connectors": [{"name": "X", "code": \#(Self.code)}], \#(none)}"#, "connectors[0].key"),
                (#"{"name": "A", "connectors": [{"key": "Bad-Key", "name": "X", "code": \#(Self.code)}], \#(none)}"#, "connectors[0].key"),
                (#"{"name": "A", "connectors": [{"key": "a", "code": \#(Self.code)}], \#(none)}"#, "connectors[0].name"),
                (#"{"name": "A", "connectors": [{"key": "a", "name": "X"}], \#(none)}"#, "connectors[0].code"),
                (#"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "extra": 1}], \#(none)}"#, "connectors[0].extra"),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code)}, {"key": "a", "name": "Y", "code": \#(Self.code)}], \#(none)}"#,
                    "connectors[1].key"
                ),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "inputs": [{"name": "n", "type": "date"}]}], \#(none)}"#,
                    "connectors[0].inputs[0].type"
                ),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "inputs": [{"name": "1n", "type": "string"}]}], \#(none)}"#,
                    "connectors[0].inputs[0].name"
                ),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "inputs": [{"name": "n", "type": "string"}, {"name": "n", "type": "number"}]}], \#(none)}"#,
                    "connectors[0].inputs[1].name"
                ),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "inputs": [{"name": "n", "type": "integer", "default": 1.5}]}], \#(none)}"#,
                    "connectors[0].inputs[0].default"
                ),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "outputs": [{"name": "n", "type": "string", "required": "yes"}]}], \#(none)}"#,
                    "connectors[0].outputs[0].required"
                ),
                (
                    #"{"name": "A", "connectors": [{"key": "a", "name": "X", "code": \#(Self.code), "outputs": [{"name": "n", "type": "string", "size": 3}]}], \#(none)}"#,
                    "connectors[0].outputs[0].size"
                ),
            ]
            for (body, field) in cases {
                let answer = try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: body)
                #expect(answer.status.code == 422, "\(body): \(answer.body)")
                #expect(answer["type"] as? String == "urn:switchyard:problem:validation-failed", "\(body): \(answer.body)")
                #expect(answer["field"] as? String == field, "\(body): \(answer.body)")
            }
            try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: "{").expectProblem(.badRequest, "malformed-request")
            #expect(try await app.count("integrations") == 0)
            #expect(try await app.count("connectors") == 0)

            let id = try await app.integrationID(#"{"name": "A", \#(none)}"#)
            let patches: [(String, String)] = [
                (#"{"name": null}"#, "name"),
                (#"{"auth": null}"#, "auth"),
                (#"{"connectors": []}"#, "connectors"),
                (#"{"configuration": {"baseUrl": "mailto:a@example.com"}}"#, "configuration.baseUrl"),
                (#"{"auth": {"type": "custom", "code": ""}}"#, "auth.code"),
                (#"{"secret": 1}"#, "secret"),
            ]
            for (body, field) in patches {
                let answer = try await app.request(.patch, "/v1/integrations/\(id)", token: app.ownerToken, json: body)
                #expect(answer.status.code == 422, "\(body): \(answer.body)")
                #expect(answer["field"] as? String == field, "\(body): \(answer.body)")
            }
            let unchanged = try await app.request(.get, "/v1/integrations/\(id)", token: app.ownerToken)
            #expect(unchanged.object("auth")["type"] as? String == "none")
            #expect(try await app.activityEntries(targetID: id).map(\.action) == ["integration.created"])
        }
    }

    @Test("URLs go through the outbound guard: a blocked address is a 422 blocked-target naming the field")
    func blockedTargets() async throws {
        // No allowed networks here: loopback and private addresses are refused as in production.
        try await TestApp.run { app in
            let cases: [(String, String)] = [
                (#"{"name": "A", "configuration": {"baseUrl": "http://127.0.0.1:8080/api"}, "auth": {"type": "none"}}"#, "configuration.baseUrl"),
                (#"{"name": "A", "configuration": {"baseUrl": "http://169.254.169.254/latest"}, "auth": {"type": "none"}}"#, "configuration.baseUrl"),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "http://10.1.2.3/token", "authorization_url": "https://a.example.com/a", "client_id": "c"}}"#,
                    "auth.token_url"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "http://[::1]/a", "client_id": "c"}}"#,
                    "auth.authorization_url"
                ),
            ]
            for (body, field) in cases {
                let answer = try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: body)
                answer.expectProblem(.unprocessableContent, "blocked-target", field: field)
                #expect((answer["detail"] as? String)?.contains("--allowed-target-networks") == true)
            }
            let id = try await app.integrationID(#"{"name": "A", "configuration": {"baseUrl": "https://api.example.com"}, "auth": {"type": "none"}}"#)
            try await app.request(
                .patch,
                "/v1/integrations/\(id)",
                token: app.ownerToken,
                json: #"{"configuration": {"baseUrl": "http://192.168.1.1"}}"#
            )
            .expectProblem(.unprocessableContent, "blocked-target", field: "configuration.baseUrl")
            #expect(try await app.count("integrations") == 1)
        }
    }

    @Test("all code is compiled at save: a syntax error is a 422 naming the field with its line and column")
    func syntaxErrors() async throws {
        try await TestApp.runWithIntegrations { app in
            let broken = jsonString("export async function run(input, ctx) {\n  const x = ;\n}")
            let cases: [(String, String)] = [
                (#"{"name": "A", "auth": {"type": "custom", "code": \#(broken)}}"#, "auth.code"),
                (
                    #"{"name": "A", "auth": {"type": "none"}, "connectors": [{"key": "ok", "name": "OK", "code": \#(Self.code)}, {"key": "b", "name": "B", "code": \#(broken)}]}"#,
                    "connectors[1].code"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "https://a.example.com/a", "client_id": "c", "callback_code": \#(broken)}}"#,
                    "auth.callback_code"
                ),
                (
                    #"{"name": "A", "auth": {"type": "oauth2", "token_url": "https://a.example.com/t", "authorization_url": "https://a.example.com/a", "client_id": "c", "authentication_code": \#(broken)}}"#,
                    "auth.authentication_code"
                ),
            ]
            for (body, field) in cases {
                let answer = try await app.request(.post, "/v1/integrations", token: app.ownerToken, json: body)
                answer.expectProblem(.unprocessableContent, "validation-failed", field: field)
                let detail = answer["detail"] as? String ?? ""
                #expect(detail.contains("line 2, column"), "\(detail)")
            }
            // The function the field needs must be exported.
            let wrongExport = jsonString("export async function go(input, ctx) { return {}; }")
            let missing = try await app.request(
                .post,
                "/v1/integrations",
                token: app.ownerToken,
                json: #"{"name": "A", "auth": {"type": "custom", "code": \#(wrongExport)}}"#
            )
            missing.expectProblem(.unprocessableContent, "validation-failed", field: "auth.code")
            #expect((missing["detail"] as? String)?.contains("authenticate") == true, "\(missing.body)")
            #expect(try await app.count("integrations") == 0)
        }
    }
}
