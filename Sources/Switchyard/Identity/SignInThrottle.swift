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

/// The throttle of failed sign-ins, for the console (`session.created`) and the portal
/// (`portal.signed_in`) alike, each on its own action: a guess at a developer's password is not one
/// at a console user's. Limits: `SessionService.signInFailuresPerEmail`/`…PerAddress` in
/// `signInWindow`. Failures are counted from the activity log (every process) and from this
/// process's own attempts, which also holds those still under way, so a burst of parallel guesses
/// cannot all pass before the first failure is written.
struct SignInThrottle: Sendable {
    /// The action whose failures count (`session.created`, `portal.signed_in`).
    let action: String
    /// What a refusal is recorded as (`session.throttled`, `portal.throttled`).
    let throttledAction: String
    let activity: ActivityService
    let clock: any WallClock
    let recent = RecentSignIns()

    /// 429 with `Retry-After` once the failures in the window reach a limit; else the attempt is
    /// counted until it succeeds. Checked before the password, so a throttled guess costs no
    /// bcrypt check.
    func reserve(_ audit: AuditContext) async throws -> RecentSignIns.Attempt? {
        guard let label = audit.actorLabel else { return nil }
        let now = clock.now
        let window = SessionService.signInWindow
        let since = now.addingTimeInterval(-window)
        let failures = try await activity.recentFailures(action: action, actorLabel: label, ip: audit.ip, since: since)
        let pair = failures.filter { $0.actorLabel == label && $0.ip == audit.ip }.map(\.occurredAt)
        var checks = [RecentSignIns.Check(key: "\(label) \(audit.ip ?? "-")", recorded: pair, limit: SessionService.signInFailuresPerEmail)]
        if let ip = audit.ip {
            let address = failures.filter { $0.ip == ip }.map(\.occurredAt)
            checks.append(RecentSignIns.Check(key: "address \(ip)", recorded: address, limit: SessionService.signInFailuresPerAddress))
        }
        switch recent.begin(checks, at: now, since: since) {
        case .allowed(let attempt):
            return attempt
        case .refused(let oldest):
            let seconds = max(1, Int(oldest.addingTimeInterval(window).timeIntervalSince(now).rounded(.up)))
            try await activity.recordFailure(audit, action: throttledAction, detail: "too many failed sign-ins", flood: true)
            var error = APIError(.tooManyAttempts, detail: "Too many failed sign-ins from here; try again in \(seconds) seconds.")
            error.headers[.retryAfter] = String(seconds)
            throw error
        }
    }

    func succeeded(_ attempt: RecentSignIns.Attempt?) {
        recent.succeeded(attempt)
    }
}
