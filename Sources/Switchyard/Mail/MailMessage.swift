import Foundation

/// A message in the outbox. `queued` until the mail sender hands it to SMTP (`sent`) or, with no
/// SMTP server configured, logs it (`logged`); `failed` after the last retry.
public struct MailMessage: Codable, Sendable {
    public enum Status: String, Codable, Sendable, CaseIterable { case queued, sent, logged, failed }

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
