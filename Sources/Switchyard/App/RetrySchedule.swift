import Foundation

/// When to try a failed job again: one type for mail, webhook deliveries, token refresh and syncs,
/// so every retry in the product is tuned and tested the same way.
///
/// Attempts count from 1: `delay(afterAttempt: 1)` is the wait after the first failure.
public struct RetrySchedule: Sendable {
    public enum Delays: Sendable, Equatable {
        /// `base`, then multiplied by `factor` after each failure.
        case exponential(base: TimeInterval, factor: Double)
        /// The waits in order; the last one repeats.
        case list([TimeInterval])
    }

    public var delays: Delays
    /// No wait is longer than this, jitter included.
    public var cap: TimeInterval
    /// Up to this fraction (0…1) is taken off each wait at random, so jobs that failed together
    /// (an endpoint that was down) do not all come back in the same second. Only ever shortened,
    /// so a wait at the cap still spreads out instead of piling up on it.
    public var jitter: Double
    /// The attempt after which the job is given up; `nil` retries forever.
    public var maximumAttempts: Int?
    /// A number in 0..<1 for each jitter; tests pass a fixed one.
    public var random: @Sendable () -> Double

    public init(
        delays: Delays,
        cap: TimeInterval = .infinity,
        jitter: Double = 0,
        maximumAttempts: Int?,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.delays = delays
        self.cap = cap
        self.jitter = min(max(jitter, 0), 1)
        self.maximumAttempts = maximumAttempts
        self.random = random
    }

    /// Seconds to wait after the `attempt`-th failure, jitter and cap applied.
    public func delay(afterAttempt attempt: Int) -> TimeInterval {
        let nominal: TimeInterval
        switch delays {
        case .exponential(let base, let factor):
            nominal = base * pow(factor, Double(max(0, attempt - 1)))
        case .list(let waits):
            guard !waits.isEmpty else { return 0 }
            nominal = waits[min(max(attempt, 1), waits.count) - 1]
        }
        // Capped before jitter: a huge exponent gives infinity, and min() brings it back.
        let capped = min(nominal, cap)
        guard jitter > 0 else { return capped }
        return capped * (1 - jitter * min(max(random(), 0), 1))
    }

    /// When to try again after `attempts` attempts have failed, or nil when that was the last one.
    public func nextAttempt(after attempts: Int, now: Date) -> Date? {
        if let maximumAttempts, attempts >= maximumAttempts { return nil }
        return now.addingTimeInterval(delay(afterAttempt: attempts))
    }
}
