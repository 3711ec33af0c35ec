import Foundation

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
        return try await database.write { tx in try MailStore.deleteFinished(tx, createdBefore: cutoff) }
    }

    public func list(status: MailMessage.Status?, after: String?, limit: Int) async throws -> [MailMessage] {
        try await database.read { tx in try MailStore.list(tx, status: status, after: after, limit: limit) }
    }

    private func singleLine(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" })
    }
}
