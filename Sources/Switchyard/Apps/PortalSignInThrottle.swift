import Foundation

/// The throttle of failed portal sign-ins, with the console's limits and counting
/// (`SessionService.signInFailuresPerEmail`/`…PerAddress` in `signInWindow`, failures from the
/// activity log of every process plus this process's attempts under way, `RecentSignIns`), but on
/// the portal's own action, `portal.signed_in`: a guess at a developer's password is not one at a
/// console user's. SessionService's own check is private to it and bound to `session.created`, so
/// it is not called from here.
struct PortalSignInThrottle: Sendable {
    static let action = "portal.signed_in"

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
        let failures = try await activity.recentFailures(action: Self.action, actorLabel: label, ip: audit.ip, since: since)
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
            try await activity.recordFailure(audit, action: "portal.throttled", detail: "too many failed sign-ins", flood: true)
            var error = APIError(.tooManyAttempts, detail: "Too many failed sign-ins from here; try again in \(seconds) seconds.")
            error.headers[.retryAfter] = String(seconds)
            throw error
        }
    }

    func succeeded(_ attempt: RecentSignIns.Attempt?) {
        recent.succeeded(attempt)
    }
}
