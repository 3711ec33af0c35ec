import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The figures of an app's rate limit after one call, for its `RateLimit-*` headers.
public struct AppRateLimitState: Sendable, Equatable {
    /// The bucket's size: the most calls at once (twice the rate).
    public var limit: Int
    /// Calls left right now, as this process sees the shared bucket.
    public var remaining: Int
    /// Seconds until the bucket is full again.
    public var reset: Int
    /// Seconds until a call is admitted again; set when this one was refused.
    public var retryAfter: Int?
}

/// Each app's token bucket (rate `AppPrincipal.rateLimit ?? --app-rate-limit` calls a second, burst
/// twice that), shared by every process on the database through `app_rate_buckets`. A process
/// leases a share of the bucket (a twentieth of a second's refill, at least one token) in one short
/// write and spends it from memory, so a call costs no database round trip while its share lasts;
/// a share unused for `idleReturn` goes back to the bucket, so an idle process never starves a busy
/// one. Calls are only ever spent from tokens taken out of the shared bucket, so all processes
/// together admit at most what one bucket would, plus the shares out at one time (one lease per
/// process): within 10 % of the limit (docs/rate-limits.md).
public final class AppRateLimiter: Service, Sendable {
    public enum Decision: Sendable, Equatable {
        case admitted(AppRateLimitState)
        case refused(AppRateLimitState)
        /// The share is spent and the bucket may hold more: `acquire` leases, outside any transaction.
        case lease
    }

    /// One process's share of one app's bucket.
    struct Share {
        var rate: Double
        /// Leased and not yet spent; below zero after calls charged once answered (`charge`).
        var tokens: Double = 0
        var lastUsed: Date
        /// The shared bucket as the last lease left it, for `RateLimit-Remaining`.
        var bucket: Double = 0
        var bucketSeenAt: Date
        /// The bucket was found empty: calls are refused without asking again until then.
        var emptyUntil: Date?
        /// The lease under way, which concurrent calls of the app wait for rather than lease again.
        var leasing: Task<Void, Error>?
        /// Calls waiting for the next lease: it asks for as many tokens (at least a chunk), so a
        /// burst of concurrent calls is served by one lease, not one chunk at a time.
        var waiting = 0
    }

    /// How long a share may lie unused before it goes back to the bucket.
    public static let idleReturn: TimeInterval = 0.25
    /// Shares of apps that made no call for this long are forgotten (their figures rebuilt by the
    /// next lease), so the table holds only apps calling now.
    static let forgetAfter: TimeInterval = 60

    let database: Database
    let clock: any WallClock
    let defaultRate: Double
    let logger: Logger
    private let shares = NIOLockedValueBox<[String: Share]>([:])

    public init(database: Database, clock: any WallClock, defaultRate: Double, logger: Logger) {
        self.database = database
        self.clock = clock
        self.defaultRate = defaultRate
        self.logger = logger
    }

    /// Calls a second for `app`; a rate of zero or below (never stored by the API) is one an hour.
    public func rate(for app: AppPrincipal) -> Double {
        let rate = app.rateLimit ?? defaultRate
        return rate > 0 ? rate : 1.0 / 3600
    }

    static func burst(_ rate: Double) -> Double { max(1, 2 * rate) }

    /// The tokens one lease asks for: a twentieth of a second's refill, at least one.
    static func chunk(_ rate: Double) -> Double { min(burst(rate), max(1, rate / 20)) }

    /// Takes one token of the local share, without I/O: what the authenticator asks inside a
    /// call's transaction, before its body runs.
    public func take(_ appID: String, rate: Double) -> Decision {
        let now = clock.now
        return shares.withLockedValue { shares in
            var share = shares[appID] ?? Share(rate: rate, lastUsed: now, bucketSeenAt: now)
            share.rate = rate
            defer { shares[appID] = share }
            if share.tokens >= 1 {
                share.tokens -= 1
                share.lastUsed = now
                return .admitted(Self.state(share, now: now))
            }
            if let until = share.emptyUntil, until > now {
                share.lastUsed = now
                Counter(label: "switchyard_app_rate_limited_total").increment()
                return .refused(Self.state(share, now: now, refusedUntil: until))
            }
            return .lease
        }
    }

    /// Leases shares until this call has a token or the shared bucket is found empty: `.admitted`
    /// or `.refused`, never `.lease`. Each lease is one short write; concurrent calls of one app
    /// wait for the same lease.
    public func acquire(_ appID: String, rate: Double) async throws -> Decision {
        // Each round admits, refuses, or leases for every call waiting; tokens a concurrent call took
        // first send this one round again. A pathological race is refused, never admitted.
        for _ in 0..<16 {
            let decision = take(appID, rate: rate)
            guard decision == .lease else { return decision }
            try await lease(appID, rate: rate)
        }
        let now = clock.now
        let state = shares.withLockedValue { shares in
            shares[appID].map { Self.state($0, now: now, refusedUntil: now.addingTimeInterval(1)) }
        }
        return .refused(state ?? AppRateLimitState(limit: Int(Self.burst(rate)), remaining: 0, reset: 1, retryAfter: 1))
    }

    /// Counts a call that was answered before its app was known (a body refused before the
    /// authenticator ran): spent from the share, which may go below zero and is paid back from the
    /// next lease.
    public func charge(_ appID: String, rate: Double) -> AppRateLimitState {
        let now = clock.now
        return shares.withLockedValue { shares in
            var share = shares[appID] ?? Share(rate: rate, lastUsed: now, bucketSeenAt: now)
            share.rate = rate
            share.tokens -= 1
            share.lastUsed = now
            shares[appID] = share
            return Self.state(share, now: now)
        }
    }

    /// The 429 of a refused call, with `Retry-After`.
    static func refusal(_ state: AppRateLimitState, rate: Double) -> APIError {
        let seconds = state.retryAfter ?? 1
        let perSecond = rate == rate.rounded() ? String(Int(rate)) : String(format: "%.2f", rate)
        var error = APIError(
            .rateLimited,
            detail: "This app made more calls than its rate limit of \(perSecond) a second (bursts up to \(state.limit)) allows; "
                + "retry in \(seconds) s."
        )
        error.headers[.retryAfter] = String(seconds)
        return error
    }

    private func lease(_ appID: String, rate: Double) async throws {
        let now = clock.now
        let task = shares.withLockedValue { shares -> Task<Void, Error> in
            var share = shares[appID] ?? Share(rate: rate, lastUsed: now, bucketSeenAt: now)
            defer { shares[appID] = share }
            share.waiting += 1
            if let running = share.leasing { return running }
            let task = Task { try await self.performLease(appID, rate: rate) }
            share.leasing = task
            return task
        }
        try await task.value
    }

    private func performLease(_ appID: String, rate: Double) async throws {
        let now = clock.now
        let burst = Self.burst(rate)
        let demand = shares.withLockedValue { shares in
            defer { shares[appID]?.waiting = 0 }
            return shares[appID]?.waiting ?? 0
        }
        let want = min(burst, max(Self.chunk(rate), Double(demand)))
        let result: Result<AppRateLimitStore.Lease, Error>
        do {
            result = .success(
                try await database.write { tx in
                    try AppRateLimitStore.lease(tx, appID: appID, rate: rate, burst: burst, want: want, now: now)
                }
            )
            Counter(label: "switchyard_app_rate_leases_total").increment()
        } catch {
            result = .failure(error)
        }
        shares.withLockedValue { shares in
            guard var share = shares[appID] else { return }
            share.leasing = nil
            defer { shares[appID] = share }
            guard case .success(let lease) = result else { return }
            share.tokens += lease.taken
            share.bucket = lease.left
            share.bucketSeenAt = now
            if share.tokens < 1 {
                // Ask again once the bucket can fill a lease (or pay what the share owes).
                let needed = max(Self.chunk(rate), 1 - share.tokens) - lease.left
                share.emptyUntil = now.addingTimeInterval(max(needed, 0.001) / rate)
            } else {
                share.emptyUntil = nil
            }
        }
        _ = try result.get()
    }

    /// Hands back shares unused for `idleFor` seconds, in one write; forgets apps that stopped
    /// calling. The service calls it several times a second; tests call it directly.
    public func returnIdle(idleFor: TimeInterval = idleReturn) async {
        let now = clock.now
        let returned = shares.withLockedValue { shares -> [(appID: String, rate: Double, tokens: Double)] in
            var returned: [(String, Double, Double)] = []
            for (appID, var share) in shares where share.leasing == nil && now.timeIntervalSince(share.lastUsed) >= idleFor {
                if share.tokens > 0 {
                    returned.append((appID, share.rate, share.tokens))
                    share.tokens = 0
                    shares[appID] = share
                } else if now.timeIntervalSince(share.lastUsed) >= Self.forgetAfter {
                    shares[appID] = nil
                }
            }
            return returned
        }
        guard !returned.isEmpty else { return }
        do {
            try await database.write { tx in
                for share in returned {
                    _ = try AppRateLimitStore.lease(
                        tx,
                        appID: share.appID,
                        rate: share.rate,
                        burst: Self.burst(share.rate),
                        want: 0,
                        give: share.tokens,
                        now: now
                    )
                }
            }
        } catch {
            // The tokens are lost to this second's callers: the limit errs on the strict side.
            logger.warning("app rate limits: could not return unused shares", metadata: ["error": "\(error)"])
        }
    }

    /// Returns idle shares several times a second; on graceful shutdown hands back every share.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(100)) }
            await returnIdle()
        }
        await returnIdle(idleFor: 0)
    }

    /// What this process knows of an app's bucket (nil before its first call), for tests.
    func share(_ appID: String) -> (tokens: Double, emptyUntil: Date?)? {
        shares.withLockedValue { shares in shares[appID].map { ($0.tokens, $0.emptyUntil) } }
    }

    static func state(_ share: Share, now: Date, refusedUntil: Date? = nil) -> AppRateLimitState {
        let burst = burst(share.rate)
        let refilled = min(burst, share.bucket + max(0, now.timeIntervalSince(share.bucketSeenAt)) * share.rate)
        let estimate = refusedUntil == nil ? min(burst, max(0, share.tokens) + refilled) : 0
        return AppRateLimitState(
            limit: Int(burst.rounded(.down)),
            remaining: Int(estimate.rounded(.down)),
            reset: Int(((burst - estimate) / share.rate).rounded(.up)),
            retryAfter: refusedUntil.map { max(1, Int($0.timeIntervalSince(now).rounded(.up))) }
        )
    }
}
