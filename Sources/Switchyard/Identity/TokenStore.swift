import Foundation

/// SQL for personal API tokens.
enum TokenStore {
    static func insert(_ tx: SQLTx, _ token: APIToken, secretHash: String) throws {
        let workspaces = try token.workspaces.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try tx.execute(
            """
            INSERT INTO api_tokens (id, user_id, name, mode, display_prefix, last_four, secret_hash, workspace_ids,
                                    expires_at, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            token.id,
            token.userId,
            token.name,
            token.mode.rawValue,
            token.prefix,
            token.lastFour,
            secretHash,
            workspaces,
            token.expiresAt,
            token.createdAt
        )
    }

    static func token(_ tx: SQLTx, id: String) throws -> APIToken? {
        try tx.queryOne("SELECT * FROM api_tokens WHERE id = ?", id).map(token(from:))
    }

    static func tokens(_ tx: SQLTx, userID: String?, after: String?, limit: Int) throws -> [APIToken] {
        if let userID {
            return try tx.query(
                "SELECT * FROM api_tokens WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
                userID,
                after ?? "",
                limit
            ).map(token(from:))
        }
        return try tx.query("SELECT * FROM api_tokens WHERE id > ? ORDER BY id LIMIT ?", after ?? "", limit).map(token(from:))
    }

    static func revokeToken(_ tx: SQLTx, id: String, at: Date) throws {
        try tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", at, id)
    }

    static func touchToken(_ tx: SQLTx, id: String, at: Date) throws {
        try tx.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", at, id)
    }

    /// The token with this hash and its user, in one read: authentication is on every request. A
    /// deactivated user's token is refused here, with the 401 that says so.
    static func tokenWithUser(_ tx: SQLTx, secretHash: String) throws -> (APIToken, User)? {
        guard
            let row = try tx.queryOne(
                """
                SELECT t.*, u.email AS user_email, u.name AS user_name, u.role AS user_role,
                       u.created_at AS user_created_at, u.updated_at AS user_updated_at,
                       u.deactivated_at AS user_deactivated_at,
                       CASE WHEN u.password_hash = '' THEN 1 ELSE 0 END AS user_invited
                FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?
                """,
                secretHash
            )
        else { return nil }
        let deactivatedAt = row.optionalDate("user_deactivated_at")
        let user = User(
            id: try row.string("user_id"),
            email: try row.string("user_email"),
            name: try row.string("user_name"),
            role: Role(rawValue: try row.string("user_role")) ?? .member,
            status: deactivatedAt != nil ? .deactivated : row.bool("user_invited") ? .invited : .active,
            deactivatedAt: deactivatedAt,
            createdAt: try row.date("user_created_at"),
            updatedAt: try row.date("user_updated_at")
        )
        if user.status == .deactivated { throw UserStore.deactivatedRefusal(user) }
        return (try token(from: row), user)
    }

    static func token(from row: SQLRow) throws -> APIToken {
        let workspaces = row.optionalString("workspace_ids").flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        return APIToken(
            id: try row.string("id"),
            userId: try row.string("user_id"),
            name: try row.string("name"),
            mode: TokenMode(rawValue: try row.string("mode")) ?? .live,
            prefix: try row.string("display_prefix"),
            lastFour: try row.string("last_four"),
            workspaces: workspaces,
            expiresAt: row.optionalDate("expires_at"),
            lastUsedAt: row.optionalDate("last_used_at"),
            revokedAt: row.optionalDate("revoked_at"),
            createdAt: try row.date("created_at")
        )
    }
}
