import Foundation
import Testing

@testable import Switchyard

/// The integration's callback code (`exchange(params, ctx)`) in the Authorize flow: in the
/// JavaScript runtime, and scripted to check how strictly its answer is read.
@Suite("Authorize flow: callback code")
struct AuthorizeScriptTests {
    @Test("callback code in the JavaScript runtime exchanges the code at the provider itself")
    func callbackCodeInTheRuntime() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider) { auth in
                auth.callbackCode = """
                    const encode = (o) => Object.entries(o).map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");
                    export async function exchange(params, ctx) {
                      const form = encode({grant_type: "authorization_code", code: params.code,
                        redirect_uri: params.redirect_uri, code_verifier: params.code_verifier,
                        client_id: ctx.oauth.client_id, client_secret: ctx.oauth.client_secret});
                      const answer = await ctx.http.request({method: "POST", url: ctx.oauth.token_url,
                        headers: {"content-type": "application/x-www-form-urlencoded"}, body: form});
                      console.log("token endpoint answered " + answer.status);
                      const tokens = answer.json();
                      return {access_token: tokens.access_token, refresh_token: tokens.refresh_token, expires_in: tokens.expires_in};
                    }
                    """
            }
            let page = try await app.authorize(integration, provider: provider)
            #expect(page.status == .ok, "\(page.body)")
            #expect(provider.requests(grant: "authorization_code").count == 1)
            let connection = try await app.storedConnection(integration)
            let token = try await app.services.connections.credentials(connectionID: connection.id).secrets.objectValue?["access_token"]
            #expect(token?.stringValue.map(provider.isValid(accessToken:)) == true)
            await provider.shutdown()
        }
    }

    @Test("callback code exchanges the code itself: params and ctx as documented, its answer read strictly")
    func callbackCode() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let integration = try await app.insertOAuthIntegration(provider) { $0.callbackCode = "export async function exchange(params, ctx) {}" }
            let runner = ScriptedRunner(returning: .object(["access_token": .string("from-script"), "expires_in": .string("120")]))
            let service = app.connectionService(scripts: runner)
            func authorize() async throws -> ConnectionService.CallbackOutcome {
                let start = try await service.startAuthorization(
                    caller: app.caller(),
                    integrationID: integration.id,
                    workspaceID: app.liveWorkspace.id
                )
                let query = try TestApp.query(of: start.url)
                return try await service.completeAuthorization(
                    query: ["code": "the-code", "state": try #require(query["state"])],
                    audit: .system("test")
                )
            }
            guard case .connected(let connection, _, _) = try await authorize() else {
                Issue.record("not connected")
                return
            }
            #expect(provider.requests.isEmpty)
            let request = try #require(runner.requests.first)
            #expect(request.entry == "exchange")
            guard case .json(let params) = request.arguments.first, case .context(let context) = request.arguments.last else {
                Issue.record("unexpected arguments")
                return
            }
            #expect(params.objectValue?["code"] == .string("the-code"))
            #expect(params.objectValue?["code_verifier"]?.stringValue?.count == 43)
            #expect(params.objectValue?["redirect_uri"] == .string(service.redirectURI))
            #expect(context.objectValue?["oauth"]?.objectValue?["client_secret"] == .string("secret-1"))
            #expect(connection.expiresAt?.millisecondsSince1970 == app.clock.now.addingTimeInterval(120).millisecondsSince1970)
            #expect(try await service.credentials(connectionID: connection.id).secrets.objectValue?["access_token"] == .string("from-script"))

            for (result, words) in [
                (JSONValue.object(["access_token": .string("t"), "extra": .bool(true)]), "unknown member `extra`"),
                (.string("t"), "returned a string"), (.null, "returned nothing"),
                (.object(["error": .string("invalid_grant"), "error_description": .string("stale")]), "invalid_grant: stale"),
            ] {
                runner.answer { _ in ScriptOutcome(status: .succeeded, result: result, duration: 0) }
                guard case .refused(_, let message) = try await authorize() else {
                    Issue.record("\(result) was accepted")
                    continue
                }
                #expect(message.contains(words), "\(message)")
            }
            runner.answer { _ in
                ScriptOutcome(status: .failed, failure: ScriptFailure(name: "TypeError", message: "x is undefined", line: 3, column: 7), duration: 0)
            }
            guard case .refused(_, let message) = try await authorize() else { return }
            #expect(message.contains("exchange() threw TypeError: x is undefined (line 3, column 7)"), "\(message)")
            #expect(try await service.credentials(connectionID: connection.id).secrets.objectValue?["access_token"] == .string("from-script"))
            await provider.shutdown()
        }
    }
}
