import Foundation

/// Passwords after the first: a user changes their own (old password required), and a forgotten
/// one is reset from a mailed link valid one hour.
extension UserService {
    /// Wrong old passwords allowed per user in `passwordCheckWindow` (from any address): the
    /// caller holds a credential already, so the limit guards the password, not the account.
    static let oldPasswordFailuresPerUser = 10
    static let passwordCheckWindow: TimeInterval = 15 * 60
    /// Reset requests allowed from one address in `resetRequestWindow`, whatever the emails, and
    /// reset mails to one user per hour: enough for a lost mail, too few to flood an inbox.
    static let resetRequestsPerAddress = 20
    static let resetRequestWindow: TimeInterval = 15 * 60
    static let resetMailsPerUserPerHour = 3

    /// `POST /v1/users/me/password`: the user's other sessions (console and portal) end; the
    /// session making the change stays, and API tokens are untouched.
    public func changePassword(_ input: ChangePasswordInput, by principal: Principal, audit: AuditContext) async throws -> User {
        let caller = try principal.requireUser(to: "change a password")
        try principal.requireOrganizationWide(to: "change your password")
        try UserLifecycle.checkNewPassword(input.newPassword, field: "new_password")
        guard input.newPassword != input.oldPassword else {
            throw APIError.validation("`new_password` must differ from the old password.", field: "new_password")
        }
        let audit = principal.audit(from: audit)
        let attempt = try await reserveOldPasswordCheck(caller.user, audit: audit)
        let stored = try await database.read { tx in try UserStore.passwordHash(tx, id: caller.id) } ?? ""
        guard !stored.isEmpty, try await passwords.verify(input.oldPassword, hash: stored) else {
            try await activity.recordFailure(audit, action: "user.password_changed", detail: "wrong old password")
            throw APIError.validation("`old_password` is not your current password.", field: "old_password")
        }
        recentPasswordChecks.succeeded(attempt)
        let hash = try await passwords.hash(input.newPassword)
        let now = clock.now
        return try await database.write { tx in
            guard var user = try UserStore.lockedUser(tx, id: caller.id), user.status == .active else {
                throw UserStore.deactivatedRefusal(caller.user)
            }
            try UserStore.setPasswordHash(tx, id: user.id, hash: hash, at: now)
            let ended = try SessionStore.deleteSessions(tx, userID: user.id, except: caller.sessionID)
            try Invites.revoke(tx, kind: .passwordReset, userID: user.id, now: now)
            user.updatedAt = now
            try record(tx, audit, "user.password_changed", about: user, detail: "\(ended) other session\(ended == 1 ? "" : "s") ended")
            return user
        }
    }

    /// 429 once the user's wrong old passwords in the window reach the limit; counted from the
    /// activity log (every process) and this process's checks under way, as sign-ins are.
    private func reserveOldPasswordCheck(_ user: User, audit: AuditContext) async throws -> RecentSignIns.Attempt? {
        let now = clock.now
        let since = now.addingTimeInterval(-Self.passwordCheckWindow)
        let failures = try await activity.recentFailures(action: "user.password_changed", actorLabel: user.email, ip: nil, since: since)
        let recorded = failures.filter { $0.actorLabel == user.email }.map(\.occurredAt)
        let check = RecentSignIns.Check(key: "password \(user.id)", recorded: recorded, limit: Self.oldPasswordFailuresPerUser)
        switch recentPasswordChecks.begin([check], at: now, since: since) {
        case .allowed(let attempt): return attempt
        case .refused(let oldest):
            let seconds = max(1, Int(oldest.addingTimeInterval(Self.passwordCheckWindow).timeIntervalSince(now).rounded(.up)))
            var error = APIError(.tooManyAttempts, detail: "Too many wrong old passwords; try again in \(seconds) seconds.")
            error.headers[.retryAfter] = String(seconds)
            throw error
        }
    }

    /// `POST /v1/password-resets`: mails a reset link when an active user has the email; the
    /// answer is the same either way, so it tells nobody which emails exist. Every request is in
    /// the activity log, what happened in its detail.
    public func requestPasswordReset(_ input: PasswordResetRequestInput, audit: AuditContext) async throws {
        let email = try Validate.email(input.email)
        let now = clock.now
        let since = now.addingTimeInterval(-Self.resetRequestWindow)
        var audit = audit
        audit.actorLabel = email
        let refusal: APIError? = try await database.write { [audit] tx in
            if let ip = audit.ip {
                let recent = try UserLifecycleStore.recentEntries(tx, action: "user.password_reset_requested", ip: ip, since: since)
                if recent.count >= Self.resetRequestsPerAddress, let oldest = recent.first {
                    let seconds = max(1, Int(oldest.addingTimeInterval(Self.resetRequestWindow).timeIntervalSince(now).rounded(.up)))
                    var error = APIError(.tooManyAttempts, detail: "Too many password resets asked from here; try again in \(seconds) seconds.")
                    error.headers[.retryAfter] = String(seconds)
                    return error
                }
            }
            let user = try UserStore.userWithPassword(tx, email: email)?.0
            var outcome = ActivityEntry.Outcome.failure
            let detail: String
            switch user?.status {
            case nil: detail = "no user has this email"
            case .invited?: detail = "the user has not accepted their invite yet"
            case .deactivated?: detail = "the user is deactivated"
            case .active?:
                guard let user else { return nil }
                let sent = try UserLifecycleStore.invitesIssued(tx, kind: .passwordReset, userID: user.id, since: now.addingTimeInterval(-3600))
                if sent >= Self.resetMailsPerUserPerHour {
                    detail = "no mail: \(sent) reset mails in the last hour"
                } else {
                    let (invite, token) = try Invites.issue(tx, kind: .passwordReset, email: email, userID: user.id, now: now)
                    let mail = UserLifecycle.resetMail(
                        name: user.name,
                        link: UserLifecycle.link(publicURL, "reset-password", token),
                        expiresAt: invite.expiresAt
                    )
                    _ = try self.mail.enqueue(tx, to: email, subject: mail.subject, body: mail.body)
                    outcome = .success
                    detail = "reset link mailed, valid until \(RFC3339.format(invite.expiresAt))"
                }
            }
            try activity.record(
                tx,
                audit,
                action: "user.password_reset_requested",
                targetType: "user",
                targetID: user?.id,
                targetLabel: email,
                outcome: outcome,
                detail: detail
            )
            return nil
        }
        if let refusal {
            try await activity.recordFailure(audit, action: "user.password_reset_throttled", detail: "too many resets asked", flood: true)
            throw refusal
        }
    }

    /// `POST /v1/password-resets/{token}`: sets the new password; every session of the user ends.
    public func resetPassword(token: String, _ input: PasswordResetInput, audit: AuditContext) async throws -> User {
        try UserLifecycle.checkNewPassword(input.password)
        let now = clock.now
        // The link is checked before the bcrypt hash, so junk tokens cost no hashing.
        _ = try await database.read { tx in try Invites.open(tx, token: token, kinds: [.passwordReset], now: now, consume: false) }
        let hash = try await passwords.hash(input.password)
        return try await database.write { tx in
            let invite = try Invites.open(tx, token: token, kinds: [.passwordReset], now: now, consume: true)
            guard let userID = invite.userID, var user = try UserStore.lockedUser(tx, id: userID) else {
                throw APIError(.linkExpired, detail: "This link no longer works; ask for a new one.")
            }
            guard user.status == .active else {
                throw APIError(.linkExpired, detail: "This link no longer works: the account is \(user.status.rawValue).")
            }
            try UserStore.setPasswordHash(tx, id: user.id, hash: hash, at: now)
            let ended = try SessionStore.deleteSessions(tx, userID: user.id)
            try Invites.revoke(tx, kind: .passwordReset, userID: user.id, now: now)
            user.updatedAt = now
            try record(tx, audit.byUser(user), "user.password_reset", about: user, detail: "\(ended) session\(ended == 1 ? "" : "s") ended")
            return user
        }
    }
}

/// The reads the lifecycle's throttles make.
enum UserLifecycleStore {
    /// When entries of `action` from `ip` were written since `since`, oldest first: the activity
    /// log is shared by every process, so the count is too.
    static func recentEntries(_ tx: SQLTx, action: String, ip: String, since: Date) throws -> [Date] {
        try tx.query(
            "SELECT occurred_at FROM activity_entries WHERE action = ? AND id >= ? AND occurred_at >= ? AND ip = ? ORDER BY id",
            action,
            ID.floor("act", at: since),
            since,
            ip
        ).map { try $0.date("occurred_at") }
    }

    /// Links of `kind` issued to the user since `since`.
    static func invitesIssued(_ tx: SQLTx, kind: Invites.Kind, userID: String, since: Date) throws -> Int64 {
        try tx.queryOne(
            "SELECT COUNT(*) AS n FROM invites WHERE user_id = ? AND kind = ? AND created_at >= ?",
            userID,
            kind.rawValue,
            since
        )?.int("n") ?? 0
    }
}
