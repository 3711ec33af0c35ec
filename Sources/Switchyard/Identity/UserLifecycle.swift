import Foundation

/// What the user lifecycle shares: the rules for new passwords, the links it mails, and how a
/// refused sign-in is told apart in the activity log (never in the answer).
enum UserLifecycle {
    /// 10 characters at least; bcrypt reads 72 bytes, so a longer password would silently equal
    /// its first 72.
    static func checkNewPassword(_ password: String, field: String = "password") throws {
        guard password.count >= Passwords.minimumLength else {
            throw APIError.validation("`\(field)` must be at least \(Passwords.minimumLength) characters.", field: field)
        }
        guard password.utf8.count <= 72 else {
            throw APIError.validation("`\(field)` must be at most 72 bytes (bcrypt reads no more).", field: field)
        }
    }

    /// `{public-url}/console/{page}/{token}`.
    static func link(_ publicURL: String, _ page: String, _ token: String) -> String {
        var base = publicURL
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/console/\(page)/\(token)"
    }

    /// The activity detail of a refused sign-in: the answer is the same for all of these.
    static func signInRefusal(_ user: User?, verified: Bool) -> String {
        switch user?.status {
        case .invited?: "wrong email or password (invited, no password set yet)"
        case .deactivated?: verified ? "user deactivated" : "wrong email or password (user deactivated)"
        default: "wrong email or password"
        }
    }

    static func inviteMail(name: String, role: Role, link: String, expiresAt: Date) -> (subject: String, body: String) {
        (
            "You are invited to Switchyard",
            """
            Hello \(name),

            You were invited to Switchyard with the role \(role.rawValue).
            Choose your password here to activate your account:

            \(link)

            The link works once, until \(RFC3339.format(expiresAt)).
            """
        )
    }

    static func resetMail(name: String, link: String, expiresAt: Date) -> (subject: String, body: String) {
        (
            "Reset your Switchyard password",
            """
            Hello \(name),

            Someone asked to reset the password of your Switchyard account. To choose a new one, open:

            \(link)

            The link works once, until \(RFC3339.format(expiresAt)). Setting a new password signs you
            out everywhere. If you did not ask for this, ignore this mail: your password stays as it is.
            """
        )
    }
}

/// Changing users: invites (and accepting them), name and role, deactivation.
extension UserService {
    /// An activity entry about `user`, named by their email as it is now.
    func record(_ tx: SQLTx, _ actor: AuditContext, _ action: String, about user: User, detail: String? = nil) throws {
        try activity.record(tx, actor, action: action, targetType: "user", targetID: user.id, targetLabel: user.email, detail: detail)
    }

    /// Mails `user` a new invite link in the caller's transaction; older links stop working.
    func sendInvite(_ tx: SQLTx, to user: User, now: Date) throws -> Invites.Invite {
        let (invite, token) = try Invites.issue(tx, kind: .user, email: user.email, userID: user.id, now: now)
        let mail = UserLifecycle.inviteMail(
            name: user.name,
            role: user.role,
            link: UserLifecycle.link(publicURL, "invite", token),
            expiresAt: invite.expiresAt
        )
        _ = try self.mail.enqueue(tx, to: user.email, subject: mail.subject, body: mail.body)
        return invite
    }

    /// `POST /v1/users/{id}/invite`: a new link for a user who has not set a password yet.
    public func resendInvite(id: String, by principal: Principal, audit: AuditContext) async throws -> User {
        try principal.require(Role.userManagers, to: "invite users")
        try principal.requireOrganizationWide(to: "invite users")
        let now = clock.now
        return try await database.write { tx in
            let user = try Self.target(tx, id: id)
            if user.role == .owner && principal.user?.role != .owner {
                throw APIError.forbidden("Only an owner may invite an owner.")
            }
            switch user.status {
            case .active:
                throw APIError.conflict(
                    "\(user.email) has set a password already; they can reset a forgotten one with POST /v1/password-resets."
                )
            case .deactivated:
                throw APIError.conflict("\(user.email) is deactivated; reactivate them first with POST /v1/users/\(user.id)/reactivate.")
            case .invited:
                break
            }
            let invite = try sendInvite(tx, to: user, now: now)
            try record(
                tx,
                principal.audit(from: audit),
                "user.invited",
                about: user,
                detail: "invite sent again, valid until \(RFC3339.format(invite.expiresAt))"
            )
            return user
        }
    }

    /// `POST /v1/invites/{token}/accept`: the invited user sets their first password (and name).
    public func acceptInvite(token: String, _ input: AcceptInviteInput, audit: AuditContext) async throws -> User {
        try UserLifecycle.checkNewPassword(input.password)
        let name = try input.name.map { try Validate.name($0) }
        let now = clock.now
        // The link is checked before the bcrypt hash, so junk tokens cost no hashing.
        _ = try await database.read { tx in try Invites.open(tx, token: token, kinds: [.user], now: now, consume: false) }
        let hash = try await passwords.hash(input.password)
        return try await database.write { tx in
            let invite = try Invites.open(tx, token: token, kinds: [.user], now: now, consume: true)
            guard let userID = invite.userID, var user = try UserStore.lockedUser(tx, id: userID), user.status == .invited else {
                throw APIError(.linkExpired, detail: "This invite was accepted already; sign in, or reset a forgotten password.")
            }
            user.name = name ?? user.name
            user.updatedAt = now
            user.status = .active
            try UserStore.update(tx, id: user.id, name: user.name, role: user.role, at: now)
            try UserStore.setPasswordHash(tx, id: user.id, hash: hash, at: now)
            try record(tx, audit.byUser(user), "user.password_changed", about: user, detail: "first password set from the invite")
            return user
        }
    }

    /// `PATCH /v1/users/{id}`: anyone renames themselves; owners and admins rename others and
    /// change roles; only owners make or unmake owners; the last active owner stays one.
    public func update(id: String, _ input: UpdateUserInput, by principal: Principal, audit: AuditContext) async throws -> User {
        try principal.require(Role.readers, to: "change users")
        let caller = try principal.requireUser(to: "change users")
        guard input.name != nil || input.role != nil else {
            throw APIError.validation("Send `name`, `role` or both.")
        }
        let name = try input.name.map { try Validate.name($0) }
        let now = clock.now
        return try await database.write { tx in
            let owners = try UserStore.lockActiveOwners(tx)
            var user = try Self.target(tx, id: id)
            let changesRole = input.role.map { $0 != user.role } ?? false
            if user.id != caller.id || changesRole {
                try principal.require(Role.userManagers, to: user.id == caller.id ? "change their own role" : "change other users")
                try principal.requireOrganizationWide(to: "change users")
            }
            var changes: [String] = []
            if let name, name != user.name {
                changes.append("name \(user.name) → \(name)")
                user.name = name
            }
            if let role = input.role, role != user.role {
                if (role == .owner || user.role == .owner) && caller.role != .owner {
                    throw APIError.forbidden("Only an owner may make or unmake owners.")
                }
                if user.role == .owner && owners == [user.id] {
                    throw APIError.conflict(
                        "\(user.email) is the last active owner; make another user an owner before changing this one's role.",
                        field: "role"
                    )
                }
                changes.append("role \(user.role.rawValue) → \(role.rawValue)")
                user.role = role
            }
            guard !changes.isEmpty else { return user }
            user.updatedAt = now
            try UserStore.update(tx, id: user.id, name: user.name, role: user.role, at: now)
            try record(tx, principal.audit(from: audit), "user.updated", about: user, detail: changes.joined(separator: ", "))
            return user
        }
    }

    /// `POST /v1/users/{id}/deactivate`: every session ends now and every token is refused from the
    /// next request on; open invite and reset links stop working.
    public func deactivate(id: String, by principal: Principal, audit: AuditContext) async throws -> User {
        try principal.require(Role.userManagers, to: "deactivate users")
        try principal.requireOrganizationWide(to: "deactivate users")
        let caller = try principal.requireUser(to: "deactivate users")
        guard id != caller.id else {
            throw APIError.forbidden("You cannot deactivate yourself; ask another owner or admin.")
        }
        let now = clock.now
        return try await database.write { tx in
            let owners = try UserStore.lockActiveOwners(tx)
            var user = try Self.target(tx, id: id)
            if user.role == .owner && caller.role != .owner {
                throw APIError.forbidden("Only an owner may deactivate an owner.")
            }
            if user.status == .deactivated { return user }
            if owners == [user.id] {
                throw APIError.conflict("\(user.email) is the last active owner and cannot be deactivated; make another user an owner first.")
            }
            try UserStore.setDeactivated(tx, id: user.id, at: now, now: now)
            let ended = try SessionStore.deleteSessions(tx, userID: user.id)
            try Invites.revoke(tx, kind: .user, userID: user.id, now: now)
            try Invites.revoke(tx, kind: .passwordReset, userID: user.id, now: now)
            user.status = .deactivated
            user.deactivatedAt = now
            user.updatedAt = now
            try record(tx, principal.audit(from: audit), "user.deactivated", about: user, detail: "\(ended) session\(ended == 1 ? "" : "s") ended")
            return user
        }
    }

    /// `POST /v1/users/{id}/reactivate`: the user signs in again; their unrevoked API tokens work
    /// again. An invited user is invited again (send a new link: the old one was revoked).
    public func reactivate(id: String, by principal: Principal, audit: AuditContext) async throws -> User {
        try principal.require(Role.userManagers, to: "reactivate users")
        try principal.requireOrganizationWide(to: "reactivate users")
        let caller = try principal.requireUser(to: "reactivate users")
        let now = clock.now
        return try await database.write { tx in
            let current = try Self.target(tx, id: id)
            if current.role == .owner && caller.role != .owner {
                throw APIError.forbidden("Only an owner may reactivate an owner.")
            }
            guard current.status == .deactivated else { return current }
            try UserStore.setDeactivated(tx, id: id, at: nil, now: now)
            let user = try UserStore.user(tx, id: id) ?? current
            try record(tx, principal.audit(from: audit), "user.reactivated", about: user)
            return user
        }
    }

    /// The user `id` names, locked for the change; 404 for a malformed or unknown id.
    static func target(_ tx: SQLTx, id: String) throws -> User {
        guard ID.isValid(id, prefix: "usr"), let user = try UserStore.lockedUser(tx, id: id) else {
            throw APIError.notFound("user", id)
        }
        return user
    }
}
