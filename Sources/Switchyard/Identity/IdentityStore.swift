import Foundation

/// SQL for organizations, workspaces, users, API tokens and sessions.
enum IdentityStore {
    // MARK: organization

    static func organization(_ tx: SQLTx) throws -> Organization? {
        try tx.queryOne("SELECT * FROM organizations ORDER BY id LIMIT 1").map {
            Organization(id: try $0.string("id"), name: try $0.string("name"), createdAt: try $0.date("created_at"))
        }
    }

    // MARK: workspaces

    static func insert(_ tx: SQLTx, _ workspace: Workspace) throws {
        try tx.execute(
            "INSERT INTO workspaces (id, name, mode, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            workspace.id,
            workspace.name,
            workspace.mode.rawValue,
            workspace.createdAt,
            workspace.updatedAt
        )
    }

    static func updateWorkspace(_ tx: SQLTx, _ workspace: Workspace) throws {
        try tx.execute(
            "UPDATE workspaces SET name = ?, updated_at = ? WHERE id = ?",
            workspace.name,
            workspace.updatedAt,
            workspace.id
        )
    }

    static func workspace(_ tx: SQLTx, id: String) throws -> Workspace? {
        try tx.queryOne("SELECT * FROM workspaces WHERE id = ?", id).map(workspace(from:))
    }

    static func workspaces(_ tx: SQLTx, ids: [String]) throws -> [Workspace] {
        guard !ids.isEmpty else { return [] }
        return try tx.query("SELECT * FROM workspaces WHERE id IN (\(tx.placeholders(ids.count)))", ids.map(SQLValue.text))
            .map(workspace(from:))
    }

    /// A page of workspaces, only sandboxes when `sandboxOnly`, only `ids` when given.
    static func workspaces(_ tx: SQLTx, after: String?, limit: Int, sandboxOnly: Bool = false, ids: [String]? = nil) throws -> [Workspace] {
        var sql = "SELECT * FROM workspaces WHERE id > ?"
        var arguments: [SQLValue] = [.text(after ?? "")]
        if sandboxOnly { sql += " AND mode = 'sandbox'" }
        if let ids {
            guard !ids.isEmpty else { return [] }
            sql += " AND id IN (\(tx.placeholders(ids.count)))"
            arguments += ids.map(SQLValue.text)
        }
        return try tx.query(sql + " ORDER BY id LIMIT ?", arguments + [.int(Int64(limit))]).map(workspace(from:))
    }

    static func workspace(from row: SQLRow) throws -> Workspace {
        Workspace(
            id: try row.string("id"),
            name: try row.string("name"),
            mode: WorkspaceMode(rawValue: try row.string("mode")) ?? .live,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }

    // MARK: users

    static func insert(_ tx: SQLTx, _ user: User, passwordHash: String) throws {
        try tx.execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            user.id,
            user.email,
            user.name,
            user.role.rawValue,
            passwordHash,
            user.createdAt,
            user.updatedAt
        )
    }

    static func user(_ tx: SQLTx, id: String) throws -> User? {
        try tx.queryOne("SELECT * FROM users WHERE id = ?", id).map(user(from:))
    }

    /// The user and their password hash, for sign-in.
    static func userWithPassword(_ tx: SQLTx, email: String) throws -> (User, String)? {
        guard let row = try tx.queryOne("SELECT * FROM users WHERE email = ?", email) else { return nil }
        return (try user(from: row), try row.string("password_hash"))
    }

    static func users(_ tx: SQLTx, after: String?, limit: Int) throws -> [User] {
        try tx.query("SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", after ?? "", limit).map(user(from:))
    }

    static func userCount(_ tx: SQLTx) throws -> Int64 {
        try tx.queryOne("SELECT COUNT(*) AS n FROM users")?.int("n") ?? 0
    }

    static func user(from row: SQLRow) throws -> User {
        User(
            id: try row.string("id"),
            email: try row.string("email"),
            name: try row.string("name"),
            role: Role(rawValue: try row.string("role")) ?? .member,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }

    // MARK: API tokens

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

    /// The token with this hash and its user, in one read: authentication is on every request.
    static func tokenWithUser(_ tx: SQLTx, secretHash: String) throws -> (APIToken, User)? {
        guard
            let row = try tx.queryOne(
                """
                SELECT t.*, u.email AS user_email, u.name AS user_name, u.role AS user_role,
                       u.created_at AS user_created_at, u.updated_at AS user_updated_at
                FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?
                """,
                secretHash
            )
        else { return nil }
        let user = User(
            id: try row.string("user_id"),
            email: try row.string("user_email"),
            name: try row.string("user_name"),
            role: Role(rawValue: try row.string("user_role")) ?? .member,
            createdAt: try row.date("user_created_at"),
            updatedAt: try row.date("user_updated_at")
        )
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

    // MARK: sessions

    static func insertSession(_ tx: SQLTx, id: String, userID: String, secretHash: String, createdAt: Date, expiresAt: Date) throws {
        try tx.execute(
            "INSERT INTO sessions (id, user_id, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            id,
            userID,
            secretHash,
            createdAt,
            expiresAt
        )
    }

    static func sessionWithUser(_ tx: SQLTx, secretHash: String) throws -> (id: String, expiresAt: Date, user: User)? {
        guard
            let row = try tx.queryOne(
                """
                SELECT s.id AS session_id, s.expires_at AS session_expires_at, u.*
                FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.secret_hash = ?
                """,
                secretHash
            )
        else { return nil }
        return (try row.string("session_id"), try row.date("session_expires_at"), try user(from: row))
    }

    static func deleteSessions(_ tx: SQLTx, expiredBefore date: Date) throws -> Int {
        try tx.execute("DELETE FROM sessions WHERE expires_at < ?", date)
    }

    static func deleteSession(_ tx: SQLTx, id: String) throws {
        try tx.execute("DELETE FROM sessions WHERE id = ?", id)
    }
}
