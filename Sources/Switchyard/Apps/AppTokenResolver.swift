import Foundation
import NIOConcurrencyHelpers

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
        guard let row = try AppCredentialStore.tokenCaller(tx, tokenHash: TokenFormat.hash(token)) else {
            return .refused(
                reason: "unknown app token …\(token.suffix(4))",
                detail: "The access token is not valid; request a new one at POST /oauth/token."
            )
        }
        if row.status == .revoked {
            return .refused(reason: "token \(row.id) of revoked app \(row.appID)", detail: "The app \(row.appName) was revoked.")
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
        let grants = try Self.grants.parsed(permissions: row.permissionsText, scope: row.scopeText, workspaces: row.workspacesText)
        let principal = AppPrincipal(
            id: row.appID,
            name: row.appName,
            mode: row.mode,
            workspaces: grants.workspaces,
            permissions: grants.permissions,
            tokenID: row.id,
            rateLimit: row.rateLimit
        )
        return .principal(.app(principal), noteUse: nil)
    }
}

extension AppTokenResolver {
    /// The app's grants as stored (JSON arrays of text), parsed once: the same text always parses
    /// to the same grants, so a `PATCH` that changes them is a new key, seen on the very next call,
    /// and no cache can go stale. Bounded: a full memo starts again empty.
    final class GrantMemo: Sendable {
        struct Grants: Sendable {
            var permissions: Set<String>
            var workspaces: [String]?
        }

        static let capacity = 1024
        private let entries = NIOLockedValueBox<[String: Grants]>([:])

        func parsed(permissions: String, scope: String?, workspaces: String?) throws -> Grants {
            // U+0000 never appears in a JSON text, so it separates the parts unambiguously.
            let key = permissions + "\u{0}" + (scope ?? "-") + "\u{0}" + (workspaces ?? "*")
            if let known = entries.withLockedValue({ $0[key] }) { return known }
            var granted = Set(try AppStore.stringArray(permissions))
            if let scope { granted.formIntersection(try AppStore.stringArray(scope)) }
            let grants = Grants(permissions: granted, workspaces: try workspaces.map(AppStore.stringArray))
            entries.withLockedValue { entries in
                if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
                entries[key] = grants
            }
            return grants
        }
    }

    static let grants = GrantMemo()
}
