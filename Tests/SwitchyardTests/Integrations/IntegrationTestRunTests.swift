import Foundation
import Testing

@testable import Switchyard

/// Test runs through `POST /v1/integrations/{id}/test`, with real scripts in the runtime and a
/// real HTTP server (LoopbackReceiver) standing in for the third-party API.
@Suite("Integration test runs")
struct IntegrationTestRunTests {
    /// An integration whose connector's code is `code`, with `auth`; answers its id.
    static func integration(
        _ app: TestApp,
        name: String = "eSign",
        baseURL: String,
        auth: String = #"{"type": "none"}"#,
        secrets: String = "{}",
        inputs: String = "[]",
        outputs: String = "[]",
        code: String
    ) async throws -> String {
        try await app.integrationID(
            """
            {"name": "\(name)", "configuration": {"baseUrl": "\(baseURL)", "tenant": "tenant-acme"}, "secret_configuration": \(secrets), "auth": \(auth),
             "connectors": [{"key": "send_for_esign", "name": "Send for eSign", "inputs": \(inputs), "outputs": \(outputs), "code": \(jsonString(code))}]}
            """
        )
    }

    @Test("a run shows the output, logs and every HTTP call; credentials go only to baseUrl and are redacted in the record")
    func logsAndCalls() async throws {
        try await TestApp.runWithIntegrations { app in
            let api = try await LoopbackReceiver.start(.status(201, headers: [("content-type", "application/json")], body: #"{"id": "env-1"}"#))
            let elsewhere = try await LoopbackReceiver.start(.status(200, body: "ok"), host: "127.0.0.2")
            defer {
                api.stopLater()
                elsewhere.stopLater()
            }
            let code = """
                export async function run(input, ctx) {
                  console.log("sending", input.document_id, "signed with", ctx.config.signingKey);
                  const sent = await ctx.http.request({ method: "POST", url: ctx.config.baseUrl + "/envelopes",
                    query: { sig: ctx.config.signingKey, mode: "fast" }, body: { document: input.document_id } });
                  const other = await ctx.http.request({ url: "\(elsewhere.url("/elsewhere"))", headers: { "X-Trace": "t-1" } });
                  console.warn("statuses", sent.status, other.status, other.body);
                  return { envelope_id: sent.json().id, key_seen: ctx.auth.api_key };
                }
                """
            let id = try await Self.integration(
                app,
                baseURL: api.url("/api"),
                auth: #"{"type": "api_key", "name": "Authorization", "prefix": "Token "}"#,
                secrets: #"{"signingKey": "sk-secret-value-123"}"#,
                inputs: #"[{"name": "document_id", "type": "string", "required": true}]"#,
                outputs: #"[{"name": "envelope_id", "type": "string", "required": true}]"#,
                code: code
            )
            let connection = try await app.makeConnection(integrationID: id, secrets: .object(["api_key": .string("key-abcdef-123456")]))
            let run = try await app.testRun(
                id,
                #"{"target": "send_for_esign", "input": {"document_id": "D-1"}, "workspace": "\#(app.liveWorkspace.id)"}"#
            )
            #expect(run["status"] as? String == "succeeded", "\(run.body)")
            #expect(run["kind"] as? String == "test")
            #expect(run["target"] as? String == "send_for_esign")
            #expect(run["connection_id"] as? String == connection.id)
            #expect(run["workspace_id"] as? String == app.liveWorkspace.id)
            #expect(run.object("connection")["status"] as? String == "active")
            #expect(run.object("output")["envelope_id"] as? String == "env-1")
            #expect(run.object("output")["key_seen"] as? String == "[redacted]")
            #expect(run["error"] is NSNull)
            #expect((run["duration_ms"] as? Double ?? 0) > 0)
            #expect(run.object("created_by")["type"] as? String == "api_token")

            // What the third parties received: the key only where baseUrl is.
            let received = try #require(api.requests.first)
            #expect(received.method == "POST")
            #expect(received.path == "/api/envelopes?mode=fast&sig=sk-secret-value-123")
            #expect(received.header("authorization") == "Token key-abcdef-123456")
            #expect(received.header("content-type") == "application/json")
            #expect(received.bodyText == #"{"document":"D-1"}"#)
            let other = try #require(elsewhere.requests.first)
            #expect(other.header("authorization") == nil)
            #expect(other.header("x-trace") == "t-1")

            let logs = run.objects("logs")
            #expect(logs.map { $0["level"] as? String } == ["log", "warn"])
            #expect(logs.first?["message"] as? String == "sending D-1 signed with [redacted]")
            #expect(logs.last?["message"] as? String == "statuses 201 200 ok")
            let calls = run.objects("http_calls")
            #expect(calls.count == 2)
            #expect(calls.first?["method"] as? String == "POST")
            #expect(calls.first?["url"] as? String == api.url("/api/envelopes?mode=fast&sig=[redacted]"))
            #expect((calls.first?["request_headers"] as? [String: String])?["Authorization"] == "[redacted]")
            #expect((calls.first?["request_headers"] as? [String: String])?["content-type"] == "application/json")
            #expect(calls.first?["status"] as? Int == 201)
            #expect(calls.first?["error"] is NSNull)
            #expect(calls.last?["method"] as? String == "GET")
            #expect(calls.last?["url"] as? String == elsewhere.url("/elsewhere"))
            #expect(calls.last?["request_headers"] as? [String: String] == ["X-Trace": "t-1"])
            let authLogs = run.objects("auth_logs").compactMap { $0["message"] as? String }
            #expect(authLogs.contains { $0.contains("Using the connection \(connection.id)") }, "\(authLogs)")
            #expect(authLogs.contains { $0.contains("carry the header Authorization") }, "\(authLogs)")

            let history = try await app.request(.get, "/v1/integrations/\(id)/test-runs", token: app.ownerToken)
            #expect(history.objects("data").first?["id"] as? String == run["id"] as? String)
            let kept = try #require(history.objects("data").first)
            #expect((kept["http_calls"] as? [[String: Any]])?.map { $0["url"] as? String } == calls.map { $0["url"] as? String })
            #expect((kept["logs"] as? [[String: Any]])?.count == 2)
            for text in [run.body, history.body] {
                #expect(!text.contains("key-abcdef-123456"))
                #expect(!text.contains("sk-secret-value-123"))
            }
        }
    }

    @Test("inputs are checked before the run (defaults applied): a mismatch is a failed run with an InputError naming the parameter")
    func inputs() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await Self.integration(
                app,
                baseURL: "https://api.example.com",
                inputs: """
                    [{"name": "document_id", "type": "string", "required": true}, {"name": "copies", "type": "integer", "default": 1},
                     {"name": "ratio", "type": "number"}, {"name": "flags", "type": "object"}, {"name": "tags", "type": "array"}, {"name": "urgent", "type": "boolean"}]
                    """,
                code: "export async function run(input, ctx) { console.log('ran'); return input; }"
            )
            let cases: [(String, String)] = [
                (#"{}"#, "document_id"),
                (#"{"document_id": 5}"#, "document_id"),
                (#"{"document_id": "D", "copies": "two"}"#, "copies"),
                (#"{"document_id": "D", "copies": 1.5}"#, "copies"),
                (#"{"document_id": "D", "ratio": "x"}"#, "ratio"),
                (#"{"document_id": "D", "flags": []}"#, "flags"),
                (#"{"document_id": "D", "tags": {}}"#, "tags"),
                (#"{"document_id": "D", "urgent": "yes"}"#, "urgent"),
                (#"{"document_id": "D", "colour": "red"}"#, "colour"),
                (#""D""#, "object"),
            ]
            for (input, parameter) in cases {
                let run = try await app.testRun(id, #"{"target": "send_for_esign", "input": \#(input)}"#)
                #expect(run["status"] as? String == "failed", "\(input): \(run.body)")
                #expect(run.object("error")["name"] as? String == "InputError", "\(input): \(run.body)")
                #expect((run.object("error")["message"] as? String)?.contains(parameter) == true, "\(input): \(run.body)")
                #expect(run["output"] is NSNull)
                #expect(run.objects("logs").isEmpty)
            }
            let good = try await app.testRun(
                id,
                #"{"target": "send_for_esign", "input": {"document_id": "D", "ratio": 2, "copies": 3.0, "urgent": null}}"#
            )
            #expect(good["status"] as? String == "succeeded", "\(good.body)")
            #expect(good.object("output")["copies"] as? Int == 3)
            let defaulted = try await app.testRun(id, #"{"target": "send_for_esign", "input": {"document_id": "D"}}"#)
            #expect(defaulted.object("output")["copies"] as? Int == 1)
            #expect(defaulted.object("input").keys.sorted() == ["document_id"])
            #expect(defaulted.objects("logs").map { $0["message"] as? String } == ["ran"])
        }
    }

    @Test("outputs are checked after the run: a mismatch is a ShapeError naming the output, with the output kept")
    func outputs() async throws {
        try await TestApp.runWithIntegrations { app in
            let outputs = #"[{"name": "envelope_id", "type": "string", "required": true}, {"name": "pages", "type": "integer"}]"#
            let cases: [(String, String)] = [
                ("return { envelope_id: 5 };", "envelope_id"),
                ("return { pages: 2 };", "envelope_id"),
                ("return { envelope_id: 'e', pages: 'many' };", "pages"),
                ("return 'e';", "envelope_id"),
                ("return;", "envelope_id"),
            ]
            for (index, (body, output)) in cases.enumerated() {
                let id = try await Self.integration(
                    app,
                    name: "Shape \(index)",
                    baseURL: "https://api.example.com",
                    outputs: outputs,
                    code: "export async function run(input, ctx) { \(body) }"
                )
                let run = try await app.testRun(id, #"{"target": "send_for_esign"}"#)
                #expect(run["status"] as? String == "failed", "\(body): \(run.body)")
                #expect(run.object("error")["name"] as? String == "ShapeError", "\(body): \(run.body)")
                #expect((run.object("error")["message"] as? String)?.contains(output) == true, "\(body): \(run.body)")
            }
            let kept = try await app.request(.get, "/v1/integrations?q=Shape%200", token: app.ownerToken)
            let first = try #require(kept.objects("data").first?["id"] as? String)
            let runs = try await app.request(.get, "/v1/integrations/\(first)/test-runs", token: app.ownerToken)
            #expect((runs.objects("data").first?["output"] as? [String: Any])?["envelope_id"] as? Int == 5)
        }
    }

    @Test("a thrown error is a failed run with the error's name, message and line, and the logs before it")
    func thrownError() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await Self.integration(
                app,
                baseURL: "https://api.example.com",
                code: """
                    export async function run(input, ctx) {
                      console.log("about to fail");
                      throw new TypeError("no such envelope");
                    }
                    """
            )
            let run = try await app.testRun(id, #"{"target": "send_for_esign"}"#)
            #expect(run["status"] as? String == "failed")
            let error = run.object("error")
            #expect(error["name"] as? String == "TypeError")
            #expect((error["message"] as? String)?.contains("no such envelope") == true)
            #expect(error["line"] as? Int == 3)
            #expect(run.objects("logs").map { $0["message"] as? String } == ["about to fail"])
        }
    }

    @Test("a script calling a blocked address gets an error it can catch or fail with, recorded; the server stays healthy")
    func blockedAddress() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await Self.integration(
                app,
                baseURL: "https://api.example.com",
                code: """
                    export async function run(input, ctx) {
                      if (input.caught) {
                        try { await ctx.http.request({ url: "http://10.0.0.1/internal" }); } catch (e) { return { caught: String(e.message || e) }; }
                      }
                      await ctx.http.request({ url: "http://169.254.169.254/latest/meta-data" });
                      return { reached: true };
                    }
                    """
            )
            let failed = try await app.testRun(id, #"{"target": "send_for_esign", "input": {}}"#)
            #expect(failed["status"] as? String == "failed", "\(failed.body)")
            #expect((failed.object("error")["message"] as? String)?.contains("not an allowed target") == true, "\(failed.body)")
            let call = try #require(failed.objects("http_calls").first)
            #expect(call["url"] as? String == "http://169.254.169.254/latest/meta-data")
            #expect(call["status"] is NSNull)
            #expect((call["error"] as? String)?.contains("cloud metadata") == true, "\(call)")
            #expect(try await app.request(.get, "/healthz").status == .ok)
        }
    }

    @Test("unknown connectors are 404; a bad target or workspace is a 422")
    func badTestRequests() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await Self.integration(app, baseURL: "https://api.example.com", code: "export async function run() { return {}; }")
            try await app.request(.post, "/v1/integrations/\(id)/test", token: app.ownerToken, json: #"{"target": "missing"}"#)
                .expectProblem(.notFound, "not-found")
            try await app.request(.post, "/v1/integrations/int_01ARZ3NDEKTSV4RRFFQ69G5FAV/test", token: app.ownerToken, json: #"{"target": "auth"}"#)
                .expectProblem(.notFound, "not-found")
            let cases: [(String, String)] = [
                (#"{}"#, "target"),
                (#"{"target": "Not A Key"}"#, "target"),
                (#"{"target": "auth", "workspace": "nope"}"#, "workspace"),
                (#"{"target": "auth", "workspace": "ws_01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#, "workspace"),
                (#"{"target": "auth", "extra": 1}"#, "extra"),
            ]
            for (body, field) in cases {
                try await app.request(.post, "/v1/integrations/\(id)/test", token: app.ownerToken, json: body)
                    .expectProblem(.unprocessableContent, "validation-failed", field: field)
            }
            #expect(try await app.count("script_runs") == 0)
        }
    }

    @Test("test runs are kept, newest first, a page at a time; members read them")
    func history() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await Self.integration(app, baseURL: "https://api.example.com", code: "export async function run(input) { return {}; }")
            let other = try await Self.integration(
                app,
                name: "Other",
                baseURL: "https://api.example.com",
                code: "export async function run() { return {}; }"
            )
            var ids: [String] = []
            for _ in 0..<3 {
                ids.append(try #require(try await app.testRun(id, #"{"target": "send_for_esign"}"#)["id"] as? String))
            }
            _ = try await app.testRun(other, #"{"target": "auth"}"#)
            let (_, member) = try await app.makeUser("member@example.com", role: .member)
            let first = try await app.request(.get, "/v1/integrations/\(id)/test-runs?limit=2", token: member)
            #expect(first.objects("data").map { $0["id"] as? String } == [ids[2], ids[1]])
            let after = try #require(first["next_after"] as? String)
            let second = try await app.request(.get, "/v1/integrations/\(id)/test-runs?limit=2&after=\(after)", token: member)
            #expect(second.objects("data").map { $0["id"] as? String } == [ids[0]])
            #expect(second["next_after"] is NSNull)
            try await app.request(.get, "/v1/integrations/\(id)/test-runs?after=nope", token: member)
                .expectProblem(.unprocessableContent, "validation-failed", field: "after")
            // Members read the history but do not run tests.
            try await app.request(.post, "/v1/integrations/\(id)/test", token: member, json: #"{"target": "auth"}"#).expectProblem(
                .forbidden,
                "forbidden"
            )
        }
    }

    @Test("runs are counted by status and timed in /metrics")
    func metrics() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await Self.integration(app, baseURL: "https://api.example.com", code: "export async function run() { return {}; }")
            _ = try await app.testRun(id, #"{"target": "send_for_esign"}"#)
            _ = try await app.testRun(id, #"{"target": "send_for_esign", "input": {"x": 1}}"#)
            let metrics = try await app.request(.get, "/metrics").body
            #expect(metrics.contains(#"switchyard_connector_runs_total{status="succeeded"}"#), "\(metrics)")
            #expect(metrics.contains(#"switchyard_connector_runs_total{status="failed"}"#))
            #expect(metrics.contains("switchyard_connector_run_duration_seconds"))
        }
    }
}
