import Foundation
import Testing

@testable import Switchyard

/// Testing the authentication: custom auth's code, and what each type attaches to requests.
@Suite("Integration auth runs")
struct IntegrationAuthTests {
    @Test("custom auth runs first: its logs are the auth logs, its headers and query go to baseUrl, redacted in the record")
    func customAuth() async throws {
        try await TestApp.runWithIntegrations { app in
            let api = try await LoopbackReceiver.start(.status(200, body: "pong"))
            defer { api.stopLater() }
            let auth = """
                export async function authenticate(config, credentials, ctx) {
                  console.log("logging in for", config.tenant);
                  return { headers: { "X-Session": "sess-" + credentials.token }, query: { tenant: config.tenant } };
                }
                """
            let id = try await IntegrationTestRunTests.integration(
                app,
                baseURL: api.url("/v1"),
                auth: #"{"type": "custom", "code": \#(jsonString(auth))}"#,
                code: """
                    export async function run(input, ctx) {
                      const answer = await ctx.http.request({ url: ctx.config.baseUrl + "/ping" });
                      console.log("session", ctx.auth.token);
                      return { body: answer.body };
                    }
                    """
            )
            _ = try await app.makeConnection(integrationID: id, secrets: .object(["token": .string("tok-9876543210")]))
            let run = try await app.testRun(id, #"{"target": "send_for_esign", "workspace": "\#(app.liveWorkspace.id)"}"#)
            #expect(run["status"] as? String == "succeeded", "\(run.body)")
            #expect(run.object("output")["body"] as? String == "pong")
            let received = try #require(api.requests.first)
            #expect(received.path == "/v1/ping?tenant=tenant-acme")
            #expect(received.header("x-session") == "sess-tok-9876543210")
            let call = try #require(run.objects("http_calls").first)
            #expect(call["url"] as? String == api.url("/v1/ping?tenant=[redacted]"))
            #expect((call["request_headers"] as? [String: String])?["X-Session"] == "[redacted]")
            #expect(run.objects("logs").map { $0["message"] as? String } == ["session [redacted]"])
            let authLogs = run.objects("auth_logs").compactMap { $0["message"] as? String }
            #expect(authLogs.contains("logging in for [redacted]"), "\(authLogs)")
            #expect(!run.body.contains("tok-9876543210"))

            // Testing the auth alone shows what it returned, redacted.
            let authRun = try await app.testRun(id, #"{"target": "auth", "workspace": "\#(app.liveWorkspace.id)"}"#)
            #expect(authRun["status"] as? String == "succeeded", "\(authRun.body)")
            #expect((authRun.object("output")["headers"] as? [String: String]) == ["X-Session": "[redacted]"])
            #expect(authRun.objects("logs").isEmpty)
            #expect(authRun.objects("auth_logs").contains { ($0["message"] as? String)?.hasPrefix("logging in for") == true })
        }
    }

    @Test("custom auth that throws or answers the wrong shape fails the run before the connector")
    func customAuthFailures() async throws {
        try await TestApp.runWithIntegrations { app in
            let cases: [(String, String)] = [
                ("console.log('checking'); throw new Error('bad credentials');", "Error"),
                ("return { headers: 'Bearer x' };", "ShapeError"),
                ("return { cookies: {} };", "ShapeError"),
                ("return 5;", "ShapeError"),
            ]
            for (index, (body, name)) in cases.enumerated() {
                let auth = "export async function authenticate(config, credentials, ctx) { \(body) }"
                let id = try await IntegrationTestRunTests.integration(
                    app,
                    name: "Custom \(index)",
                    baseURL: "https://api.example.com",
                    auth: #"{"type": "custom", "code": \#(jsonString(auth))}"#,
                    code: "export async function run(input, ctx) { console.log('connector ran'); return {}; }"
                )
                let run = try await app.testRun(id, #"{"target": "send_for_esign"}"#)
                #expect(run["status"] as? String == "failed", "\(body): \(run.body)")
                #expect(run.object("error")["name"] as? String == name, "\(body): \(run.body)")
                #expect(run.objects("logs").isEmpty, "\(body): the connector must not run")
                if name == "Error" {
                    #expect((run.object("error")["message"] as? String)?.contains("bad credentials") == true)
                    #expect(run.objects("auth_logs").contains { $0["message"] as? String == "checking" })
                    #expect(run.object("error")["line"] as? Int == 1)
                }
            }
        }
    }

    @Test("auth target without code shows what requests carry; without a connection they go out bare")
    func authTarget() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await IntegrationTestRunTests.integration(
                app,
                baseURL: "https://api.example.com",
                auth: #"{"type": "api_key", "name": "api_key", "in": "query"}"#,
                code: "export async function run(input, ctx) { return {}; }"
            )
            let bare = try await app.testRun(id, #"{"target": "auth"}"#)
            #expect(bare["status"] as? String == "succeeded", "\(bare.body)")
            #expect(bare["connection"] is NSNull)
            #expect(bare.object("output")["type"] as? String == "api_key")
            #expect((bare.object("output")["query"] as? [String: String])?.isEmpty == true)
            #expect(bare.objects("auth_logs").contains { ($0["message"] as? String)?.contains("without credentials") == true })
            _ = try await app.makeConnection(integrationID: id, secrets: .object(["api_key": .string("query-key-5555")]))
            let connected = try await app.testRun(id, #"{"target": "auth", "workspace": "\#(app.liveWorkspace.id)"}"#)
            #expect((connected.object("output")["query"] as? [String: String]) == ["api_key": "[redacted]"])
            #expect(connected.object("connection")["status"] as? String == "active")
            // A workspace without a connection: bare again.
            let sandbox = try await app.testRun(id, #"{"target": "auth", "workspace": "\#(app.sandboxWorkspace.id)"}"#)
            #expect(sandbox["connection"] is NSNull)
            #expect(sandbox["connection_id"] is NSNull)
        }
    }

    @Test("checkCredentials, for a connection about to be stored: the fields of each type, custom auth run once, secrets redacted")
    func checkCredentials() async throws {
        try await TestApp.runWithIntegrations { app in
            func check(_ auth: String, _ credentials: JSONValue) async throws -> (failure: ScriptFailure?, logs: [ScriptLogLine]) {
                let id = try await app.integrationID(#"{"name": "\#(UUID().uuidString)", "auth": \#(auth)}"#)
                let integration = try await app.database.read { tx in try #require(try IntegrationStore.integrationOnly(tx, id: id)) }
                return await ConnectorRunner.checkCredentials(
                    credentials,
                    integration: integration,
                    secrets: IntegrationSecrets(),
                    scripts: app.services.scripts,
                    outbound: app.services.outbound
                )
            }
            #expect(try await check(#"{"type": "none"}"#, .object([:])).failure == nil)
            #expect(try await check(#"{"type": "api_key"}"#, .object(["api_key": .string("k-1234")])).failure == nil)
            #expect(try await check(#"{"type": "api_key"}"#, .object([:])).failure?.message.contains("api_key") == true)
            #expect(try await check(#"{"type": "basic"}"#, .object(["username": .string("ada")])).failure?.message.contains("password") == true)
            let custom = jsonString(
                """
                export async function authenticate(config, credentials, ctx) {
                  console.log("checking", credentials.token);
                  if (credentials.token !== "good-token-1") throw new Error("refused " + credentials.token);
                  return { headers: { Authorization: "Bearer " + credentials.token } };
                }
                """
            )
            let good = try await check(#"{"type": "custom", "code": \#(custom)}"#, .object(["token": .string("good-token-1")]))
            #expect(good.failure == nil)
            #expect(good.logs.map(\.message) == ["checking [redacted]"])
            let bad = try await check(#"{"type": "custom", "code": \#(custom)}"#, .object(["token": .string("bad-token-2")]))
            #expect(bad.failure?.message == "authenticate failed: refused [redacted]", "\(String(describing: bad.failure))")
            #expect(bad.failure?.line == 3)
            let shape = jsonString("export async function authenticate() { return { header: {} }; }")
            #expect(try await check(#"{"type": "custom", "code": \#(shape)}"#, .object([:])).failure?.name == "ShapeError")
        }
    }
}
