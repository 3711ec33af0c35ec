import Foundation

/// Personal API tokens (`Authorization: Bearer sy_live_…` or `sy_test_…`), looked up by hash with
/// their user in one query; a deactivated user's tokens are refused (and work again once the user
/// is reactivated, unless revoked).
struct APITokenResolver: CredentialResolver {
    static let prefixes = [TokenFormat.prefix(for: .live), TokenFormat.prefix(for: .test)]

    func accepts(_ credentials: Credentials) -> Bool {
        guard case .bearer(let token) = credentials else { return false }
        return Self.prefixes.contains { token.utf8.starts(with: $0.utf8) }
    }

    func resolve(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication {
        guard case .bearer(let token) = credentials, TokenFormat.isWellFormed(token) else {
            return .refused(reason: "malformed token", detail: "The token is not a Switchyard API token (sy_live_… or sy_test_…).")
        }
        let found: (APIToken, User)?
        do {
            found = try TokenStore.tokenWithUser(tx, secretHash: TokenFormat.hash(token))
        } catch let refusal as APIError where refusal.problem == .unauthenticated {
            return .refused(reason: "token …\(token.suffix(4)) of a deactivated user", detail: refusal.detail)
        }
        guard let (record, user) = found else {
            return .refused(reason: "unknown token …\(token.suffix(4))", detail: "The API token is not valid.")
        }
        if record.revokedAt != nil {
            return .refused(reason: "revoked token \(record.id)", detail: "The API token was revoked.")
        }
        if let expiresAt = record.expiresAt, expiresAt <= now {
            return .refused(reason: "expired token \(record.id)", detail: "The API token expired at \(RFC3339.format(expiresAt)).")
        }
        let grant = TokenGrant(id: record.id, name: record.name, mode: record.mode, workspaces: record.workspaces, expiresAt: record.expiresAt)
        let principal = Principal.user(UserPrincipal(user: user, credential: .apiToken(grant)))
        // Last use is a write; once a minute per token is precise enough and keeps reads cheap.
        guard record.lastUsedAt.map({ now.timeIntervalSince($0) > 60 }) ?? true else { return .principal(principal, noteUse: nil) }
        let id = record.id
        return .principal(principal, noteUse: { tx, now in try TokenStore.touchToken(tx, id: id, at: now) })
    }
}

/// Console sessions (the `sy_session` cookie). An unknown or expired cookie is no credential at all:
/// the caller is anonymous; a deactivated user's session is refused with a 401 that says so.
struct SessionResolver: CredentialResolver {
    static let prefix = "sys_"

    func accepts(_ credentials: Credentials) -> Bool {
        if case .session = credentials { return true }
        return false
    }

    func resolve(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication {
        guard case .session(let secret) = credentials, TokenFormat.isWellFormed(secret, prefixes: [Self.prefix]) else { return .anonymous }
        let found: (id: String, expiresAt: Date, user: User)?
        do {
            found = try SessionStore.sessionWithUser(tx, secretHash: TokenFormat.hash(secret))
        } catch let refusal as APIError where refusal.problem == .unauthenticated {
            // Sessions are deleted at deactivation; one that slipped in alongside it is refused here.
            return .refused(reason: "session of a deactivated user", detail: refusal.detail)
        }
        guard let session = found, session.expiresAt > now else { return .anonymous }
        return .principal(.user(UserPrincipal(user: session.user, credential: .session(id: session.id))), noteUse: nil)
    }
}
