import Foundation

/// App access tokens (`Authorization: Bearer sya_live_…` or `sya_test_…`), looked up with their
/// app in one query, so a change to the app's grants or a revoke applies to its very next call.
struct AppTokenResolver: CredentialResolver {
    static let prefixes = ["sya_live_", "sya_test_"]

    static func prefix(for mode: TokenMode) -> String { mode == .live ? prefixes[0] : prefixes[1] }

    func accepts(_ credentials: Credentials) -> Bool {
        guard case .bearer(let token) = credentials else { return false }
        return Self.prefixes.contains { token.utf8.starts(with: $0.utf8) }
    }

    func resolve(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication {
        guard case .bearer(let token) = credentials, TokenFormat.isWellFormed(token, prefixes: Self.prefixes) else {
            return .refused(reason: "malformed app token", detail: "The token is not a Switchyard app access token (sya_live_… or sya_test_…).")
        }
        guard let row = try AppCredentialStore.tokenWithApp(tx, tokenHash: TokenFormat.hash(token)) else {
            return .refused(
                reason: "unknown app token …\(token.suffix(4))",
                detail: "The access token is not valid; request a new one at POST /oauth/token."
            )
        }
        let app = row.app
        if app.status == .revoked {
            return .refused(reason: "token \(row.id) of revoked app \(app.id)", detail: "The app \(app.name) was revoked.")
        }
        if row.revokedAt != nil {
            return .refused(reason: "revoked app token \(row.id)", detail: "The access token was revoked; request a new one at POST /oauth/token.")
        }
        if row.expiresAt <= now {
            return .refused(
                reason: "expired app token \(row.id)",
                detail: "The access token expired at \(RFC3339.format(row.expiresAt)); request a new one at POST /oauth/token."
            )
        }
        var permissions = Set(app.permissions)
        if let scope = row.scope { permissions.formIntersection(scope) }
        let principal = AppPrincipal(
            id: app.id,
            name: app.name,
            mode: app.mode,
            workspaces: app.workspaces.ids,
            permissions: permissions,
            tokenID: row.id,
            rateLimit: app.rateLimit
        )
        return .principal(.app(principal), noteUse: nil)
    }
}
