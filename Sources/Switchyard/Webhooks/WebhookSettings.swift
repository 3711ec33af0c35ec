import Foundation

/// How deliveries are made: `switchyard serve`'s webhook flags.
public struct WebhookSettings: Sendable {
    /// The wait before each attempt, the first being the first attempt (0: at once); as many
    /// attempts as entries.
    public var schedule: [TimeInterval]
    /// Each wait is moved up to this fraction either way, so deliveries that failed together
    /// (a receiver that was down) do not all come back in the same second.
    public var jitter: Double
    public var timeout: TimeInterval
    /// An endpoint whose attempts have all failed this long is disabled.
    public var disableAfter: TimeInterval
    /// An endpoint whose last this-many deliveries were all exhausted is disabled.
    public var disableAfterFailures: Int
    public var allowedTargetNetworks: [IPNetwork]
    /// How much of a receiver's answer the attempt log keeps (the rest is not read).
    public var responseBodyLimit: Int

    public static let defaultSchedule: [TimeInterval] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000]

    public init(
        schedule: [TimeInterval] = WebhookSettings.defaultSchedule,
        jitter: Double = 0.2,
        timeout: TimeInterval = 15,
        disableAfter: TimeInterval = 5 * 86_400,
        disableAfterFailures: Int = 20,
        allowedTargetNetworks: [IPNetwork] = [],
        responseBodyLimit: Int = 20 * 1024
    ) {
        self.schedule = schedule.isEmpty ? [0] : schedule
        self.jitter = jitter
        self.timeout = timeout
        self.disableAfter = disableAfter
        self.disableAfterFailures = max(1, disableAfterFailures)
        self.allowedTargetNetworks = allowedTargetNetworks
        self.responseBodyLimit = responseBodyLimit
    }

    /// When to try again after the `round`-th attempt of a schedule failed (nil: that was the
    /// last), with the receiver's `Retry-After` honoured up to twice the scheduled wait.
    func nextAttempt(afterRound round: Int, retryAfter: TimeInterval?, now: Date, random: Double = Double.random(in: 0..<1)) -> Date? {
        guard round < schedule.count else { return nil }
        let nominal = schedule[round]
        var wait = nominal * (1 + jitter * (2 * random - 1))
        if let retryAfter {
            wait = max(wait, min(retryAfter, nominal * 2))
        }
        return now.addingTimeInterval(max(0, wait))
    }

    /// `0,5s,5m,30m,2h,5h,10h,10h` or `0,100ms,200ms`: waits, each a number with `ms`, `s`, `m`,
    /// `h` or `d` (seconds without one).
    public static func parseSchedule(_ text: String) throws -> [TimeInterval] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, parts.count <= 50 else {
            throw ConfigurationError("--retry-schedule takes 1 to 50 waits such as 0,5s,5m,30m,2h")
        }
        return try parts.map { try parseDuration($0, flag: "--retry-schedule") }
    }

    public static func parseDuration(_ text: String, flag: String) throws -> TimeInterval {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite { return number * factor }
        }
        if let number = Double(text), number >= 0, number.isFinite { return number }
        throw ConfigurationError("\(flag): `\(text)` is not a duration such as 100ms, 5s, 5m, 2h or 5d")
    }
}
