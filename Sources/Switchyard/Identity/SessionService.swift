import Foundation

/// Console sign-in and sign-out, and the throttle on failed sign-ins.
public struct SessionService: Sendable {
    static let lifetime: TimeInterval = 14 * 24 * 3600

    let database: Database
    let clock: any WallClock
    let passwords: Passwords
    let activity: ActivityService
    /// Failed console sign-ins, counted from the activity log and this process's attempts.
    let throttle: SignInThrottle

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
        let attempt = try await throttle.reserve(audit)
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
        throttle.succeeded(attempt)
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
