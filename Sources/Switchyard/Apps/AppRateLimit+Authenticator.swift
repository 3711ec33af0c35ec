import Foundation

/// Where an app's call stands with its rate limit inside the authenticator's transaction.
enum RateGate: Sendable {
    /// Not an app's call, or one given a token: the body runs.
    case pass
    /// This process's share is spent: lease outside the transaction, then run it again.
    case lease(appID: String, rate: Double)
    /// Over the limit: 429, and the body never runs (a refused write changes nothing).
    case refused(APIError)
}

extension Authenticator {
    /// Right after the credentials resolved to an app, before the body: takes a token of the app's
    /// local share, in memory, so an admitted call costs no round trip of its own. `leased`: this
    /// call already holds a token from a lease it waited for.
    func admit(_ principal: Principal, _ caller: Caller, leased: Bool) -> RateGate {
        guard case .app(let app) = principal, let limiter = rateLimiter else { return .pass }
        if leased || caller.appCall?.isAdmitted == true { return .pass }
        let rate = limiter.rate(for: app)
        switch limiter.take(app.id, rate: rate) {
        case .admitted(let state):
            caller.appCall?.note(rateLimit: state, admitted: true)
            return .pass
        case .refused(let state):
            caller.appCall?.note(rateLimit: state, admitted: false)
            return .refused(AppRateLimiter.refusal(state, rate: rate))
        case .lease:
            return .lease(appID: app.id, rate: rate)
        }
    }

    /// After the transaction: nothing to do for `.pass` (false); leases for `.lease` and answers
    /// whether to run the transaction again with the token it got; throws the 429 of a refusal,
    /// once the app is noted for its `app.request` entry.
    func passGate(_ gate: RateGate, _ authentication: Authentication, _ caller: Caller, admitted: inout Bool) async throws -> Bool {
        switch gate {
        case .pass:
            return false
        case .refused(let error):
            try await settle(authentication, caller: caller)
            throw error
        case .lease(let appID, let rate):
            guard let limiter = rateLimiter else { return false }
            switch try await limiter.acquire(appID, rate: rate) {
            case .admitted(let state):
                caller.appCall?.note(rateLimit: state, admitted: true)
                admitted = true
                return true
            case .refused(let state):
                caller.appCall?.note(rateLimit: state, admitted: false)
                try await settle(authentication, caller: caller)
                throw AppRateLimiter.refusal(state, rate: rate)
            case .lease:
                return true
            }
        }
    }

    /// The app behind an app access token, in a read of its own, without recording anything: for
    /// the `app.request` entry of a call answered before any service authenticated it (its body
    /// refused first). Nil for a token that does not resolve.
    func app(of credentials: Credentials) async throws -> AppPrincipal? {
        let now = clock.now
        let authentication = try await database.read { [self] tx in try authenticate(tx, credentials, now: now) }
        guard case .principal(.app(let app), _) = authentication else { return nil }
        return app
    }
}
