import Foundation

/// SQL for console sessions.
enum SessionStore {
    /// `kind`: `console` or `portal`; each cookie opens only its own.
    static func insertSession(
        _ tx: SQLTx,
        id: String,
        userID: String,
        secretHash: String,
        createdAt: Date,
        expiresAt: Date,
        kind: String = "console"
    ) throws {
        try tx.execute(
            "INSERT INTO sessions (id, user_id, secret_hash, created_at, expires_at, kind) VALUES (?, ?, ?, ?, ?, ?)",
            id,
            userID,
            secretHash,
            createdAt,
            expiresAt,
            kind
        )
    }

    static func sessionWithUser(_ tx: SQLTx, secretHash: String, kind: String = "console") throws -> (id: String, expiresAt: Date, user: User)? {
        guard
            let row = try tx.queryOne(
                """
                SELECT s.id AS session_id, s.expires_at AS session_expires_at, u.*
                FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.secret_hash = ? AND s.kind = ?
                """,
                secretHash,
                kind
            )
        else { return nil }
        return (try row.string("session_id"), try row.date("session_expires_at"), try UserStore.user(from: row))
    }

    static func deleteSessions(_ tx: SQLTx, expiredBefore date: Date) throws -> Int {
        try tx.execute("DELETE FROM sessions WHERE expires_at < ?", date)
    }

    static func deleteSession(_ tx: SQLTx, id: String) throws {
        try tx.execute("DELETE FROM sessions WHERE id = ?", id)
    }
}
