import Foundation

/// SQL for users. A user without a password yet (invited) has `password_hash` ''; a deactivated
/// one has `deactivated_at`. Both decide `User.status`, so every read of a user shows it.
enum UserStore {
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

    /// The user and their row lock until the transaction ends (PostgreSQL; SQLite's writer
    /// already serialises), for changes that check the user's state first.
    static func lockedUser(_ tx: SQLTx, id: String) throws -> User? {
        try tx.queryOne("SELECT * FROM users WHERE id = ?\(tx.dialect.forUpdate)", id).map(user(from:))
    }

    /// The user and their password hash ('' while invited), for sign-in and password checks.
    static func userWithPassword(_ tx: SQLTx, email: String) throws -> (User, String)? {
        guard let row = try tx.queryOne("SELECT * FROM users WHERE email = ?", email) else { return nil }
        return (try user(from: row), try row.string("password_hash"))
    }

    static func passwordHash(_ tx: SQLTx, id: String) throws -> String? {
        try tx.queryOne("SELECT password_hash FROM users WHERE id = ?", id)?.string("password_hash")
    }

    static func users(_ tx: SQLTx, after: String?, limit: Int) throws -> [User] {
        try tx.query("SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", after ?? "", limit).map(user(from:))
    }

    /// Active users with one of `roles`: who is told when something breaks.
    static func emails(_ tx: SQLTx, roles: Set<Role>) throws -> [String] {
        let names = roles.map(\.rawValue).sorted()
        return try tx.query(
            "SELECT email FROM users WHERE role IN (\(tx.placeholders(names.count))) AND deactivated_at IS NULL ORDER BY id",
            names.map(SQLValue.text)
        )
        .map { try $0.string("email") }
    }

    static func userCount(_ tx: SQLTx) throws -> Int64 {
        try tx.queryOne("SELECT COUNT(*) AS n FROM users")?.int("n") ?? 0
    }

    /// The ids of the active owners, their rows locked (PostgreSQL) until the transaction ends:
    /// two owners demoting each other at once cannot both pass the last-owner check.
    static func lockActiveOwners(_ tx: SQLTx) throws -> [String] {
        try tx.query(
            "SELECT id FROM users WHERE role = 'owner' AND deactivated_at IS NULL ORDER BY id\(tx.dialect.forUpdate)"
        ).map { try $0.string("id") }
    }

    static func update(_ tx: SQLTx, id: String, name: String, role: Role, at now: Date) throws {
        try tx.execute("UPDATE users SET name = ?, role = ?, updated_at = ? WHERE id = ?", name, role.rawValue, now, id)
    }

    static func setPasswordHash(_ tx: SQLTx, id: String, hash: String, at now: Date) throws {
        try tx.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", hash, now, id)
    }

    /// `at` nil reactivates.
    static func setDeactivated(_ tx: SQLTx, id: String, at date: Date?, now: Date) throws {
        try tx.execute("UPDATE users SET deactivated_at = ?, updated_at = ? WHERE id = ?", date, now, id)
    }

    /// A user from a row holding the `users` columns (`SELECT *`, or `u.*` of a join).
    static func user(from row: SQLRow) throws -> User {
        let deactivatedAt = row.optionalDate("deactivated_at")
        let invited = row.optionalString("password_hash")?.isEmpty ?? false
        return User(
            id: try row.string("id"),
            email: try row.string("email"),
            name: try row.string("name"),
            role: Role(rawValue: try row.string("role")) ?? .member,
            status: deactivatedAt != nil ? .deactivated : invited ? .invited : .active,
            deactivatedAt: deactivatedAt,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }

    /// The refusal of a deactivated user's session or token: the same words wherever it is met.
    static func deactivatedRefusal(_ user: User) -> APIError {
        APIError.unauthenticated(
            "The user \(user.email) is deactivated; an owner or admin can reactivate them with POST /v1/users/\(user.id)/reactivate."
        )
    }
}
