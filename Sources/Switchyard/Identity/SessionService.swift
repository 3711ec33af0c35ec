import Foundation

/// Console sign-in and sign-out, and the throttle on failed sign-ins.
public struct SessionService: Sendable {
    static let lifetime: TimeInterval = 14 * 24 * 3600

    let database: Database
    let clock: any WallClock
    let passwords: Passwords
    let activity: ActivityService
    /// This process's recent sign-in attempts, counted with the logged failures by the throttle.
    let recentSignIns = RecentSignIns()

    public struct SignedIn: Sendable {
        public var secret: String
        public var user: User
        public var expiresAt: Date
    }

    public func signIn(email: String, password: String, audit: AuditContext) async throws -> SignedIn {
        let address = email.trimmingCharacters(in: .whitespaces).lowercased()
        let found = try await database.read { tx in try UserStore.userWithPassword(tx, email: address) }
        var audit = audit
        audit.actorLabel = String(address.prefix(254))
        let attempt = try await reserveSignIn(audit)
        // An unknown email still costs a bcrypt check, so timing does not tell which emails exist.
        // An invited user (no password yet) costs the same check; a deactivated one gets the same
        // answer as a wrong password, so neither tells whether the email exists.
        let hash: String
        if let found, !found.1.isEmpty { hash = found.1 } else { hash = try await passwords.unknownUserHash() }
        let verified = try await passwords.verify(password, hash: hash)
        guard let (user, stored) = found, verified, !stored.isEmpty, user.status == .active else {
            let reason = UserLifecycle.signInRefusal(found?.0, verified: verified)
            try await activity.recordFailure(audit, action: "session.created", detail: reason)
            throw APIError.unauthenticated("The email or password is wrong.")
        }
        recentSignIns.succeeded(attempt)
        audit.actorType = "user"
        audit.actorID = user.id
        let now = clock.now
        let secret = TokenFormat.generate(prefix: SessionResolver.prefix)
        let expiresAt = now.addingTimeInterval(Self.lifetime)
        try await database.write { [audit] tx in
            let id = ID.make("ses", at: now)
            try SessionStore.insertSession(tx, id: id, userID: user.id, secretHash: TokenFormat.hash(secret), createdAt: now, expiresAt: expiresAt)
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
            .tooManyAttempts,
            detail: "Too many failed sign-ins from here; try again in \(seconds) seconds."
        )
        error.headers[.retryAfter] = String(seconds)
        throw error
    }

    /// Deletes sessions past their expiry; the housekeeping service calls this.
    @discardableResult
    public func deleteExpiredSessions() async throws -> Int {
        let now = clock.now
        return try await database.write { tx in try SessionStore.deleteSessions(tx, expiredBefore: now) }
    }

    public func signOut(_ principal: Principal, audit: AuditContext) async throws {
        guard let sessionID = principal.user?.sessionID else {
            throw APIError.validation("This request is authenticated by an API token, not a session; revoke the token with DELETE /v1/tokens/{id}.")
        }
        try await database.write { tx in
            try SessionStore.deleteSession(tx, id: sessionID)
            try activity.record(tx, principal.audit(from: audit), action: "session.deleted", targetType: "user", targetID: principal.user?.id)
        }
    }
}
