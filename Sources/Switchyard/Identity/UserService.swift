import Foundation

/// Users of the organization, and the first start that makes its owner.
public struct UserService: Sendable {
    let database: Database
    let clock: any WallClock
    let passwords: Passwords
    let activity: ActivityService
    let mail: MailService
    let publicURL: String
    /// This process's checks of old passwords under way, counted with the logged failures.
    let recentPasswordChecks = RecentSignIns()

    public struct Bootstrap: Sendable {
        public var email: String
        public var password: String
        public var token: String
        public var workspace: Workspace
    }

    /// On a first start with no user: a live workspace, the owner and a token.
    /// Returns nil when a user exists already (or another process got there first).
    public func bootstrapIfEmpty(ownerEmail: String) async throws -> Bootstrap? {
        if try await database.read({ tx in try UserStore.userCount(tx) }) > 0 { return nil }
        let email = try Validate.email(ownerEmail, field: "owner email")
        let password = Passwords.generate()
        let hash = try await passwords.hash(password)
        let now = clock.now
        let token = TokenFormat.generate(prefix: TokenFormat.prefix(for: .live))
        let audit = AuditContext.system("first start")
        do {
            return try await database.write { tx in
                guard try UserStore.userCount(tx) == 0 else { return nil }
                let workspace = Workspace(id: ID.make("ws", at: now), name: "Default", mode: .live, createdAt: now, updatedAt: now)
                try WorkspaceStore.insert(tx, workspace)
                let owner = User(id: ID.make("usr", at: now), email: email, name: "Owner", role: .owner, createdAt: now, updatedAt: now)
                try UserStore.insert(tx, owner, passwordHash: hash)
                let record = TokenService.makeRecord(
                    token,
                    userID: owner.id,
                    name: "First start",
                    mode: .live,
                    workspaces: nil,
                    expiresAt: nil,
                    now: now
                )
                try TokenStore.insert(tx, record, secretHash: TokenFormat.hash(token))
                try activity.record(tx, audit, action: "user.created", targetType: "user", targetID: owner.id, targetLabel: owner.email)
                return Bootstrap(email: email, password: password, token: token, workspace: workspace)
            }
        } catch StorageError.uniqueViolation {
            return nil
        }
    }

    public func create(_ input: CreateUserInput, by principal: Principal?, audit: AuditContext) async throws -> CreatedUser {
        if let principal {
            try principal.require(Role.userManagers, to: "create users")
            try principal.requireOrganizationWide(to: "create users")
            if input.role == .owner && principal.user?.role != .owner {
                throw APIError.forbidden("Only an owner may create another owner.")
            }
        }
        let email = try Validate.email(input.email)
        let name = try Validate.name(input.name ?? email.split(separator: "@").first.map(String.init) ?? email)
        let invite = input.invite ?? false
        var generated: String?
        let hash: String
        if invite {
            if input.password != nil {
                throw APIError.validation("Leave out `password` with `invite`: the invited user chooses their own.", field: "password")
            }
            // '' matches no password: nobody signs in as this user until they accept the invite.
            hash = ""
        } else {
            let password: String
            if let given = input.password {
                try UserLifecycle.checkNewPassword(given)
                password = given
            } else {
                password = Passwords.generate()
                generated = password
            }
            hash = try await passwords.hash(password)
        }
        let now = clock.now
        var user = User(id: ID.make("usr", at: now), email: email, name: name, role: input.role, createdAt: now, updatedAt: now)
        if invite { user.status = .invited }
        let signIn = publicURL
        do {
            try await database.write { [user] tx in
                try UserStore.insert(tx, user, passwordHash: hash)
                let audit = principal?.audit(from: audit) ?? audit
                try activity.record(
                    tx,
                    audit,
                    action: "user.created",
                    targetType: "user",
                    targetID: user.id,
                    targetLabel: user.email,
                    detail: "role \(user.role.rawValue)\(invite ? ", invited" : "")"
                )
                if invite {
                    let sent = try sendInvite(tx, to: user, now: now)
                    try activity.record(
                        tx,
                        audit,
                        action: "user.invited",
                        targetType: "user",
                        targetID: user.id,
                        targetLabel: user.email,
                        detail: "valid until \(RFC3339.format(sent.expiresAt))"
                    )
                    return
                }
                try mail.enqueue(
                    tx,
                    to: email,
                    subject: "Your Switchyard account",
                    body: """
                        Hello \(name),

                        An account with the role \(user.role.rawValue) was created for you on Switchyard.
                        Sign in at \(signIn) with this email address and the password you were given.
                        """
                )
            }
        } catch StorageError.uniqueViolation {
            throw APIError.conflict("A user with the email \(email) exists already.", field: "email")
        }
        return CreatedUser(user: user, password: generated, invited: invite ? true : nil)
    }

    public func list(by principal: Principal, after: String?, limit: Int) async throws -> [User] {
        try principal.require(Role.readers, to: "list users")
        try principal.requireOrganizationWide(to: "list users")
        return try await database.read { tx in try UserStore.users(tx, after: after, limit: limit) }
    }

    public func user(id: String, by principal: Principal) async throws -> User {
        try principal.require(Role.readers, to: "read users")
        try principal.requireOrganizationWide(to: "read users")
        guard ID.isValid(id, prefix: "usr"), let user = try await database.read({ tx in try UserStore.user(tx, id: id) }) else {
            throw APIError.notFound("user", id)
        }
        return user
    }

    public func user(email: String) async throws -> User? {
        let email = email.lowercased()
        return try await database.read { tx in try UserStore.userWithPassword(tx, email: email)?.0 }
    }

    /// Who a command-line change is recorded as: the user with `email`, or the first owner. Only
    /// an active owner, admin or integration admin will do.
    public func commandLineActor(email: String?) async throws -> User {
        var found: User?
        if let email {
            found = try await user(email: email)
        } else if let first = try await database.read({ tx in try UserStore.emails(tx, roles: [.owner]).first }) {
            found = try await user(email: first)
        }
        guard let user = found else {
            throw APIError.notFound(detail: email.map { "No user has the email \($0)." } ?? "The installation has no owner yet.")
        }
        guard user.status != .deactivated else { throw APIError.forbidden("\(user.email) is deactivated.") }
        guard Role.integrationManagers.contains(user.role) else {
            throw APIError.forbidden("\(user.email) is a \(user.role.rawValue); an owner, admin or integration admin is needed.")
        }
        return user
    }

    /// The addresses of the installation's owners and admins, in the caller's transaction: who is
    /// told when something breaks (a webhook endpoint disabled).
    public func managerEmails(_ tx: SQLTx) throws -> [String] {
        try UserStore.emails(tx, roles: Role.userManagers)
    }
}
