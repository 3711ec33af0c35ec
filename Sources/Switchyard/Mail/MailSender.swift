import Foundation
import Logging

/// Delivers the outbox: through SMTP when configured, otherwise by logging each message (the
/// local mail viewer is `GET /v1/outbox`). A failed attempt is retried on `schedule`; state lives
/// in the database, so a restart loses nothing. It runs as a `Worker` under a `WorkerService`.
public struct MailSender: Worker {
    public static let maximumAttempts = 12

    /// 5 s doubling, at most an hour, twelve attempts: about 2 h 25 min in all (docs/operations.md).
    public static let schedule = RetrySchedule(
        delays: .exponential(base: 5, factor: 2),
        cap: 3600,
        maximumAttempts: maximumAttempts
    )

    public let name = "mail sender"
    /// Sent at once, each on its own connection: 3 is what the strictest common provider
    /// (Microsoft 365's SMTP AUTH) allows a mailbox.
    public let batchSize = 3
    /// Outlasts one SMTP conversation (30 s at most), so another process never takes a message
    /// this one is still sending.
    public let lease: TimeInterval = 120

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

    /// Seconds to wait after the `attempt`-th failure.
    public static func backoff(afterAttempt attempt: Int) -> TimeInterval {
        schedule.delay(afterAttempt: attempt)
    }

    /// Sends what is due now, a batch at a time, until nothing is due or about `limit` were
    /// handled; returns how many messages it handled. The background service does the same.
    @discardableResult
    public func deliverDue(limit: Int = 20) async throws -> Int {
        let service = WorkerService(self, database: database, clock: clock, pollInterval: .seconds(1), logger: logger)
        var handled = 0
        while handled < limit {
            let count = try await service.runDue()
            guard count > 0 else { break }
            handled += count
        }
        return handled
    }

    public func claim(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [MailMessage] {
        try MailStore.claimDue(tx, now: now, leasedUntil: leasedUntil, limit: limit)
    }

    public func run(_ message: MailMessage) async throws {
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
        } catch {
            try await recordFailure(of: message, attempts: attempts, error: error)
            return
        }
        let status: MailMessage.Status = smtp == nil ? .logged : .sent
        let at = clock.now
        try await database.write { tx in try MailStore.markDelivered(tx, id: message.id, status: status, at: at, attempts: attempts) }
    }

    private func recordFailure(of message: MailMessage, attempts: Int, error: any Error) async throws {
        let now = clock.now
        let next = Self.schedule.nextAttempt(after: attempts, now: now)
        logger.warning(
            "mail attempt failed",
            metadata: [
                "message": "\(message.id)", "attempts": "\(attempts)", "error": "\(error)", "gave_up": "\(next == nil)",
            ]
        )
        let reason = String(String(describing: error).prefix(500))
        // A message given up keeps the time its next attempt would have had, as it always did.
        let nextAttemptAt = next ?? now.addingTimeInterval(Self.schedule.delay(afterAttempt: attempts))
        try await database.write { tx in
            try MailStore.markFailedAttempt(tx, id: message.id, attempts: attempts, error: reason, nextAttemptAt: nextAttemptAt, giveUp: next == nil)
        }
    }
}
