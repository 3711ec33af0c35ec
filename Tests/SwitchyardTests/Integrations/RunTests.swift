import Foundation
import Testing

@testable import Switchyard

/// Connector runs on a connection: `POST /v1/workspaces/{ws}/connections/{id}/run/{key}`.
@Suite("Connector runs")
struct RunTests {
    /// An api_key integration calling `api`, with an active connection in the live workspace.
    static func connected(_ app: TestApp, api: LoopbackReceiver) async throws -> (integration: String, connection: Connection) {
        let code = """
            export async function run(input, ctx) {
              const answer = await ctx.http.request({ url: ctx.config.baseUrl + "/documents/" + input.document_id });
              console.log("answered", answer.status);
              return { status: answer.json().status };
            }
            """
        let id = try await app.integrationID(
            """
            {"name": "eSign", "configuration": {"baseUrl": "\(api.url("/api"))"}, "auth": {"type": "api_key", "name": "X-Key"},
             "connectors": [{"key": "document_status", "name": "Document status", "inputs": [{"name": "document_id", "type": "string", "required": true}],
                             "outputs": [{"name": "status", "type": "string", "required": true}], "code": \(jsonString(code))}]}
            """
        )
        let connection = try await app.makeConnection(integrationID: id, secrets: .object(["api_key": .string("run-key-424242")]))
        return (id, connection)
    }

    static func path(_ app: TestApp, _ connection: Connection, workspace: String? = nil) -> String {
        "/v1/workspaces/\(workspace ?? app.liveWorkspace.id)/connections/\(connection.id)"
    }

    @Test("a run carries the connection's key, is answered like a test run and kept in the connection's history")
    func runOnConnection() async throws {
        try await TestApp.runWithIntegrations { app in
            let api = try await LoopbackReceiver.start(.status(200, headers: [("content-type", "application/json")], body: #"{"status": "signed"}"#))
            defer { api.stopLater() }
            let (id, connection) = try await Self.connected(app, api: api)
            let base = Self.path(app, connection)
            let (_, member) = try await app.makeUser("member@example.com", role: .member)
            let run = try await app.request(.post, "\(base)/run/document_status", token: member, json: #"{"input": {"document_id": "D-7"}}"#)
            #expect(run.status == .ok, "\(run.body)")
            #expect(run["kind"] as? String == "run")
            #expect(run["status"] as? String == "succeeded", "\(run.body)")
            #expect(run.object("output")["status"] as? String == "signed")
            #expect(run["connection_id"] as? String == connection.id)
            #expect(run["integration_id"] as? String == id)
            #expect(run.objects("logs").map { $0["message"] as? String } == ["answered 200"])
            #expect(api.requests.first?.path == "/api/documents/D-7")
            #expect(api.requests.first?.header("x-key") == "run-key-424242")
            #expect((run.objects("http_calls").first?["request_headers"] as? [String: String])?["X-Key"] == "[redacted]")
            #expect(!run.body.contains("run-key-424242"))

            // Input checks as in a test run.
            let bad = try await app.request(.post, "\(base)/run/document_status", token: member, json: #"{"input": {}}"#)
            #expect(bad["status"] as? String == "failed")
            #expect(bad.object("error")["name"] as? String == "InputError")

            let runs = try await app.request(.get, "\(base)/runs", token: member)
            #expect(runs.objects("data").map { $0["id"] as? String } == [bad["id"] as? String, run["id"] as? String])
            // Test runs are listed with the integration, not here.
            _ = try await app.testRun(id, #"{"target": "document_status", "input": {"document_id": "D-8"}, "workspace": "\#(app.liveWorkspace.id)"}"#)
            #expect(try await app.request(.get, "\(base)/runs", token: member).objects("data").count == 2)
            #expect(try await app.request(.get, "/v1/integrations/\(id)/test-runs", token: member).objects("data").count == 1)
            try await app.request(.get, "\(base)/runs?after=x", token: member).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "after"
            )
        }
    }

    @Test("who may run: users who read the workspace and their tokens, apps with connections:run on it; never developers")
    func roles() async throws {
        try await TestApp.runWithIntegrations { app in
            let api = try await LoopbackReceiver.start(.status(200, body: #"{"status": "sent"}"#))
            defer { api.stopLater() }
            let (_, connection) = try await Self.connected(app, api: api)
            let run = "\(Self.path(app, connection))/run/document_status"
            let runs = "\(Self.path(app, connection))/runs"
            let body = #"{"input": {"document_id": "D"}}"#

            let (_, developer) = try await app.makeUser("dev@example.com", role: .developer)
            try await app.request(.post, run, token: developer, json: body).expectProblem(.forbidden, "forbidden")
            try await app.request(.get, runs, token: developer).expectProblem(.forbidden, "forbidden")

            let allowed = try await app.accessToken(for: try await app.makeApp("Runner", permissions: ["connections:run"]).app)
            let answer = try await app.request(.post, run, token: allowed, json: body)
            #expect(answer["status"] as? String == "succeeded", "\(answer.body)")
            #expect(answer.object("created_by")["type"] as? String == "app")
            #expect(try await app.request(.get, runs, token: allowed).objects("data").count == 1)

            let lacking = try await app.accessToken(for: try await app.makeApp("Reader", permissions: ["events:read"]).app)
            let refused = try await app.request(.post, run, token: lacking, json: body)
            refused.expectProblem(.forbidden, "forbidden")
            #expect((refused["detail"] as? String)?.contains("connections:run") == true)
            let elsewhere = try await app.accessToken(
                for: try await app.makeApp("Sandbox runner", workspaces: .list([app.sandboxWorkspace.id]), permissions: ["connections:run"]).app
            )
            try await app.request(.post, run, token: elsewhere, json: body).expectProblem(.forbidden, "forbidden")

            let limited = try await app.limitedToken([app.liveWorkspace.id])
            #expect(try await app.request(.post, run, token: limited, json: body)["status"] as? String == "succeeded")
            let otherWorkspace = try await app.limitedToken([app.sandboxWorkspace.id])
            try await app.request(.post, run, token: otherWorkspace, json: body).expectProblem(.forbidden, "forbidden")

            // The connection is of the live workspace: under another it does not exist.
            try await app.request(
                .post,
                "\(Self.path(app, connection, workspace: app.sandboxWorkspace.id))/run/document_status",
                token: app.ownerToken,
                json: body
            )
            .expectProblem(.notFound, "not-found")
            try await app.request(.post, "\(Self.path(app, connection))/run/missing", token: app.ownerToken, json: body).expectProblem(
                .notFound,
                "not-found"
            )
            try await app.request(
                .post,
                "/v1/workspaces/\(app.liveWorkspace.id)/connections/con_01ARZ3NDEKTSV4RRFFQ69G5FAV/run/document_status",
                token: app.ownerToken,
                json: body
            )
            .expectProblem(.notFound, "not-found")
            try await app.request(.post, run, token: app.ownerToken, json: #"{"inputs": {}}"#).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "inputs"
            )
            #expect(api.requests.count == 2)
        }
    }

    @Test("a connection that is not active gives a failed run with a ConnectionError, and calls nothing")
    func inactiveConnection() async throws {
        try await TestApp.runWithIntegrations { app in
            let api = try await LoopbackReceiver.start(.status(200, body: #"{"status": "sent"}"#))
            defer { api.stopLater() }
            let (id, _) = try await Self.connected(app, api: api)
            let pending = try await app.makeConnection(
                integrationID: id,
                workspaceID: app.sandboxWorkspace.id,
                secrets: .object([:]),
                status: .needsReauthorization
            )
            let run = try await app.request(
                .post,
                "\(Self.path(app, pending, workspace: app.sandboxWorkspace.id))/run/document_status",
                token: app.ownerToken,
                json: #"{"input": {"document_id": "D"}}"#
            )
            #expect(run["status"] as? String == "failed", "\(run.body)")
            #expect(run.object("error")["name"] as? String == "ConnectionError")
            #expect((run.object("error")["message"] as? String)?.contains("authorized again") == true)
            #expect(run.object("connection")["status"] as? String == "needs_reauthorization")
            #expect(api.requests.isEmpty)
            #expect(try await app.count("script_runs") == 1)
        }
    }

    @Test("an OAuth 2.0 connection's bearer token goes to baseUrl; a 401 refreshes once and the request is retried")
    func bearerAndRefresh() async throws {
        try await TestApp.runWithIntegrations { app in
            let api = try await LoopbackReceiver.start()
            api.respond { number in number == 1 ? .status(401, body: "expired") : .status(200, body: "fine") }
            // The provider's token endpoint, for a refresh that goes to it.
            let provider = try await LoopbackReceiver.start(
                .status(
                    200,
                    headers: [("content-type", "application/json")],
                    body: #"{"access_token": "at-2222222222", "token_type": "bearer", "expires_in": 3600, "refresh_token": "rt-3333333333"}"#
                )
            )
            defer {
                api.stopLater()
                provider.stopLater()
            }
            let code = """
                export async function run(input, ctx) {
                  const first = await ctx.http.request({ url: ctx.config.baseUrl + "/me" });
                  const second = await ctx.http.request({ url: ctx.config.baseUrl + "/me" });
                  return { first: first.status, second: second.status, type: ctx.auth.token_type };
                }
                """
            let id = try await app.integrationID(
                """
                {"name": "OAuth API", "configuration": {"baseUrl": "\(api.url())"},
                 "auth": {"type": "oauth2", "authorization_url": "\(provider.url("/authorize"))", "token_url": "\(provider.url("/token"))",
                          "client_id": "c", "client_secret": "oauth-client-secret"},
                 "connectors": [{"key": "me", "name": "Me", "code": \(jsonString(code))}]}
                """
            )
            let connection = try await app.makeConnection(
                integrationID: id,
                secrets: .object([
                    "access_token": .string("at-1111111111"), "refresh_token": .string("rt-1111111111"), "token_type": .string("bearer"),
                ])
            )
            let run = try await app.request(.post, "\(Self.path(app, connection))/run/me", token: app.ownerToken, json: "{}")
            #expect(run["status"] as? String == "succeeded", "\(run.body)")
            #expect(run.object("output")["first"] as? Int == 200, "the request refused with 401 is retried once refreshed")
            #expect(run.object("output")["second"] as? Int == 200)
            #expect(run.object("output")["type"] as? String == "bearer")
            let sent = api.requests.map { $0.header("authorization") }
            #expect(sent.count == 3)
            #expect(sent.first == "Bearer at-1111111111")
            // After the refresh, every request carries the token the connection holds now (the
            // provider's new one where the refresh reached it).
            #expect(sent[1] == sent[2])
            #expect(run.objects("http_calls").map { $0["status"] as? Int } == [401, 200, 200])
            #expect(run.objects("http_calls").allSatisfy { ($0["request_headers"] as? [String: String])?["Authorization"] == "[redacted]" })
            let notes = run.objects("auth_logs").compactMap { $0["message"] as? String }
            #expect(notes.contains { $0.contains("401") }, "\(notes)")
            for token in ["at-1111111111", "at-2222222222", "rt-1111111111", "rt-3333333333"] { #expect(!run.body.contains(token)) }
        }
    }
}
