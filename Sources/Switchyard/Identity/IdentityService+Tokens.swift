import Foundation
import NIOConcurrencyHelpers

/// API tokens, sessions and authentication.
extension IdentityService {
    static let sessionLifetime: TimeInterval = 14 * 24 * 3600
    static let sessionPrefix = "sys_"

    func tokenRecord(
        _ token: String,
        userID: String,
        name: String,
        mode: TokenMode,
        workspaces: [String]?,
        expiresAt: Date?,
        now: Date
    ) -> APIToken {
        APIToken(
            id: ID.make("tok", at: now),
            userId: userID,
            name: name,
            mode: mode,
            prefix: TokenFormat.prefix(for: mode),
            lastFour: String(token.suffix(4)),
            workspaces: workspaces,
            expiresAt: expiresAt,
            lastUsedAt: nil,
            revokedAt: nil,
            createdAt: now
        )
    }

    /// Creates a token for `userID`. `principal` is nil for the command line, which acts as the system.
    public func createToken(
        _ input: CreateTokenInput,
        for userID: String,
        by principal: Principal?,
        audit: AuditContext
    ) async throws -> CreatedAPIToken {
        if let principal {
            try principal.require(Role.readers, to: "create API tokens")
        }
        let name = try Validate.name(input.name)
        let mode = input.mode ?? (principal?.tokenMode ?? .live)
        if principal?.tokenMode == .test && mode == .live {
            throw APIError.forbidden("A test token cannot create a live token.")
        }
        let now = clock.now
        if let expiresAt = input.expiresAt, expiresAt <= now {
            throw APIError.validation("`expires_at` must be in the future.", field: "expires_at")
        }
        // A token never mints one that outlives it: a leaked short-lived token stays short-lived.
        var expiry = input.expiresAt
        if let parent = principal?.tokenExpiresAt {
            if let wanted = expiry, wanted > parent {
                throw APIError.validation(
                    "`expires_at` must not be later than this token's own expiry, \(RFC3339.format(parent)).",
                    field: "expires_at"
                )
            }
            expiry = expiry ?? parent
        }
        var scope = input.workspaces.map { Array(Set($0)).sorted() }
        if let limits = principal?.tokenWorkspaces {
            // A scoped token may only hand out what it has.
            let requested = scope ?? limits
            guard Set(requested).isSubset(of: limits) else {
                throw APIError.forbidden("A token limited to some workspaces can only create tokens for those workspaces.")
            }
            scope = requested
        }
        if scope?.isEmpty == true {
            throw APIError.validation("`workspaces` must list at least one workspace id, or be left out for all.", field: "workspaces")
        }
        let token = TokenFormat.generate(prefix: TokenFormat.prefix(for: mode))
        let record = tokenRecord(token, userID: userID, name: name, mode: mode, workspaces: scope, expiresAt: expiry, now: now)
        try await database.write { [scope] tx in
            if let scope {
                let found = try IdentityStore.workspaces(tx, ids: scope)
                if let missing = scope.first(where: { id in !found.contains { $0.id == id } }) {
                    throw APIError.validation("Workspace \(missing) does not exist.", field: "workspaces")
                }
                if mode == .test, let live = found.first(where: { $0.mode == .live }) {
                    throw APIError.validation("A test token reaches only sandbox workspaces; \(live.id) is live.", field: "workspaces")
                }
            }
            try IdentityStore.insert(tx, record, secretHash: TokenFormat.hash(token))
            try activity.record(
                tx,
                audit,
                action: "api_token.created",
                targetType: "api_token",
                targetID: record.id,
                detail: "name \(name), mode \(mode.rawValue)"
            )
        }
        return CreatedAPIToken(token: token, apiToken: record)
    }

    /// The caller's tokens; owners and admins may ask for everyone's with `all`.
    public func listTokens(by principal: Principal, all: Bool, after: String?, limit: Int) async throws -> [APIToken] {
        try principal.require(Role.readers, to: "list API tokens")
        if all {
            try principal.require(Role.userManagers, to: "list every user's API tokens")
            try principal.requireOrganizationWide(to: "list every user's API tokens")
        }
        let userID = all ? nil : principal.userID
        return try await database.read { tx in try IdentityStore.tokens(tx, userID: userID, after: after, limit: limit) }
    }

    /// Revokes a token; the next request that uses it is refused. Owners and admins may revoke
    /// anyone's token, others only their own.
    public func revokeToken(id: String, by principal: Principal, audit: AuditContext) async throws -> APIToken {
        try principal.require(Role.readers, to: "revoke API tokens")
        let now = clock.now
        return try await database.write { tx in
            guard ID.isValid(id, prefix: "tok"), var token = try IdentityStore.token(tx, id: id),
                token.userId == principal.userID || Role.userManagers.contains(principal.role)
            else { throw APIError.notFound("API token", id) }
            if token.userId != principal.userID {
                try principal.requireOrganizationWide(to: "revoke another user's API token")
            }
            if token.revokedAt == nil {
                try IdentityStore.revokeToken(tx, id: id, at: now)
                token.revokedAt = now
                try activity.record(tx, audit, action: "api_token.revoked", targetType: "api_token", targetID: id)
            }
            return token
        }
    }

    // MARK: sessions

    public struct SignedIn: Sendable {
        public var secret: String
        public var user: User
        public var expiresAt: Date
    }

    public func signIn(email: String, password: String, audit: AuditContext) async throws -> SignedIn {
        let address = email.trimmingCharacters(in: .whitespaces).lowercased()
        let found = try await database.read { tx in try IdentityStore.userWithPassword(tx, email: address) }
        var audit = audit
        audit.actorLabel = String(address.prefix(254))
        let attempt = try await reserveSignIn(audit)
        // An unknown email still costs a bcrypt check, so timing does not tell which emails exist.
        let hash: String
        if let found { hash = found.1 } else { hash = try await passwords.unknownUserHash() }
        let verified = try await passwords.verify(password, hash: hash)
        guard let (user, _) = found, verified else {
            try await activity.recordFailure(audit, action: "session.created", detail: "wrong email or password")
            throw APIError.unauthenticated("The email or password is wrong.")
        }
        recentSignIns.succeeded(attempt)
        audit.actorType = "user"
        audit.actorID = user.id
        let now = clock.now
        let secret = TokenFormat.generate(prefix: Self.sessionPrefix)
        let expiresAt = now.addingTimeInterval(Self.sessionLifetime)
        try await database.write { [audit] tx in
            let id = ID.make("ses", at: now)
            try IdentityStore.insertSession(tx, id: id, userID: user.id, secretHash: TokenFormat.hash(secret), createdAt: now, expiresAt: expiresAt)
            try activity.record(tx, audit, action: "session.created", targetType: "user", targetID: user.id)
        }
        return SignedIn(secret: secret, user: user, expiresAt: expiresAt)
    }

    /// Failed sign-ins allowed in `signInWindow` for one email from one address, and from one
    /// address for any emails. Per email *and* address, so that someone guessing elsewhere cannot
    /// lock a user out; per address, so that one source cannot spray guesses (each costs a bcrypt
    /// check) over many emails.
    static let signInFailuresPerEmail = 10
    static let signInFailuresPerAddress = 50
    static let signInWindow: TimeInterval = 15 * 60

    /// 429 with `Retry-After` once the failures in the window reach a limit; else the attempt is
    /// counted (`RecentSignIns`) until it succeeds. Checked before the password, so a throttled
    /// guess costs no bcrypt check and tells nothing. Failures are counted from the activity log
    /// (every process) and from this process's own attempts, which also holds those still under
    /// way, so a burst of parallel guesses cannot all pass before the first failure is written.
    private func reserveSignIn(_ audit: AuditContext) async throws -> RecentSignIns.Attempt? {
        guard let label = audit.actorLabel else { return nil }
        let now = clock.now
        let since = now.addingTimeInterval(-Self.signInWindow)
        let failures = try await activity.recentFailures(action: "session.created", actorLabel: label, ip: audit.ip, since: since)
        let pair = failures.filter { $0.actorLabel == label && $0.ip == audit.ip }.map(\.occurredAt)
        let address = audit.ip == nil ? [] : failures.filter { $0.ip == audit.ip }.map(\.occurredAt)
        let checks =
            [RecentSignIns.Check(key: "\(label) \(audit.ip ?? "-")", recorded: pair, limit: Self.signInFailuresPerEmail)]
            + (audit.ip.map { [RecentSignIns.Check(key: "address \($0)", recorded: address, limit: Self.signInFailuresPerAddress)] } ?? [])
        let outcome = recentSignIns.begin(checks, at: now, since: since)
        if case .allowed(let attempt) = outcome { return attempt }
        guard case .refused(let oldest) = outcome else { return nil }
        // When enough failures have left the window to allow one more attempt.
        let seconds = max(1, Int(oldest.addingTimeInterval(Self.signInWindow).timeIntervalSince(now).rounded(.up)))
        try await activity.recordFailure(audit, action: "session.throttled", detail: "too many failed sign-ins", flood: true)
        var error = APIError(
            .tooManyRequests,
            "too-many-attempts",
            "Too many attempts",
            detail: "Too many failed sign-ins from here; try again in \(seconds) seconds."
        )
        error.headers[.retryAfter] = String(seconds)
        throw error
    }

    /// Deletes sessions past their expiry; the housekeeping service calls this.
    @discardableResult
    public func deleteExpiredSessions() async throws -> Int {
        let now = clock.now
        return try await database.write { tx in try IdentityStore.deleteSessions(tx, expiredBefore: now) }
    }

    public func signOut(_ principal: Principal, audit: AuditContext) async throws {
        guard let sessionID = principal.sessionID else {
            throw APIError.validation("This request is authenticated by an API token, not a session; revoke the token with DELETE /v1/tokens/{id}.")
        }
        try await database.write { tx in
            try IdentityStore.deleteSession(tx, id: sessionID)
            try activity.record(tx, audit, action: "session.deleted", targetType: "user", targetID: principal.userID)
        }
    }
}

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
