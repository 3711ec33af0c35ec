import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import Switchyard

/// The document exported by one installation, for the next to import.
final class ExportedDocument: Sendable {
    let text = NIOLockedValueBox("")
}

@Suite("Integration export and import")
struct IntegrationDocumentTests {
    static let esign = """
        {"name": "eSign", "description": "Send documents for signature.",
         "configuration": {"baseUrl": "https://api.esign.example/v2", "integrationKey": "7f1c", "retries": 3, "sandbox": true, "zip": "02134"},
         "secret_configuration": {"webhookSecret": "whsec-very-secret"},
         "auth": {"type": "oauth2", "authorization_url": "https://account.esign.example/oauth/auth",
                  "token_url": "https://account.esign.example/oauth/token", "scopes": ["signature"],
                  "query_params": {"prompt": "login", "accessType": "offline"},
                  "client_id": "client-1", "client_secret": "client-secret-shh"},
         "connectors": [{"key": "send_for_esign", "name": "Send for eSign", "description": "Creates and sends an envelope.",
                         "inputs": [{"name": "signerEmail", "type": "string", "required": true},
                                    {"name": "copies", "type": "integer", "default": 1}],
                         "outputs": [{"name": "envelopeId", "type": "string", "required": true}],
                         "code": "export async function run(input, ctx) {\\n  console.log(`to ${input.signerEmail}`);\\n  return { envelopeId: 'e-1' };\\n}"}]}
        """

    @Test("an export holds the code and no secret, and importing it elsewhere gives the same integration")
    func roundTrip() async throws {
        let box = ExportedDocument()
        try await TestApp.runWithIntegrations { app in
            let id = try await app.integrationID(Self.esign)
            let answer = try await app.request(.get, "/v1/integrations/\(id).yaml", token: app.ownerToken)
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType]?.hasPrefix("application/yaml") == true)
            box.text.withLockedValue { $0 = answer.body }
            let member = try await app.makeUser("reader@example.com", role: .member)
            #expect(try await app.request(.get, "/v1/integrations/\(id).yaml", token: member.token).status == .ok, "readers may export")
        }
        let exported = box.text.withLockedValue { $0 }
        #expect(!exported.contains("whsec-very-secret") && !exported.contains("client-secret-shh"), "no secret in the document")
        #expect(exported.contains("secret_configuration_keys"))
        #expect(exported.contains("code: |"), "code as a literal block, so a diff reads well:\n\(exported)")
        #expect(exported.contains("  console.log(`to ${input.signerEmail}`);"))

        try await TestApp.runWithIntegrations { app in
            let imported = try await app.request(
                .post,
                "/v1/integrations/import",
                token: app.ownerToken,
                headers: [.contentType: "application/yaml"],
                body: exported
            )
            #expect(imported.status == .created, "\(imported.body)")
            let id = try #require(imported["id"] as? String)
            let shown = try await app.request(.get, "/v1/integrations/\(id)", token: app.ownerToken)
            let configuration = shown.object("configuration")
            #expect(configuration["baseUrl"] as? String == "https://api.esign.example/v2")
            #expect(configuration["retries"] as? Int == 3)
            #expect(configuration["sandbox"] as? Bool == true)
            #expect(configuration["zip"] as? String == "02134", "a string that looks like a number stays a string")
            #expect(shown["secret_configuration_keys"] as? [String] == [], "secrets are set after an import")
            let auth = shown.object("auth")
            #expect(auth["client_secret_set"] as? Bool == false)
            #expect((auth["query_params"] as? [String: Any])?["accessType"] as? String == "offline", "keys as written")
            let connector = try #require(shown.objects("connectors").first)
            #expect(
                connector["code"] as? String
                    == "export async function run(input, ctx) {\n  console.log(`to ${input.signerEmail}`);\n  return { envelopeId: 'e-1' };\n}"
            )
            #expect((connector["inputs"] as? [[String: Any]])?.last?["default"] as? Int == 1)
            let again = try await app.request(
                .post,
                "/v1/integrations/import",
                token: app.ownerToken,
                headers: [.contentType: "application/yaml"],
                body: exported
            )
            again.expectProblem(.conflict, "conflict", field: "name")
        }
    }

    @Test("a document that is not YAML, not a mapping, of another format, or invalid as an integration is a 422, and nothing is stored")
    func badDocuments() async throws {
        try await TestApp.runWithIntegrations { app in
            let cases: [(String, String?)] = [
                ("name: [unclosed", nil),
                ("- just\n- a list", nil),
                ("switchyard: integration/v9\nname: X\nauth: {type: none}", "switchyard"),
                ("name: X\nauth: {type: none}\nowner: me", "owner"),
                ("name: X\nauth: {type: telepathy}", "auth.type"),
                (
                    "name: X\nauth: {type: none}\nconnectors:\n  - key: broken\n    name: Broken\n    code: |\n      export async function run( {\n",
                    "connectors[0].code"
                ),
            ]
            for (document, field) in cases {
                let answer = try await app.request(
                    .post,
                    "/v1/integrations/import",
                    token: app.ownerToken,
                    headers: [.contentType: "application/yaml"],
                    body: document
                )
                answer.expectProblem(.unprocessableContent, "validation-failed", field: field)
            }
            #expect(try await app.count("integrations") == 0)
            let member = try await app.makeUser("member@example.com", role: .member)
            let refused = try await app.request(.post, "/v1/integrations/import", token: member.token, body: "name: X\nauth: {type: none}")
            refused.expectProblem(.forbidden, "forbidden")
        }
    }
}
