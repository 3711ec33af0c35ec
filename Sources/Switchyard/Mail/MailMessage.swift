import Foundation

/// A message in the outbox. `queued` until the mail sender hands it to SMTP (`sent`) or, with no
/// SMTP server configured, logs it (`logged`); `failed` after the last retry.
public struct MailMessage: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case queued, sent, logged, failed }

    public var id: String
    public var recipient: String
    public var subject: String
    public var body: String
    public var status: Status
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    public var createdAt: Date
    public var sentAt: Date?
}

enum MailStore {
    static func insert(_ tx: SQLTx, _ message: MailMessage) throws {
        try tx.execute(
            """
            INSERT INTO mail_messages (id, recipient, subject, body, status, attempts, next_attempt_at, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            message.id,
            message.recipient,
            message.subject,
            message.body,
            message.status.rawValue,
            message.attempts,
            message.nextAttemptAt,
            message.createdAt
        )
    }

    static func list(_ tx: SQLTx, status: MailMessage.Status?, after: String?, limit: Int) throws -> [MailMessage] {
        if let status {
            return try tx.query(
                "SELECT * FROM mail_messages WHERE status = ? AND (? = '' OR id < ?) ORDER BY id DESC LIMIT ?",
                status.rawValue,
                after ?? "",
                after ?? "",
                limit
            ).map(message(from:))
        }
        return try tx.query(
            "SELECT * FROM mail_messages WHERE (? = '' OR id < ?) ORDER BY id DESC LIMIT ?",
            after ?? "",
            after ?? "",
            limit
        ).map(message(from:))
    }

    /// Claims due messages for `lease` seconds, so a second process (or this one after a crash,
    /// once the lease ends) never sends the same message twice at once.
    static func claimDue(_ tx: SQLTx, now: Date, lease: TimeInterval, limit: Int) throws -> [MailMessage] {
        let due = try tx.query(
            """
            SELECT id FROM mail_messages
            WHERE status = 'queued' AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
            ORDER BY next_attempt_at, id LIMIT ?\(tx.dialect.skipLocked)
            """,
            now,
            now,
            limit
        ).map { try $0.string("id") }
        guard !due.isEmpty else { return [] }
        let until = now.addingTimeInterval(lease)
        return try tx.query(
            "UPDATE mail_messages SET locked_until = ? WHERE id IN (\(tx.placeholders(due.count))) RETURNING *",
            [until.sqlValue] + due.map(SQLValue.text)
        ).map(message(from:))
    }

    static func markDelivered(_ tx: SQLTx, id: String, status: MailMessage.Status, at: Date, attempts: Int) throws {
        try tx.execute(
            "UPDATE mail_messages SET status = ?, sent_at = ?, attempts = ?, locked_until = NULL, last_error = NULL WHERE id = ?",
            status.rawValue,
            at,
            attempts,
            id
        )
    }

    static func markFailedAttempt(_ tx: SQLTx, id: String, attempts: Int, error: String, nextAttemptAt: Date, giveUp: Bool) throws {
        try tx.execute(
            "UPDATE mail_messages SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, locked_until = NULL WHERE id = ?",
            giveUp ? MailMessage.Status.failed.rawValue : MailMessage.Status.queued.rawValue,
            attempts,
            error,
            nextAttemptAt,
            id
        )
    }

    static func message(from row: SQLRow) throws -> MailMessage {
        MailMessage(
            id: try row.string("id"),
            recipient: try row.string("recipient"),
            subject: try row.string("subject"),
            body: try row.string("body"),
            status: MailMessage.Status(rawValue: try row.string("status")) ?? .queued,
            attempts: Int(try row.int("attempts")),
            nextAttemptAt: try row.date("next_attempt_at"),
            lastError: row.optionalString("last_error"),
            createdAt: try row.date("created_at"),
            sentAt: row.optionalDate("sent_at")
        )
    }
}
