import Foundation

/// The SQL of the outbox. The mail sender claims from it as a job table (see `SQLTx.claimDue`).
enum MailStore {
    /// Messages the mail sender may claim: queued ones (`SQLTx.claimDue` adds due and unleased).
    static let table = "mail_messages"
    static let claimable = "status = 'queued'"

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

    /// Claims due messages until `leasedUntil`, so a second process (or this one after a crash,
    /// once the lease ends) never sends the same message twice at once.
    static func claimDue(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [MailMessage] {
        try tx.claimDue(from: table, where: claimable, now: now, leasedUntil: leasedUntil, limit: limit)
            .map(message(from:))
            .sorted { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }
    }

    /// Deletes messages that are done (sent, logged or failed) and created before `cutoff`;
    /// queued ones stay whatever their age.
    static func deleteFinished(_ tx: SQLTx, createdBefore cutoff: Date) throws -> Int {
        try tx.execute("DELETE FROM mail_messages WHERE status <> 'queued' AND created_at < ?", cutoff)
    }

    static func markDelivered(_ tx: SQLTx, id: String, status: MailMessage.Status, at: Date, attempts: Int) throws {
        try tx.execute(
            "UPDATE mail_messages SET status = ?, sent_at = ?, attempts = ?, leased_until = NULL, last_error = NULL WHERE id = ?",
            status.rawValue,
            at,
            attempts,
            id
        )
    }

    static func markFailedAttempt(_ tx: SQLTx, id: String, attempts: Int, error: String, nextAttemptAt: Date, giveUp: Bool) throws {
        try tx.execute(
            "UPDATE mail_messages SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, leased_until = NULL WHERE id = ?",
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
