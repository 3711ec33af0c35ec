import Foundation

/// SQL for sessions: the console's (`sy_session`) and the developer portal's (`sy_portal`).
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

    /// The session and its user, in one read: authentication is on every request. A deactivated
    /// user's session is refused here, with the 401 that says so, for every kind (console and
    /// portal), whoever resolves it.
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
        let user = try UserStore.user(from: row)
        if user.status == .deactivated { throw UserStore.deactivatedRefusal(user) }
        return (try row.string("session_id"), try row.date("session_expires_at"), user)
    }

    /// Ends the user's sessions of every kind (console and portal) but `except`.
    @discardableResult
    static func deleteSessions(_ tx: SQLTx, userID: String, except: String? = nil) throws -> Int {
        try tx.execute("DELETE FROM sessions WHERE user_id = ? AND id <> ?", userID, except ?? "")
    }

    static func deleteSessions(_ tx: SQLTx, expiredBefore date: Date) throws -> Int {
        try tx.execute("DELETE FROM sessions WHERE expires_at < ?", date)
    }

    static func deleteSession(_ tx: SQLTx, id: String) throws {
        try tx.execute("DELETE FROM sessions WHERE id = ?", id)
    }
}
