import Foundation

/// Links mailed to people, one machinery for all three: a user's invite (set a first password,
/// 3 days), a developer's invite to the portal for an app (3 days) and a password reset (one
/// hour). Only the SHA-256 of a link's token is kept; a newer link replaces the older ones of the
/// same kind for the same person or app, and a link works once.
public struct Invites: Sendable {
    public enum Kind: String, Sendable {
        case user, developer
        case passwordReset = "password_reset"

        public var lifetime: TimeInterval {
            switch self {
            case .user, .developer: 3 * 24 * 3600
            case .passwordReset: 3600
            }
        }
    }

    public struct Invite: Sendable {
        public var id: String
        public var kind: Kind
        public var email: String
        public var userID: String?
        public var appID: String?
        public var expiresAt: Date
    }

    static let prefix = "syi_"

    /// Issues a link token (shown once, in the mail) in the caller's transaction; older open links
    /// of this kind for the same app (developer) or user stop working.
    public static func issue(
        _ tx: SQLTx,
        kind: Kind,
        email: String,
        userID: String? = nil,
        appID: String? = nil,
        now: Date
    ) throws -> (invite: Invite, token: String) {
        try revoke(tx, kind: kind, userID: userID, appID: appID, now: now)
        let token = TokenFormat.generate(prefix: prefix)
        let invite = Invite(
            id: ID.make("inv", at: now),
            kind: kind,
            email: email,
            userID: userID,
            appID: appID,
            expiresAt: now.addingTimeInterval(kind.lifetime)
        )
        try tx.execute(
            """
            INSERT INTO invites (id, kind, email, user_id, app_id, token_hash, expires_at, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            invite.id,
            kind.rawValue,
            email,
            userID,
            appID,
            TokenFormat.hash(token),
            invite.expiresAt,
            now
        )
        return (invite, token)
    }

    /// Open links of this kind for the app (if given) or else the user stop working.
    public static func revoke(_ tx: SQLTx, kind: Kind, userID: String? = nil, appID: String? = nil, now: Date) throws {
        if let appID {
            try tx.execute(
                "UPDATE invites SET revoked_at = ? WHERE app_id = ? AND kind = ? AND used_at IS NULL AND revoked_at IS NULL",
                now,
                appID,
                kind.rawValue
            )
        } else if let userID {
            try tx.execute(
                "UPDATE invites SET revoked_at = ? WHERE user_id = ? AND kind = ? AND used_at IS NULL AND revoked_at IS NULL",
                now,
                userID,
                kind.rawValue
            )
        }
    }

    /// The open link `token` names, of one of `kinds`; 410 `link-expired` when it expired, was
    /// used or replaced, 404 when it never existed. `consume` marks it used in the same transaction.
    public static func open(_ tx: SQLTx, token: String, kinds: Set<Kind>, now: Date, consume: Bool) throws -> Invite {
        guard TokenFormat.isWellFormed(token, prefixes: [prefix]),
            let row = try tx.queryOne("SELECT * FROM invites WHERE token_hash = ?", TokenFormat.hash(token)),
            let kind = Kind(rawValue: try row.string("kind")), kinds.contains(kind)
        else {
            throw APIError.notFound(detail: "This link is not valid; check that it was copied whole.")
        }
        let expiresAt = try row.date("expires_at")
        if row.optionalDate("used_at") != nil {
            throw APIError(.linkExpired, detail: "This link was used already; ask for a new one.")
        }
        if row.optionalDate("revoked_at") != nil {
            throw APIError(.linkExpired, detail: "This link was replaced by a newer one; use the latest mail, or ask for a new one.")
        }
        if expiresAt <= now {
            throw APIError(.linkExpired, detail: "This link expired at \(RFC3339.format(expiresAt)); ask for a new one.")
        }
        let id = try row.string("id")
        if consume {
            try tx.execute("UPDATE invites SET used_at = ? WHERE id = ?", now, id)
        }
        return Invite(
            id: id,
            kind: kind,
            email: try row.string("email"),
            userID: row.optionalString("user_id"),
            appID: row.optionalString("app_id"),
            expiresAt: expiresAt
        )
    }

    /// The latest link issued for the app or user, for showing when its developer was invited.
    public static func latest(_ tx: SQLTx, kind: Kind, appID: String) throws -> (createdAt: Date, expiresAt: Date)? {
        guard
            let row = try tx.queryOne(
                "SELECT created_at, expires_at FROM invites WHERE app_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                appID,
                kind.rawValue
            )
        else { return nil }
        return (try row.date("created_at"), try row.date("expires_at"))
    }
}
