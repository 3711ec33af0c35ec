import Foundation

/// SQL for users.
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

    /// The user and their password hash, for sign-in.
    static func userWithPassword(_ tx: SQLTx, email: String) throws -> (User, String)? {
        guard let row = try tx.queryOne("SELECT * FROM users WHERE email = ?", email) else { return nil }
        return (try user(from: row), try row.string("password_hash"))
    }

    static func users(_ tx: SQLTx, after: String?, limit: Int) throws -> [User] {
        try tx.query("SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", after ?? "", limit).map(user(from:))
    }

    static func emails(_ tx: SQLTx, roles: Set<Role>) throws -> [String] {
        let names = roles.map(\.rawValue).sorted()
        return try tx.query("SELECT email FROM users WHERE role IN (\(tx.placeholders(names.count))) ORDER BY id", names.map(SQLValue.text))
            .map { try $0.string("email") }
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
}
