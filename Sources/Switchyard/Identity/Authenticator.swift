import Foundation
import NIOConcurrencyHelpers

/// What a request presented, read without I/O by its route group's `AuthenticationMiddleware`.
public enum Credentials: Sendable, Equatable {
    case bearer(String)
    case session(String)
}

/// A request's caller as the route group's authentication left it: credentials read, not yet looked
/// up. Services resolve them inside the read or write they make anyway (`Authenticator.read`), so a
/// hot request costs one transaction.
public struct Caller: Sendable {
    public var credentials: Credentials
    /// Where the request came from, for activity entries; the actor is filled in once resolved.
    public var audit: AuditContext
    /// Told which app made the call once its token is resolved, for the app's rate limit and its
    /// `app.request` activity entry (the route group's app middleware reads it after the answer).
    public var appCall: AppCallNote?

    public init(credentials: Credentials, audit: AuditContext, appCall: AppCallNote? = nil) {
        self.credentials = credentials
        self.audit = audit
        self.appCall = appCall
    }
}

/// Which app a request turned out to come from, written by the authenticator and read by the
/// middleware that wrapped the request: request contexts are values, so this box carries the
/// answer back out. It also carries the call's standing with the app's rate limit, so a request
/// that authenticates twice (a retried create) is counted once.
public final class AppCallNote: Sendable {
    private struct Noted {
        var app: AppPrincipal?
        var workspaceID: String?
        var rateLimit: AppRateLimitState?
        var admitted = false
    }

    private let box = NIOLockedValueBox(Noted())

    public init() {}

    public var app: AppPrincipal? { box.withLockedValue { $0.app } }
    public var workspaceID: String? { box.withLockedValue { $0.workspaceID } }
    /// The figures of the `RateLimit-*` headers, once the call was admitted or refused.
    public var rateLimit: AppRateLimitState? { box.withLockedValue { $0.rateLimit } }
    /// Whether the call was given one of its app's tokens.
    public var isAdmitted: Bool { box.withLockedValue { $0.admitted } }

    func note(_ app: AppPrincipal) {
        box.withLockedValue { $0.app = app }
    }

    func note(rateLimit: AppRateLimitState, admitted: Bool) {
        box.withLockedValue { noted in
            noted.rateLimit = rateLimit
            noted.admitted = noted.admitted || admitted
        }
    }

    /// The workspace the call was about, when a service knows it.
    public func note(workspaceID: String) {
        box.withLockedValue { $0.workspaceID = workspaceID }
    }
}

/// The outcome of looking credentials up, decided inside a read transaction; the authenticator
/// then does the rare writes it implies (`settle`).
public enum Authentication: Sendable {
    case principal(Principal, noteUse: (@Sendable (SQLTx, Date) throws -> Void)?)
    /// Not a credential at all (an unknown or expired console session).
    case anonymous
    case refused(reason: String, detail: String)

    static let signInHint = "Send an API token as `Authorization: Bearer sy_…`, or sign in with POST /v1/sessions."

    /// The principal, or the 401 a caller without one gets.
    public func require() throws -> Principal {
        switch self {
        case .principal(let principal, _): return principal
        case .refused(_, let detail): throw APIError.unauthenticated(detail)
        case .anonymous: throw APIError.unauthenticated(Self.signInHint)
        }
    }
}

/// Looks up one kind of credential: personal API tokens, console sessions; the apps issue adds app
/// access tokens and developer-portal sessions. `accepts` decides without I/O (a prefix, a cookie),
/// `resolve` reads inside the caller's transaction and never writes.
public protocol CredentialResolver: Sendable {
    func accepts(_ credentials: Credentials) -> Bool
    func resolve(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication
}

/// Resolves a caller's credentials into a `Principal` with the first resolver that accepts them,
/// inside the transaction the request makes anyway, and records what authentication implies:
/// refusals in the activity log, a token's last use.
public final class Authenticator: Sendable {
    let database: Database
    let clock: any WallClock
    let activity: ActivityService
    let resolvers: [any CredentialResolver]
    /// Apps' rate limits, checked before a call's body runs; nil checks none.
    let rateLimiter: AppRateLimiter?

    public init(
        database: Database,
        clock: any WallClock,
        activity: ActivityService,
        resolvers: [any CredentialResolver],
        rateLimiter: AppRateLimiter? = nil
    ) {
        self.database = database
        self.clock = clock
        self.activity = activity
        self.resolvers = resolvers
        self.rateLimiter = rateLimiter
    }

    /// Looks credentials up in the caller's transaction. Never writes.
    public func authenticate(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication {
        guard let resolver = resolvers.first(where: { $0.accepts(credentials) }) else {
            switch credentials {
            case .session: return .anonymous
            case .bearer:
                return .refused(
                    reason: "malformed token",
                    detail: "The token is not a Switchyard API token (sy_live_…, sy_test_…) or app access token (sya_live_…, sya_test_…)."
                )
            }
        }
        return try resolver.resolve(tx, credentials, now: now)
    }

    /// Records a refusal (with at most a token's last four characters) and notes a credential's last
    /// use; called after `authenticate`, outside its read.
    func settle(_ authentication: Authentication, caller: Caller) async throws {
        let audit = caller.audit
        if case .principal(.app(let app), _) = authentication { caller.appCall?.note(app) }
        switch authentication {
        case .refused(let reason, _):
            try await activity.recordFailure(audit, action: "api_token.rejected", detail: reason, flood: true)
        case .principal(_, let noteUse?):
            let now = clock.now
            try await database.write { [self] tx in try noteUse(tx, now) }
        default:
            break
        }
    }

    /// The caller, in a read of its own: for routes that read nothing else on a hot path. 401
    /// without valid credentials.
    public func principal(_ caller: Caller) async throws -> Principal {
        try await read(caller, oneTrip: true, prefetch: { _ in () }) { _, principal, _ in principal }
    }

    /// Authenticates and runs `body` in one read transaction: a hot read costs one hop. An app's
    /// call takes a token of its rate limit first (`admit`): refused with 429 before `body` runs,
    /// or, when this process's share is spent, run again once a lease came back.
    public func read<T: Sendable>(_ caller: Caller, _ body: @escaping @Sendable (SQLTx, Principal) throws -> T) async throws -> T {
        try await read(caller, oneTrip: false, prefetch: { _ in () }) { tx, principal, _ in try body(tx, principal) }
    }

    /// `read` for a hot route whose first query does not depend on the caller: `prefetch` sends it
    /// (`SQLTx.prefetch`) before the credentials are looked up, so on PostgreSQL both share one
    /// round trip, and that trip is the whole read (`Database.read(oneTrip:)`): `body` reads its
    /// rows once the caller is known, and one that queries again (a 404 saying what is missing) is
    /// run again, in a transaction. A caller who is refused never sees what it fetched.
    public func read<P: Sendable, T: Sendable>(
        _ caller: Caller,
        prefetch: @escaping @Sendable (SQLTx) -> P,
        _ body: @escaping @Sendable (SQLTx, Principal, P) throws -> T
    ) async throws -> T {
        try await read(caller, oneTrip: true, prefetch: prefetch, body)
    }

    private func read<P: Sendable, T: Sendable>(
        _ caller: Caller,
        oneTrip: Bool,
        prefetch: @escaping @Sendable (SQLTx) -> P,
        _ body: @escaping @Sendable (SQLTx, Principal, P) throws -> T
    ) async throws -> T {
        try await gated(caller) { [self] now, leased in
            // Run again from the start when a one-trip read queries twice: `admit` takes the app's
            // rate-limit token once (`AppCallNote.isAdmitted`), and the rest only reads.
            try await database.read(oneTrip: oneTrip) { [self] tx -> (Authentication, RateGate, Result<T, Error>?) in
                let fetched = prefetch(tx)
                let authentication = try authenticate(tx, caller.credentials, now: now)
                guard case .principal(let principal, _) = authentication else { return (authentication, .pass, nil) }
                let gate = admit(principal, caller, leased: leased)
                guard case .pass = gate else { return (authentication, gate, nil) }
                do {
                    return (authentication, .pass, .success(try body(tx, principal, fetched)))
                } catch {
                    return (authentication, .pass, .failure(error))
                }
            }
        }.get()
    }

    /// Authenticates and runs `body` in one write transaction, noting the credential's use in it; a
    /// refusal is recorded after it. An app's call over its rate limit writes nothing.
    public func write<T: Sendable>(_ caller: Caller, _ body: @escaping @Sendable (SQLTx, Principal) throws -> T) async throws -> T {
        try await write(caller, prefetch: { _ in () }) { tx, principal, _ in try body(tx, principal) }
    }

    /// `write` whose first reads do not depend on the caller: `prefetch` sends them before the
    /// credentials are looked up, as `read(_:prefetch:_:)` does.
    public func write<P: Sendable, T: Sendable>(
        _ caller: Caller,
        prefetch: @escaping @Sendable (SQLTx) -> P,
        _ body: @escaping @Sendable (SQLTx, Principal, P) throws -> T
    ) async throws -> T {
        try await gated(caller) { [self] now, leased in
            try await database.write { [self] tx -> (Authentication, RateGate, T?) in
                let fetched = prefetch(tx)
                let authentication = try authenticate(tx, caller.credentials, now: now)
                guard case .principal(let principal, let noteUse) = authentication else { return (authentication, .pass, nil) }
                let gate = admit(principal, caller, leased: leased)
                guard case .pass = gate else { return (.principal(principal, noteUse: nil), gate, nil) }
                try noteUse?(tx, now)
                return (.principal(principal, noteUse: nil), .pass, try body(tx, principal, fetched))
            }
        }
    }

    /// What `read` and `write` share around their transaction: the rate gate (an attempt again
    /// once a lease came back), the refusal recorded, and the caller's 401.
    private func gated<R>(
        _ caller: Caller,
        _ attempt: (_ now: Date, _ leased: Bool) async throws -> (Authentication, RateGate, R?)
    ) async throws -> R {
        var admitted = false
        while true {
            let (authentication, gate, result) = try await attempt(clock.now, admitted)
            if try await passGate(gate, authentication, caller, admitted: &admitted) { continue }
            try await settle(authentication, caller: caller)
            _ = try authentication.require()
            guard let result else { throw APIError.unauthenticated(Authentication.signInHint) }
            return result
        }
    }
}
