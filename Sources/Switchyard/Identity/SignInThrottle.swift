import Foundation
import NIOConcurrencyHelpers

/// This process's sign-in attempts in the window, per throttle key, kept until they succeed:
/// failures and attempts still under way. Bounded by the attempts a window can hold, each of
/// which costs a bcrypt check.
final class RecentSignIns: Sendable {
    struct Check {
        var key: String
        /// Failures in the activity log, oldest first.
        var recorded: [Date]
        var limit: Int
    }

    struct Attempt: Sendable {
        let keys: [String]
        let at: Date
    }

    enum Outcome {
        case allowed(Attempt)
        /// Refused; the failure whose leaving the window allows one more attempt.
        case refused(oldest: Date)
    }

    private let attempts = NIOLockedValueBox<[String: [Date]]>([:])

    /// Counts the attempt under every key, unless for some key the failures (the log's or this
    /// process's, whichever are more) have reached its limit.
    func begin(_ checks: [Check], at now: Date, since: Date) -> Outcome {
        attempts.withLockedValue { attempts in
            // Keys are pruned when seen again; sweep the others once there are many.
            if attempts.count > 10_000 {
                attempts = attempts.compactMapValues { dates in
                    let recent = dates.filter { $0 >= since }
                    return recent.isEmpty ? nil : recent
                }
            }
            var refusedAt: Date?
            for check in checks {
                let local = (attempts[check.key] ?? []).filter { $0 >= since }
                attempts[check.key] = local.isEmpty ? nil : local
                let seen = check.recorded.count >= local.count ? check.recorded : local
                if seen.count >= check.limit {
                    let oldest = seen[seen.count - check.limit]
                    refusedAt = max(refusedAt ?? oldest, oldest)
                }
            }
            if let refusedAt { return .refused(oldest: refusedAt) }
            for check in checks { attempts[check.key, default: []].append(now) }
            return .allowed(Attempt(keys: checks.map(\.key), at: now))
        }
    }

    /// A successful sign-in is no failure: it stops counting.
    func succeeded(_ attempt: Attempt?) {
        guard let attempt else { return }
        attempts.withLockedValue { attempts in
            for key in attempt.keys {
                guard var dates = attempts[key], let index = dates.firstIndex(of: attempt.at) else { continue }
                dates.remove(at: index)
                attempts[key] = dates.isEmpty ? nil : dates
            }
        }
    }
}
