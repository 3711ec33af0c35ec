import Foundation

/// Organization, workspaces, users and API tokens: validation, permission checks and rules.
public struct IdentityService: Sendable {
    let database: Database
    let clock: any WallClock
    let passwords: Passwords
    let activity: ActivityService
    let mail: MailService
    let publicURL: String
    /// This process's recent sign-in attempts, counted with the logged failures by the throttle.
    let recentSignIns = RecentSignIns()

    public init(
        database: Database,
        clock: any WallClock,
        passwords: Passwords,
        activity: ActivityService,
        mail: MailService,
        publicURL: String
    ) {
        self.database = database
        self.clock = clock
        self.passwords = passwords
        self.activity = activity
        self.mail = mail
        self.publicURL = publicURL
    }

    // MARK: first start

    public struct Bootstrap: Sendable {
        public var email: String
        public var password: String
        public var token: String
        public var workspace: Workspace
    }

    /// On a first start with no user: a live workspace, the owner and a token.
    /// Returns nil when a user exists already (or another process got there first).
    public func bootstrapIfEmpty(ownerEmail: String) async throws -> Bootstrap? {
        if try await database.read({ tx in try IdentityStore.userCount(tx) }) > 0 { return nil }
        let email = try Validate.email(ownerEmail, field: "owner email")
        let password = Passwords.generate()
        let hash = try await passwords.hash(password)
        let now = clock.now
        let token = TokenFormat.generate(prefix: TokenFormat.prefix(for: .live))
        let audit = AuditContext.system("first start")
        do {
            return try await database.write { tx in
                guard try IdentityStore.userCount(tx) == 0 else { return nil }
                let workspace = Workspace(id: ID.make("ws", at: now), name: "Default", mode: .live, createdAt: now, updatedAt: now)
                try IdentityStore.insert(tx, workspace)
                let owner = User(id: ID.make("usr", at: now), email: email, name: "Owner", role: .owner, createdAt: now, updatedAt: now)
                try IdentityStore.insert(tx, owner, passwordHash: hash)
                let record = tokenRecord(token, userID: owner.id, name: "First start", mode: .live, workspaces: nil, expiresAt: nil, now: now)
                try IdentityStore.insert(tx, record, secretHash: TokenFormat.hash(token))
                try activity.record(tx, audit, action: "user.created", targetType: "user", targetID: owner.id)
                return Bootstrap(email: email, password: password, token: token, workspace: workspace)
            }
        } catch StorageError.uniqueViolation {
            return nil
        }
    }

    // MARK: users

    public func createUser(_ input: CreateUserInput, by principal: Principal?, audit: AuditContext) async throws -> CreatedUser {
        if let principal {
            try principal.require(Role.userManagers, to: "create users")
            try principal.requireOrganizationWide(to: "create users")
            if input.role == .owner && principal.role != .owner {
                throw APIError.forbidden("Only an owner may create another owner.")
            }
        }
        let email = try Validate.email(input.email)
        let name = try Validate.name(input.name ?? email.split(separator: "@").first.map(String.init) ?? email)
        var generated: String?
        let password: String
        if let given = input.password {
            guard given.count >= Passwords.minimumLength else {
                throw APIError.validation("`password` must be at least \(Passwords.minimumLength) characters.", field: "password")
            }
            // bcrypt reads 72 bytes; a longer password would silently equal its first 72.
            guard given.utf8.count <= 72 else {
                throw APIError.validation("`password` must be at most 72 bytes (bcrypt reads no more).", field: "password")
            }
            password = given
        } else {
            password = Passwords.generate()
            generated = password
        }
        let hash = try await passwords.hash(password)
        let now = clock.now
        let user = User(id: ID.make("usr", at: now), email: email, name: name, role: input.role, createdAt: now, updatedAt: now)
        let signIn = publicURL
        do {
            try await database.write { tx in
                try IdentityStore.insert(tx, user, passwordHash: hash)
                try activity.record(
                    tx,
                    audit,
                    action: "user.created",
                    targetType: "user",
                    targetID: user.id,
                    detail: "role \(user.role.rawValue)"
                )
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
        return CreatedUser(user: user, password: generated)
    }

    public func listUsers(by principal: Principal, after: String?, limit: Int) async throws -> [User] {
        try principal.require(Role.readers, to: "list users")
        try principal.requireOrganizationWide(to: "list users")
        return try await database.read { tx in try IdentityStore.users(tx, after: after, limit: limit) }
    }

    public func user(id: String, by principal: Principal) async throws -> User {
        try principal.require(Role.readers, to: "read users")
        try principal.requireOrganizationWide(to: "read users")
        guard ID.isValid(id, prefix: "usr"), let user = try await database.read({ tx in try IdentityStore.user(tx, id: id) }) else {
            throw APIError.notFound("user", id)
        }
        return user
    }

    public func user(email: String) async throws -> User? {
        let email = email.lowercased()
        return try await database.read { tx in try IdentityStore.userWithPassword(tx, email: email)?.0 }
    }

    // MARK: workspaces

    /// Creates a workspace; with `idempotencyKey`, a retry within 24 hours answers the first
    /// answer and creates nothing. The answer is the workspace's JSON.
    public func createWorkspace(
        _ input: CreateWorkspaceInput,
        idempotencyKey: String? = nil,
        by principal: Principal,
        audit: AuditContext
    ) async throws -> (status: Int, body: String) {
        try principal.require(Role.userManagers, to: "create workspaces")
        if principal.tokenWorkspaces != nil {
            throw APIError.forbidden("A token limited to workspaces cannot create workspaces; use a token for all workspaces.")
        }
        if principal.tokenMode == .test && input.mode != .sandbox {
            throw APIError.forbidden("A test token (sy_test_…) can only create sandbox workspaces: send \"mode\": \"sandbox\".")
        }
        let name = try Validate.name(input.name)
        let now = clock.now
        let mode = input.mode ?? .live
        let fingerprint = Idempotency.fingerprint(name, mode.rawValue)
        let attempt = { @Sendable in
            try await self.database.write { tx in
                // Above workspaces: keys live under the organization, per caller.
                try Idempotency.once(
                    tx,
                    workspaceID: "organization",
                    scope: "workspaces:\(principal.actorID)",
                    key: idempotencyKey,
                    fingerprint: fingerprint,
                    now: now
                ) {
                    let workspace = Workspace(id: ID.make("ws", at: now), name: name, mode: mode, createdAt: now, updatedAt: now)
                    try IdentityStore.insert(tx, workspace)
                    try activity.record(
                        tx,
                        audit,
                        action: "workspace.created",
                        targetType: "workspace",
                        targetID: workspace.id,
                        workspaceID: workspace.id
                    )
                    return try JSONCoding.encodeText(workspace)
                }
            }
        }
        do {
            return try await attempt()
        } catch StorageError.uniqueViolation {
            // A concurrent twin with the same key won; its answer is stored now.
            return try await attempt()
        }
    }

    public func listWorkspaces(by principal: Principal, after: String?, limit: Int) async throws -> [Workspace] {
        try principal.require(Role.readers, to: "list workspaces")
        // Filtered in SQL, so a page is never cut short by workspaces the caller cannot see.
        let sandboxOnly = principal.tokenMode == .test
        let ids = principal.tokenWorkspaces
        return try await database.read { tx in
            try IdentityStore.workspaces(tx, after: after, limit: limit, sandboxOnly: sandboxOnly, ids: ids)
        }
    }

    /// The workspace, if it exists and the caller may reach it; features call this first.
    public func workspace(id: String, by principal: Principal) async throws -> Workspace {
        try principal.require(Role.readers, to: "read workspaces")
        guard ID.isValid(id, prefix: "ws"),
            let workspace = try await database.read({ tx in try IdentityStore.workspace(tx, id: id) })
        else { throw APIError.notFound("workspace", id) }
        try principal.requireAccess(to: workspace)
        return workspace
    }

    public func updateWorkspace(id: String, _ input: UpdateWorkspaceInput, by principal: Principal, audit: AuditContext) async throws -> Workspace {
        var workspace = try await self.workspace(id: id, by: principal)
        try principal.require(Role.userManagers, to: "change workspaces")
        if let mode = input.mode, mode != workspace.mode {
            throw APIError.validation("`mode` is fixed when a workspace is created; create a \(mode.rawValue) workspace instead.", field: "mode")
        }
        if let name = input.name { workspace.name = try Validate.name(name) }
        workspace.updatedAt = clock.now
        let updated = workspace
        try await database.write { tx in
            try IdentityStore.updateWorkspace(tx, updated)
            try activity.record(
                tx,
                audit,
                action: "workspace.updated",
                targetType: "workspace",
                targetID: updated.id,
                workspaceID: updated.id
            )
        }
        return updated
    }
}

extension IdentityService {
    public func organization(by principal: Principal) async throws -> Organization {
        try principal.require(Role.readers, to: "read the organization")
        guard let organization = try await database.read({ tx in try IdentityStore.organization(tx) }) else {
            throw APIError.notFound("organization", "-")
        }
        return organization
    }
}
