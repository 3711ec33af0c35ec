import Foundation
import NIOConcurrencyHelpers

/// Time comes from here, never from `Date()` in features, so expiry and retry schedules are tested
/// by moving a clock rather than sleeping.
public protocol WallClock: Sendable {
    var now: Date { get }
}

public struct SystemClock: WallClock {
    public init() {}
    public var now: Date { Date() }
}

/// A clock tests move by hand.
public final class ManualClock: WallClock {
    private let current: NIOLockedValueBox<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_790_000_000)) { current = NIOLockedValueBox(start) }
    public var now: Date { current.withLockedValue { $0 } }
    public func advance(by seconds: TimeInterval) { current.withLockedValue { $0 += seconds } }
}

extension Duration {
    /// In seconds, for `Date` arithmetic.
    public var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
