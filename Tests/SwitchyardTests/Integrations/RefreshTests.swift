import Foundation
import Testing

@testable import Switchyard

/// Tokens that stay valid with nobody watching: refresh ahead of expiry, on demand and after a
/// 401, one refresh at a time per connection, and what each failure leaves. The clock is moved,
/// never waited for.
@Suite("Token refresh")
struct RefreshTests {
    /// An authorized connection of `provider`; answers the integration and the connection's id.
    static func authorized(
        _ app: TestApp,
        _ provider: OAuthProviderFixture,
        change: (inout AuthSpec) -> Void = { _ in }
    ) async throws -> (
        Integration, String
    ) {
        let integration = try await app.insertOAuthIntegration(provider, change: change)
        let page = try await app.authorize(integration, provider: provider)
        #expect(page.status == .ok, "\(page.body)")
        return (integration, try await app.storedConnection(integration).id)
    }

    static func accessToken(_ credentials: ConnectionCredentials) -> String? {
        credentials.secrets.objectValue?["access_token"]?.stringValue
    }

    @Test("serve runs the refresher; it refreshes 10 minutes before expiry, with the rotated refresh token, and not before")
    func refreshAheadOfExpiry() async throws {
        try await TestApp.runWithProviders { app in
            #expect(app.services.workerServices(logger: TestDatabase.logger).contains { $0 is WorkerService<TokenRefresher> })
            let provider = try await OAuthProviderFixture.start()
            let (_, id) = try await Self.authorized(app, provider)
            let refresher = app.services.connections.refresher
            #expect(try await refresher.runDue() == 0)
            app.clock.advance(by: 3600 - 601)
            #expect(try await refresher.runDue() == 0)
            app.clock.advance(by: 1)
            #expect(try await refresher.runDue() == 1)
            let refresh = try #require(provider.requests(grant: "refresh_token").first)
            #expect(refresh.form["refresh_token"]?.hasPrefix("rt-") == true && refresh.form["client_secret"] == "secret-1")

            let connection = try await app.services.connections.credentials(connectionID: id)
            #expect(connection.connection.lastRefreshedAt?.millisecondsSince1970 == app.clock.now.millisecondsSince1970)
            #expect(connection.connection.expiresAt?.millisecondsSince1970 == app.clock.now.addingTimeInterval(3600).millisecondsSince1970)
            #expect(Self.accessToken(connection).map(provider.isValid(accessToken:)) == true)
            #expect(connection.secrets.objectValue?["refresh_token"]?.stringValue != refresh.form["refresh_token"])
            #expect(try await refresher.runDue() == 0)

            // The next one uses the rotated token; the old one is dead at the provider.
            app.clock.advance(by: 3000)
            #expect(try await refresher.runDue() == 1)
            #expect(provider.requests(grant: "refresh_token").map { $0.form["refresh_token"] }.count == 2)
            #expect(try await app.storedConnection(try await app.services.connections.credentials(connectionID: id).integration).status == .active)
            let answer = try await app.request(.get, "\(app.connectionsPath)/\(id)", token: app.ownerToken)
            #expect(answer["last_refreshed_at"] as? String == RFC3339.format(app.clock.now))
            await provider.shutdown()
        }
    }

    @Test("a short-lived token is refreshed at half its lifetime, on demand by credentials(connectionID:)")
    func halfLifetimeOnDemand() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start(OAuthProviderFixture.Settings(expiresIn: 600))
            let (_, id) = try await Self.authorized(app, provider)
            let first = try await app.services.connections.credentials(connectionID: id)
            app.clock.advance(by: 299)
            #expect(Self.accessToken(try await app.services.connections.credentials(connectionID: id)) == Self.accessToken(first))
            #expect(provider.requests(grant: "refresh_token").isEmpty)
            app.clock.advance(by: 1)
            let refreshed = try await app.services.connections.credentials(connectionID: id)
            #expect(Self.accessToken(refreshed) != Self.accessToken(first))
            #expect(refreshed.authLogs.contains { $0.message.contains("token refreshed") })
            #expect(provider.requests(grant: "refresh_token").count == 1)
            await provider.shutdown()
        }
    }

    @Test("two concurrent refreshes of one connection, by two refreshers over one database, make one token request")
    func concurrentRefreshes() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (_, id) = try await Self.authorized(app, provider)
            provider.update { $0.delay = 0.3 }
            app.clock.advance(by: 3100)
            // A second refresher stands for a second process: they share only the database.
            let other = app.connectionService()
            async let one = app.services.connections.credentials(connectionID: id)
            async let two = other.credentials(connectionID: id)
            async let scan = other.refresher.runDue()
            let (a, b, _) = try await (one, two, scan)
            #expect(provider.requests(grant: "refresh_token").count == 1)
            #expect(Self.accessToken(a) == Self.accessToken(b))
            #expect(Self.accessToken(a).map(provider.isValid(accessToken:)) == true)
            let state = try await app.database.read { tx in try ConnectionStore.refreshState(tx, id: id) }
            #expect(state?.leaseID == nil && state?.failures == 0)
            await provider.shutdown()
        }
    }

    @Test("after a 401 the token is refreshed once; a token someone already replaced is not refreshed again")
    func refreshAfterUnauthorized() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (_, id) = try await Self.authorized(app, provider)
            let connections = app.services.connections
            let rejected = try #require(Self.accessToken(try await connections.credentials(connectionID: id)))
            let fresh = try await connections.refreshAfterUnauthorized(connectionID: id, rejected: rejected)
            #expect(Self.accessToken(fresh) != rejected)
            let again = try await app.connectionService().refreshAfterUnauthorized(connectionID: id, rejected: rejected)
            #expect(Self.accessToken(again) == Self.accessToken(fresh))
            #expect(provider.requests(grant: "refresh_token").count == 1)

            let keyed = try await app.insertIntegration(name: "Keyed", auth: AuthSpec(type: .apiKey))
            let created = try await app.request(
                .post,
                app.connectionsPath,
                token: app.ownerToken,
                json: #"{"integration": "\#(keyed.id)", "credentials": {"api_key": "k"}}"#
            )
            await #expect(throws: ConnectionUnusable.self) {
                try await connections.refreshAfterUnauthorized(connectionID: try #require(created["id"] as? String), rejected: "k")
            }
            await provider.shutdown()
        }
    }

    @Test("invalid_grant: needs_reauthorization at once, mail to owners, admins and integration admins, an activity entry")
    func invalidGrant() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (integration, id) = try await Self.authorized(app, provider)
            for (email, role) in [
                ("admin@example.com", Role.admin), ("ia@example.com", .integrationAdmin), ("m@example.com", .member), ("d@example.com", .developer),
            ] {
                _ = try await app.makeUser(email, role: role)
            }
            provider.revokeEverything()
            app.clock.advance(by: 3100)
            #expect(try await app.services.connections.refresher.runDue() == 1)
            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .needsReauthorization)
            #expect(connection.lastError?.message.contains("invalid_grant") == true)
            for email in ["owner@example.com", "admin@example.com", "ia@example.com"] {
                let mails = try await app.mails(to: email).filter { $0.subject.hasPrefix("Integration") }
                #expect(mails.count == 1, "\(email)")
                #expect(mails.first?.subject == "Integration Provider needs to be authorized again")
                #expect(mails.first?.body.contains("/v1/integrations/\(integration.id)/authorize?workspace=\(app.liveWorkspace.id)") == true)
                #expect(mails.first?.body.contains("rt-") == false)
            }
            #expect(try await app.mails(to: "m@example.com").filter { $0.subject.hasPrefix("Integration") }.isEmpty)
            #expect(try await app.mails(to: "d@example.com").filter { $0.subject.hasPrefix("Integration") }.isEmpty)
            let entries = try await app.connectionActivity("connection.needs_reauthorization")
            #expect(entries.count == 1 && entries.first?.optionalString("target_id") == id)

            await #expect(throws: ConnectionUnusable.self) { try await app.services.connections.credentials(connectionID: id) }
            #expect(try await app.services.connections.refresher.runDue() == 0)
            #expect(provider.requests(grant: "refresh_token").count == 1)
            let answer = try await app.request(.get, "\(app.connectionsPath)/\(id)", token: app.ownerToken)
            #expect(answer["status"] as? String == "needs_reauthorization")

            // Authorizing again makes it active, its failures forgotten.
            #expect(try await app.authorize(integration, provider: provider).status == .ok)
            #expect(try await app.storedConnection(integration).status == .active)
            #expect(try await app.database.read { tx in try ConnectionStore.refreshState(tx, id: id) }?.failures == 0)
            await provider.shutdown()
        }
    }

    @Test("transient failures cool down and are counted; the current token is used meanwhile; the fifth needs reauthorization")
    func transientFailures() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (integration, id) = try await Self.authorized(app, provider)
            let refresher = app.services.connections.refresher
            let token = Self.accessToken(try await app.services.connections.credentials(connectionID: id))
            for _ in 0..<5 { provider.enqueue(.respond(status: 503, contentType: "text/html", body: "<title>Maintenance</title>")) }
            app.clock.advance(by: 3100)
            #expect(try await refresher.runDue() == 1)
            var state = try #require(try await app.database.read { tx in try ConnectionStore.refreshState(tx, id: id) })
            #expect(state.failures == 1 && (state.notBefore ?? .distantPast) > app.clock.now)
            #expect(try await app.storedConnection(integration).lastError?.message.contains("Maintenance") == true)
            #expect(try await refresher.runDue() == 0)

            // Cooling down: the still-valid token is used, with a note for the run's auth logs.
            let during = try await app.services.connections.credentials(connectionID: id)
            #expect(Self.accessToken(during) == token)
            #expect(during.authLogs.contains { $0.level == "warn" })
            #expect(provider.requests(grant: "refresh_token").count == 1)

            for failures in 2...4 {
                app.clock.advance(by: 3600)
                #expect(try await refresher.runDue() == 1)
                state = try #require(try await app.database.read { tx in try ConnectionStore.refreshState(tx, id: id) })
                #expect(state.failures == failures)
            }
            // Expired and cooling down: nothing usable.
            await #expect(throws: ConnectionUnusable.self) { try await app.services.connections.credentials(connectionID: id) }
            #expect(try await app.connectionActivity("connection.refresh_failed").count == 4)
            #expect(try await app.mails(to: "owner@example.com").isEmpty)

            app.clock.advance(by: 3600)
            #expect(try await refresher.runDue() == 1)
            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .needsReauthorization)
            #expect(connection.lastError?.message.contains("5 times") == true)
            #expect(try await app.mails(to: "owner@example.com").count == 1)
            await provider.shutdown()
        }
    }

    @Test("a token endpoint that never answers is a timeout, counted like any transient failure")
    func timeout() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let hanging = try await LoopbackReceiver.start(.hang)
            let (authorized, id) = try await Self.authorized(app, provider)
            var integration = authorized
            integration.auth.tokenUrl = hanging.url("/token")
            try await app.database.write { [integration] tx in
                try IntegrationStore.update(tx, integration, sealedSecretConfiguration: nil, sealedAuthSecrets: nil)
            }
            let service = app.connectionService(tokenTimeout: 0.5)
            app.clock.advance(by: 3100)
            let used = try await service.credentials(connectionID: id)
            #expect(used.authLogs.contains { $0.message.contains("did not answer within") }, "\(used.authLogs)")
            #expect(try await app.database.read { tx in try ConnectionStore.refreshState(tx, id: id) }?.failures == 1)
            #expect(hanging.requests.count == 1)
            try await hanging.shutdown()
            await provider.shutdown()
        }
    }

    @Test("a client-credentials token is requested again when it is due")
    func clientCredentialsRenewal() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let machine = try await app.insertOAuthIntegration(provider, name: "Machine") { $0.grant = .clientCredentials }
            let created = try await app.request(.post, app.connectionsPath, token: app.ownerToken, json: #"{"integration": "\#(machine.id)"}"#)
            let id = try #require(created["id"] as? String)
            app.clock.advance(by: 3100)
            #expect(try await app.services.connections.refresher.runDue() == 1)
            #expect(provider.requests(grant: "client_credentials").count == 2)
            #expect(
                try await app.storedConnection(machine).expiresAt?.millisecondsSince1970
                    == app.clock.now.addingTimeInterval(3600).millisecondsSince1970
            )
            let token = Self.accessToken(try await app.services.connections.credentials(connectionID: id))
            #expect(token.map(provider.isValid(accessToken:)) == true)
            await provider.shutdown()
        }
    }

    @Test("a token without a refresh token is used until it expires, then the connection needs reauthorization")
    func noRefreshToken() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start(OAuthProviderFixture.Settings(issueRefreshToken: false))
            let (integration, id) = try await Self.authorized(app, provider)
            app.clock.advance(by: 3100)
            #expect(try await app.services.connections.refresher.runDue() == 1)
            #expect(try await app.storedConnection(integration).status == .active)
            #expect(try await app.services.connections.refresher.runDue() == 0)
            #expect(Self.accessToken(try await app.services.connections.credentials(connectionID: id)) != nil)
            app.clock.advance(by: 500)
            #expect(try await app.services.connections.refresher.runDue() == 1)
            let connection = try await app.storedConnection(integration)
            #expect(connection.status == .needsReauthorization)
            #expect(connection.lastError?.message.contains("no refresh token") == true)
            #expect(try await app.mails(to: "owner@example.com").count == 1)
            #expect(provider.requests(grant: "refresh_token").isEmpty)
            await provider.shutdown()
        }
    }

    @Test("a lease left by a dead process ends with its time; a re-authorization takes the lease from a refresh under way")
    func leases() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (integration, id) = try await Self.authorized(app, provider)
            let now = app.clock.now
            #expect(
                try await app.database.write { tx in
                    try ConnectionStore.claimLease(tx, id: id, leaseID: "dead", until: now.addingTimeInterval(60), now: now)
                }
            )
            #expect(
                try await app.database.write { tx in
                    try !ConnectionStore.claimLease(tx, id: id, leaseID: "other", until: now.addingTimeInterval(60), now: now)
                }
            )
            app.clock.advance(by: 3100)
            let refreshed = try await app.services.connections.credentials(connectionID: id)
            #expect(refreshed.connection.lastRefreshedAt?.millisecondsSince1970 == app.clock.now.millisecondsSince1970)

            let later = app.clock.now
            #expect(
                try await app.database.write { tx in
                    try ConnectionStore.claimLease(tx, id: id, leaseID: "slow", until: later.addingTimeInterval(60), now: later)
                }
            )
            #expect(try await app.authorize(integration, provider: provider).status == .ok)
            let sealed = try app.services.sealer.sealConnectionSecrets(.object(["access_token": .string("stale")]))
            let stored = try await app.database.write { tx in
                try ConnectionStore.finishRefresh(tx, id: id, leaseID: "slow", sealedSecrets: sealed, scopes: nil, expiresAt: nil, at: later)
            }
            #expect(!stored)
            #expect(Self.accessToken(try await app.services.connections.credentials(connectionID: id)) != "stale")
            await provider.shutdown()
        }
    }

    @Test("the scan does not pick again a connection it found nothing to do for (its integration no longer uses OAuth 2.0)")
    func nothingToDo() async throws {
        try await TestApp.runWithProviders { app in
            let provider = try await OAuthProviderFixture.start()
            let (authorized, _) = try await Self.authorized(app, provider)
            var integration = authorized
            integration.auth = AuthSpec(type: .apiKey)
            try await app.database.write { [integration] tx in
                try IntegrationStore.update(tx, integration, sealedSecretConfiguration: nil, sealedAuthSecrets: nil)
            }
            app.clock.advance(by: 3100)
            #expect(try await app.services.connections.refresher.runDue() == 1)
            #expect(try await app.services.connections.refresher.runDue() == 0)
            #expect(provider.requests(grant: "refresh_token").isEmpty)
            await provider.shutdown()
        }
    }
}
