import Foundation
import Logging

/// Mail goes through the outbox: features enqueue a message inside their own transaction, so a
/// message exists exactly when the change that caused it does, and the mail sender delivers it.
public struct MailService: Sendable {
    let database: Database
    let clock: any WallClock

    /// Queues a message in the caller's transaction. Header fields are single-line, so a value
    /// taken from user input cannot add headers.
    @discardableResult
    public func enqueue(_ tx: SQLTx, to recipient: String, subject: String, body: String) throws -> MailMessage {
        let now = clock.now
        let message = MailMessage(
            id: ID.make("msg", at: now),
            recipient: singleLine(recipient),
            subject: singleLine(subject),
            body: body,
            status: .queued,
            attempts: 0,
            nextAttemptAt: now,
            lastError: nil,
            createdAt: now,
            sentAt: nil
        )
        try MailStore.insert(tx, message)
        return message
    }

    /// Deletes messages that are done (sent, logged or failed) and older than `days`; queued ones
    /// stay whatever their age. Housekeeping calls this.
    @discardableResult
    public func deleteFinished(olderThanDays days: Int) async throws -> Int {
        let cutoff = clock.now.addingTimeInterval(-Double(days) * 86_400)
        return try await database.write { tx in
            try tx.execute("DELETE FROM mail_messages WHERE status <> 'queued' AND created_at < ?", cutoff)
        }
    }

    public func list(status: MailMessage.Status?, after: String?, limit: Int) async throws -> [MailMessage] {
        try await database.read { tx in try MailStore.list(tx, status: status, after: after, limit: limit) }
    }

    private func singleLine(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" })
    }
}

/// Delivers the outbox: through SMTP when configured, otherwise by logging each message (the
/// local mail viewer is `GET /v1/outbox`). A failed attempt is retried with exponential backoff;
/// state lives in the database, so a restart loses nothing.
public struct MailSender: Sendable {
    public static let maximumAttempts = 12

    let database: Database
    let clock: any WallClock
    let smtp: SMTPClient?
    let logger: Logger

    public init(database: Database, clock: any WallClock, smtp: SMTPClient?, logger: Logger) {
        self.database = database
        self.clock = clock
        self.smtp = smtp
        self.logger = logger
    }

    /// Seconds to wait after the `attempt`-th failure: 5 s doubling, at most an hour.
    public static func backoff(afterAttempt attempt: Int) -> TimeInterval {
        min(5 * pow(2, Double(max(0, attempt - 1))), 3600)
    }

    /// Sends what is due now; returns how many messages it handled.
    @discardableResult
    public func deliverDue(limit: Int = 20) async throws -> Int {
        var handled = 0
        // One message per claim: its lease (120 s) outlasts one SMTP conversation (30 s at most), so
        // another process never takes a message this one is still sending.
        while handled < limit {
            let now = clock.now
            guard let message = try await database.write({ tx in try MailStore.claimDue(tx, now: now, lease: 120, limit: 1) }).first else {
                break
            }
            await deliver(message)
            handled += 1
        }
        return handled
    }

    private func deliver(_ message: MailMessage) async {
        let attempts = message.attempts + 1
        do {
            if let smtp {
                try await smtp.send(message, date: clock.now)
                logger.info("mail sent", metadata: ["message": "\(message.id)", "attempts": "\(attempts)"])
            } else {
                logger.info(
                    "mail (no --smtp-url; kept in the outbox)",
                    metadata: [
                        "message": "\(message.id)", "to": "\(message.recipient)", "subject": "\(message.subject)",
                    ]
                )
            }
            let status: MailMessage.Status = smtp == nil ? .logged : .sent
            let at = clock.now
            try await database.write { tx in try MailStore.markDelivered(tx, id: message.id, status: status, at: at, attempts: attempts) }
        } catch {
            let giveUp = attempts >= Self.maximumAttempts
            let next = clock.now.addingTimeInterval(Self.backoff(afterAttempt: attempts))
            logger.warning(
                "mail attempt failed",
                metadata: [
                    "message": "\(message.id)", "attempts": "\(attempts)", "error": "\(error)", "gave_up": "\(giveUp)",
                ]
            )
            let reason = String(describing: error).prefix(500)
            _ = try? await database.write { tx in
                try MailStore.markFailedAttempt(
                    tx,
                    id: message.id,
                    attempts: attempts,
                    error: String(reason),
                    nextAttemptAt: next,
                    giveUp: giveUp
                )
            }
        }
    }
}
