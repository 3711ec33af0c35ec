import Foundation
import Testing

@testable import Switchyard

/// Apps written straight to the store, for the tests of what comes after registration (OAuth,
/// the portal, rate limits) — the registration API has tests of its own.
extension TestApp {
    struct MadeApp: Sendable {
        var app: App
        /// The one-time password, while the app is unverified.
        var oneTimePassword: String?
        /// A client secret (`syc_…`), for a verified app.
        var clientSecret: String?
    }

    /// An app of the live workspace by default; `verified` gives it a developer who verified it
    /// and a client secret.
    func makeApp(
        _ name: String = "Acme Ledger",
        access: App.Access = .readWrite,
        mode: TokenMode = .live,
        workspaces: AppWorkspaces? = nil,
        permissions: [String] = [],
        developerEmail: String = "dev@partner.example",
        rateLimit: Double? = nil,
        verified: Bool = true
    ) async throws -> MadeApp {
        let now = clock.now
        let password = AppStore.generateOneTimePassword()
        var app = App(
            id: ID.make("app", at: now),
            name: name,
            description: "\(name), for tests",
            category: "accounting",
            access: access,
            mode: mode,
            workspaces: workspaces ?? .list([mode == .live ? liveWorkspace.id : sandboxWorkspace.id]),
            permissions: permissions,
            status: verified ? .active : .pendingVerification,
            clientId: ID.make("cid", at: now),
            rateLimit: rateLimit,
            developer: App.Developer(email: developerEmail, userId: nil, invitedAt: now, linkedAt: nil, verified: false, verifiedAt: nil),
            verification: App.Verification(expiresAt: now.addingTimeInterval(3 * 86_400), triesLeft: 5, locked: false),
            createdBy: Record.CreatedBy(type: "user", id: nil),
            createdAt: now,
            updatedAt: now,
            revokedAt: nil
        )
        let stored = app
        try await database.write { tx in try AppStore.insert(tx, stored, otpHash: AppStore.otpDigest(appID: stored.id, password: password)) }
        guard verified else { return MadeApp(app: app, oneTimePassword: password, clientSecret: nil) }
        let secret = TokenFormat.generate(prefix: "syc_")
        let record = AppSecret(id: ID.make("sec", at: now), appId: app.id, lastFour: String(secret.suffix(4)), createdAt: now)
        app.developer?.verified = true
        app.developer?.verifiedAt = now
        app.verification = nil
        let verifiedApp = app
        try await database.write { tx in
            try AppStore.update(tx, verifiedApp)
            try AppStore.clearOneTimePassword(tx, id: verifiedApp.id)
            try AppCredentialStore.insertSecret(tx, record, secretHash: TokenFormat.hash(secret))
        }
        return MadeApp(app: app, oneTimePassword: nil, clientSecret: secret)
    }
}

extension TestApp {
    /// An access token for `app`, written straight to the store (the flow test gets its tokens
    /// from POST /oauth/token instead).
    func accessToken(for app: App, scope: [String]? = nil) async throws -> String {
        let now = clock.now
        let token = TokenFormat.generate(prefix: AppTokenResolver.prefix(for: app.mode))
        try await database.write { tx in
            try AppCredentialStore.insertToken(
                tx,
                id: ID.make("atk", at: now),
                appID: app.id,
                secretID: "sec_test",
                tokenHash: TokenFormat.hash(token),
                mode: app.mode,
                scope: scope,
                expiresAt: now.addingTimeInterval(3600),
                createdAt: now
            )
        }
        return token
    }

    /// Registers an app through the API as the owner; answers its JSON (with the one-time password).
    func registerApp(_ body: String, token: String? = nil) async throws -> TestResponse {
        try await request(.post, "/v1/apps", token: token ?? ownerToken, json: body)
    }
}
