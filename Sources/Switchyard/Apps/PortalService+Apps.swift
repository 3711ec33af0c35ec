import Foundation

/// A refusal about one of the developer's apps: recorded as a failed `action` on the app in the
/// refused request's own transaction, which then commits (so a wrong one-time password's count
/// stays) and the error is answered. Thrown before anything else was written.
struct PortalRefusal: Error {
    var action: String
    var app: App
    var error: APIError
}

/// The developer's apps: list, detail, verification with the one-time password, client secrets.
extension PortalService {
    public func apps(_ caller: Caller) async throws -> [PortalApp] {
        try await read(caller) { [self] tx, developer in
            try AppStore.apps(tx, developerUserID: developer.id).filter { $0.status != .revoked }.map { try portalApp(tx, $0) }
        }
    }

    public func app(id: String, _ caller: Caller) async throws -> PortalApp {
        try await read(caller) { [self] tx, developer in try portalApp(tx, try ownedApp(tx, id: id, developer: developer)) }
    }

    /// Verifies the app with its one-time password: it turns active and the password is
    /// forgotten. A wrong password is counted (5 lock it until an admin resets it).
    public func verify(id: String, oneTimePassword: String, _ caller: Caller) async throws -> PortalApp {
        let given = oneTimePassword.filter { !$0.isWhitespace }
        return try await write(caller) { [self] tx, developer, audit, now in
            var app = try ownedApp(tx, id: id, developer: developer, forUpdate: true)
            let action = "app.verification_failed"
            if app.developer?.verifiedAt != nil {
                throw PortalRefusal(action: action, app: app, error: .conflict("The app \(app.name) is verified already."))
            }
            guard let hash = try AppStore.otpHash(tx, id: app.id), let verification = app.verification else {
                throw PortalRefusal(action: action, app: app, error: Self.unusable("has no one-time password"))
            }
            if verification.locked {
                throw PortalRefusal(action: action, app: app, error: Self.unusable("is locked after \(App.oneTimePasswordTries) wrong tries"))
            }
            if let expiresAt = verification.expiresAt, expiresAt <= now {
                throw PortalRefusal(action: action, app: app, error: Self.unusable("expired at \(RFC3339.format(expiresAt))"))
            }
            let digest = AppStore.otpDigest(appID: app.id, password: given)
            guard Self.constantTimeEqual(digest, hash) else {
                let failures = try AppStore.noteOneTimePasswordFailure(tx, id: app.id)
                let left = max(0, App.oneTimePasswordTries - failures)
                let detail =
                    left == 0
                    ? "The one-time password is wrong, and that was the last try: it is locked now; ask the app's admin for a new one."
                    : "The one-time password is wrong; \(left) \(left == 1 ? "try" : "tries") left."
                throw PortalRefusal(action: action, app: app, error: APIError(.oneTimePasswordWrong, detail: detail, field: "one_time_password"))
            }
            app.status = .active
            app.developer?.verified = true
            app.developer?.verifiedAt = now
            app.verification = nil
            app.updatedAt = now
            try AppStore.update(tx, app)
            try AppStore.clearOneTimePassword(tx, id: app.id)
            try activity.record(tx, audit, action: "app.verified", targetType: "app", targetID: app.id, targetLabel: app.name)
            return try portalApp(tx, app)
        }
    }

    /// A new client secret (`syc_…`, shown once) for a verified app; at most two work at a time,
    /// so a secret is rotated without downtime.
    public func createSecret(appID: String, _ caller: Caller) async throws -> PortalCreatedSecret {
        try await write(caller) { [self] tx, developer, audit, now in
            let app = try ownedApp(tx, id: appID, developer: developer, forUpdate: true)
            let action = "app.secret_created"
            guard app.status == .active, app.developer?.verifiedAt != nil else {
                let detail =
                    "Verify the app first with its one-time password (POST /portal/api/apps/\(app.id)/verify); only a verified app gets client secrets."
                throw PortalRefusal(action: action, app: app, error: APIError(.appNotVerified, detail: detail))
            }
            let working = try AppCredentialStore.secrets(tx, appID: app.id)
            guard working.count < Self.maximumSecrets else {
                let detail =
                    "The app has \(Self.maximumSecrets) client secrets, the most it may hold; delete the one you no longer use "
                    + "(DELETE /portal/api/apps/\(app.id)/secrets/{secret_id}) first."
                throw PortalRefusal(action: action, app: app, error: .conflict(detail))
            }
            let secret = TokenFormat.generate(prefix: Self.secretPrefix)
            let record = AppSecret(id: ID.make("sec", at: now), appId: app.id, lastFour: String(secret.suffix(4)), createdAt: now, lastUsedAt: nil)
            try AppCredentialStore.insertSecret(tx, record, secretHash: TokenFormat.hash(secret))
            try activity.record(tx, audit, action: action, targetType: "app", targetID: app.id, targetLabel: app.name, detail: "secret \(record.id)")
            return PortalCreatedSecret(secret: secret, appSecret: PortalSecret(record))
        }
    }

    /// Deletes a client secret; the access tokens issued with it stop working too, so deleting a
    /// leaked secret shuts out whoever holds it at once.
    public func deleteSecret(appID: String, secretID: String, _ caller: Caller) async throws {
        try await write(caller) { [self] tx, developer, audit, now in
            let app = try ownedApp(tx, id: appID, developer: developer, forUpdate: true)
            guard ID.isValid(secretID, prefix: "sec"), try AppCredentialStore.deleteSecret(tx, id: secretID, appID: app.id, at: now) else {
                throw APIError.notFound("client secret", secretID)
            }
            try AppCredentialStore.revokeTokens(tx, secretID: secretID, at: now)
            try activity.record(
                tx,
                audit,
                action: "app.secret_deleted",
                targetType: "app",
                targetID: app.id,
                targetLabel: app.name,
                detail: "secret \(secretID)"
            )
        }
    }

    static let maximumSecrets = 2
    static let secretPrefix = "syc_"

    static func unusable(_ state: String) -> APIError {
        APIError(
            .oneTimePasswordUnusable,
            detail: "The app's one-time password \(state); ask the app's admin for a new one (POST /v1/apps/{id}/one-time-password)."
        )
    }

    /// Hex digests compared without an early exit.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The access tokens of one secret stop.
    // AppCredentialStore (the lead's) has no per-secret revocation; this belongs there.
    /// The app if it is the developer's: 404 for anyone else's, a revoked one, or one whose
    /// developer was removed.
    func ownedApp(_ tx: SQLTx, id: String, developer: UserPrincipal, forUpdate: Bool = false) throws -> App {
        guard ID.isValid(id, prefix: "app"), let app = try AppStore.app(tx, id: id, forUpdate: forUpdate), app.status != .revoked,
            app.developer?.userId == developer.id
        else { throw APIError.notFound("app", id) }
        return app
    }

    func portalApp(_ tx: SQLTx, _ app: App) throws -> PortalApp {
        let workspaceMode: WorkspaceMode = app.mode == .test ? .sandbox : .live
        let workspaces: [Workspace]
        switch app.workspaces {
        case .list(let ids): workspaces = try WorkspaceStore.workspaces(tx, ids: ids)
        case .all:
            workspaces = try WorkspaceStore.workspaces(tx, after: nil, limit: 200, sandboxOnly: app.mode == .test).filter { $0.mode == workspaceMode }
        }
        return PortalApp(
            id: app.id,
            name: app.name,
            description: app.description,
            category: app.category,
            access: app.access,
            mode: app.mode,
            status: app.status,
            clientId: app.clientId,
            workspaces: workspaces.sorted { $0.id < $1.id }.map { PortalApp.WorkspaceRef(id: $0.id, name: $0.name, mode: $0.mode) },
            allWorkspaces: app.workspaces == .all,
            permissions: app.permissions,
            verified: app.developer?.verifiedAt != nil,
            verifiedAt: app.developer?.verifiedAt,
            verification: app.verification,
            secrets: try AppCredentialStore.secrets(tx, appID: app.id).map(PortalSecret.init),
            tokenEndpoint: "\(publicURL)/oauth/token",
            links: PortalApp.Links(apiReference: "\(publicURL)/openapi.yaml", docs: nil)
        )
    }

    func read<T: Sendable>(_ caller: Caller, _ body: @escaping @Sendable (SQLTx, UserPrincipal) throws -> T) async throws -> T {
        let now = clock.now
        return try await database.read { [self] tx in try body(tx, try developer(tx, caller.secret, now: now)) }
    }

    /// Authenticates and runs `body` in one write; a `PortalRefusal` is recorded and answered.
    func write<T: Sendable>(
        _ caller: Caller,
        _ body: @escaping @Sendable (SQLTx, UserPrincipal, AuditContext, Date) throws -> T
    ) async throws -> T {
        let now = clock.now
        let outcome: Result<T, APIError> = try await database.write { [self] tx in
            let developer = try developer(tx, caller.secret, now: now)
            let audit = Principal.user(developer).audit(from: caller.audit)
            do {
                return .success(try body(tx, developer, audit, now))
            } catch let refusal as PortalRefusal {
                try activity.record(
                    tx,
                    audit,
                    action: refusal.action,
                    targetType: "app",
                    targetID: refusal.app.id,
                    targetLabel: refusal.app.name,
                    outcome: .failure,
                    detail: refusal.error.detail
                )
                return .failure(refusal.error)
            }
        }
        return try outcome.get()
    }
}
