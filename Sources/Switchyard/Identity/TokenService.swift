import Foundation

/// Personal API tokens: created (their secret shown once), listed, revoked.
public struct TokenService: Sendable {
    let database: Database
    let clock: any WallClock
    let activity: ActivityService

    static func makeRecord(
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
    public func create(
        _ input: CreateTokenInput,
        for userID: String,
        by principal: Principal?,
        audit: AuditContext
    ) async throws -> CreatedAPIToken {
        if let principal {
            try principal.require(Role.readers, to: "create API tokens")
        }
        let name = try Validate.name(input.name)
        let mode = input.mode ?? (principal?.mode ?? .live)
        if principal?.mode == .test && mode == .live {
            throw APIError.forbidden("A test token cannot create a live token.")
        }
        let now = clock.now
        if let expiresAt = input.expiresAt, expiresAt <= now {
            throw APIError.validation("`expires_at` must be in the future.", field: "expires_at")
        }
        let expiry = try Self.expiry(input.expiresAt, by: principal)
        let scope = try Self.scope(input.workspaces, by: principal)
        let token = TokenFormat.generate(prefix: TokenFormat.prefix(for: mode))
        let record = Self.makeRecord(token, userID: userID, name: name, mode: mode, workspaces: scope, expiresAt: expiry, now: now)
        try await database.write { tx in
            if let scope {
                let found = try WorkspaceStore.workspaces(tx, ids: scope)
                if let missing = scope.first(where: { id in !found.contains { $0.id == id } }) {
                    throw APIError.validation("Workspace \(missing) does not exist.", field: "workspaces")
                }
                if mode == .test, let live = found.first(where: { $0.mode == .live }) {
                    throw APIError.validation("A test token reaches only sandbox workspaces; \(live.id) is live.", field: "workspaces")
                }
            }
            try TokenStore.insert(tx, record, secretHash: TokenFormat.hash(token))
            try activity.record(
                tx,
                principal?.audit(from: audit) ?? audit,
                action: "api_token.created",
                targetType: "api_token",
                targetID: record.id,
                detail: "name \(name), mode \(mode.rawValue)"
            )
        }
        return CreatedAPIToken(token: token, apiToken: record)
    }

    /// A token never mints one that outlives it: a leaked short-lived token stays short-lived.
    private static func expiry(_ wanted: Date?, by principal: Principal?) throws -> Date? {
        guard let parent = principal?.user?.token?.expiresAt else { return wanted }
        if let wanted, wanted > parent {
            throw APIError.validation(
                "`expires_at` must not be later than this token's own expiry, \(RFC3339.format(parent)).",
                field: "expires_at"
            )
        }
        return wanted ?? parent
    }

    /// The workspaces a new token reaches (nil: all); a scoped token may only hand out what it has.
    private static func scope(_ wanted: [String]?, by principal: Principal?) throws -> [String]? {
        var scope = wanted.map { Array(Set($0)).sorted() }
        if let limits = principal?.workspaceLimit {
            let requested = scope ?? limits
            guard Set(requested).isSubset(of: limits) else {
                throw APIError.forbidden("A token limited to some workspaces can only create tokens for those workspaces.")
            }
            scope = requested
        }
        if scope?.isEmpty == true {
            throw APIError.validation("`workspaces` must list at least one workspace id, or be left out for all.", field: "workspaces")
        }
        return scope
    }

    /// The caller's tokens; owners and admins may ask for everyone's with `all`.
    public func list(by principal: Principal, all: Bool, after: String?, limit: Int) async throws -> [APIToken] {
        try principal.require(Role.readers, to: "list API tokens")
        let caller = try principal.requireUser(to: "list API tokens")
        if all {
            try principal.require(Role.userManagers, to: "list every user's API tokens")
            try principal.requireOrganizationWide(to: "list every user's API tokens")
        }
        let userID = all ? nil : caller.id
        return try await database.read { tx in try TokenStore.tokens(tx, userID: userID, after: after, limit: limit) }
    }

    /// Revokes a token; the next request that uses it is refused. Owners and admins may revoke
    /// anyone's token, others only their own.
    public func revoke(id: String, by principal: Principal, audit: AuditContext) async throws -> APIToken {
        try principal.require(Role.readers, to: "revoke API tokens")
        let caller = try principal.requireUser(to: "revoke API tokens")
        let now = clock.now
        return try await database.write { tx in
            guard ID.isValid(id, prefix: "tok"), var token = try TokenStore.token(tx, id: id),
                token.userId == caller.id || Role.userManagers.contains(caller.role)
            else { throw APIError.notFound("API token", id) }
            if token.userId != caller.id {
                try principal.requireOrganizationWide(to: "revoke another user's API token")
            }
            if token.revokedAt == nil {
                try TokenStore.revokeToken(tx, id: id, at: now)
                token.revokedAt = now
                try activity.record(tx, principal.audit(from: audit), action: "api_token.revoked", targetType: "api_token", targetID: id)
            }
            return token
        }
    }
}
