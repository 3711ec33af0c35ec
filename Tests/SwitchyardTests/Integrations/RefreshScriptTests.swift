import Foundation
import Testing

@testable import Switchyard

/// The integration's authentication code (`refresh(tokens, ctx)`) in place of the standard
/// refresh: in the JavaScript runtime, and scripted for every shape of answer.
@Suite("Token refresh: authentication code")
struct RefreshScriptTests {
    @Test("authentication code in the JavaScript runtime refreshes through the provider, and says null while the token is fresh")
    func authenticationCodeInTheRuntime() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (_, id) = try await RefreshTests.authorized(app, provider) { auth in
                auth.authenticationCode = """
                    const encode = (o) => Object.entries(o).map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");
                    export async function refresh(tokens, ctx) {
                      console.log("expires at " + tokens.expires_at);
                      const form = encode({grant_type: "refresh_token", refresh_token: tokens.refresh_token,
                        client_id: ctx.oauth.client_id, client_secret: ctx.oauth.client_secret});
                      const answer = await ctx.http.request({method: "POST", url: ctx.oauth.token_url,
                        headers: {"content-type": "application/x-www-form-urlencoded"}, body: form});
                      if (answer.status !== 200) return answer.json();
                      const fresh = answer.json();
                      return {access_token: fresh.access_token, refresh_token: fresh.refresh_token, expires_in: fresh.expires_in,
                        scope: fresh.scope};
                    }
                    """
            }
            app.clock.advance(by: 3100)
            let refreshed = try await app.services.connections.credentials(connectionID: id)
            #expect(refreshed.authLogs.contains { $0.message.hasPrefix("expires at ") }, "\(refreshed.authLogs)")
            #expect(RefreshTests.accessToken(refreshed).map(provider.isValid(accessToken:)) == true)
            #expect(provider.requests(grant: "refresh_token").count == 1)

            // The provider revoked everything: the code returns its invalid_grant, which needs reauthorization.
            provider.revokeEverything()
            app.clock.advance(by: 3100)
            await #expect(throws: ConnectionUnusable.self) { try await app.services.connections.credentials(connectionID: id) }
            #expect(try await app.database.read { tx in try ConnectionStore.connection(tx, id: id) }?.status == .needsReauthorization)
            await provider.shutdown()
        }
    }

    @Test("authentication code refresh(tokens, ctx): null keeps the token, tokens replace it, invalid_grant and bad shapes are failures")
    func authenticationCode() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (integration, id) = try await RefreshTests.authorized(app, provider) {
                $0.authenticationCode = "export async function refresh(tokens, ctx) {}"
            }
            let runner = ScriptedRunner(returning: nil)
            let service = app.connectionService(scripts: runner)
            app.clock.advance(by: 3100)
            let kept = try await service.credentials(connectionID: id)
            #expect(kept.connection.lastRefreshedAt == nil && kept.authLogs.contains { $0.message == "ran" })
            let request = try #require(runner.requests.first)
            #expect(request.entry == "refresh")
            guard case .json(let tokens) = request.arguments.first else { return }
            #expect(tokens.objectValue?["refresh_token"]?.stringValue?.hasPrefix("rt-") == true)
            #expect(tokens.objectValue?["expires_at"]?.stringValue != nil)
            // Looked at again after five minutes, not at every call.
            _ = try await service.credentials(connectionID: id)
            #expect(runner.requests.count == 1)
            // A 401 is answered by the code at once, deferral or not; null then is a failure.
            await #expect(throws: ConnectionUnusable.self) {
                try await service.refreshAfterUnauthorized(connectionID: id, rejected: RefreshTests.accessToken(kept) ?? "")
            }
            #expect(runner.requests.count == 2)
            #expect(try await app.storedConnection(integration).lastError?.message.contains("returned null") == true)

            app.clock.advance(by: 301)
            runner.answer { _ in
                ScriptOutcome(status: .succeeded, result: .object(["access_token": .string("scripted"), "expires_in": .int(900)]), duration: 0)
            }
            let replaced = try await service.credentials(connectionID: id)
            #expect(RefreshTests.accessToken(replaced) == "scripted")
            #expect(replaced.secrets.objectValue?["refresh_token"] == tokens.objectValue?["refresh_token"])
            #expect(replaced.connection.expiresAt?.millisecondsSince1970 == app.clock.now.addingTimeInterval(900).millisecondsSince1970)

            runner.answer { _ in ScriptOutcome(status: .succeeded, result: .object(["access_token": .int(1)]), duration: 0) }
            await #expect(throws: ConnectionUnusable.self) { try await service.refreshAfterUnauthorized(connectionID: id, rejected: "scripted") }
            #expect(try await app.storedConnection(integration).lastError?.message.contains("`access_token`") == true)

            app.clock.advance(by: 3600)
            runner.answer { _ in ScriptOutcome(status: .succeeded, result: .object(["error": .string("invalid_grant")]), duration: 0) }
            #expect(try await service.refresher.runDue() == 1)
            #expect(try await app.storedConnection(integration).status == .needsReauthorization)
            #expect(provider.requests(grant: "refresh_token").isEmpty)
            await provider.shutdown()
        }
    }
}
