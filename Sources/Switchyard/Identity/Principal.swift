import Foundation

/// Who is calling, as the `Authenticator` resolved them: a user (with a personal API token or a
/// console session) or an app (its access token; the apps issue adds the resolver). Activity
/// entries, `created_by` and permission checks all know which.
public enum Principal: Sendable {
    case user(UserPrincipal)
    case app(AppPrincipal)

    /// A user signed in to the console: for tests and the command line, which act as someone.
    public static func session(_ user: User, id: String = "") -> Principal {
        .user(UserPrincipal(user: user, credential: .session(id: id)))
    }

    /// The app's id, nil for a user.
    public var appID: String? {
        guard case .app(let app) = self else { return nil }
        return app.id
    }

    /// The user behind the call, nil for an app.
    public var user: UserPrincipal? {
        guard case .user(let user) = self else { return nil }
        return user
    }

    /// `api_token`, `user` (a console session) or `app`: the actor type of activity entries and
    /// of a record's `created_by`.
    public var actorType: String {
        switch self {
        case .user(let user): user.token == nil ? "user" : "api_token"
        case .app: "app"
        }
    }

    public var actorID: String {
        switch self {
        case .user(let user): user.token?.id ?? user.user.id
        case .app(let app): app.id
        }
    }

    /// How people recognise the actor in the activity log: an email or an app's name.
    public var label: String {
        switch self {
        case .user(let user): user.user.email
        case .app(let app): app.name
        }
    }

    /// `test` credentials reach only sandbox workspaces.
    public var mode: TokenMode {
        switch self {
        case .user(let user): user.token?.mode ?? .live
        case .app(let app): app.mode
        }
    }

    /// The workspaces the credential may reach; nil reaches every workspace (of its mode).
    public var workspaceLimit: [String]? {
        switch self {
        case .user(let user): user.token?.workspaces
        case .app(let app): app.workspaces
        }
    }

    /// 403 unless the caller is a user with one of `roles`. Apps have no role: what they may do is
    /// their permissions' business, which no route before the apps issue asks about.
    public func require(_ roles: Set<Role>, to action: String) throws {
        guard case .user(let caller) = self else {
            throw APIError.forbidden("An app cannot \(action); only users can.")
        }
        guard roles.contains(caller.user.role) else {
            let names = Role.allCases.filter(roles.contains).map(\.rawValue).joined(separator: ", ")
            throw APIError.forbidden("Only \(names) may \(action); you are \(caller.user.role.rawValue).")
        }
    }

    /// Users need one of `roles`; an app needs the permission `permission` (`work_order:read`,
    /// `events:read`…), which the 403 names.
    public func require(_ roles: Set<Role>, or permission: String, to action: String) throws {
        switch self {
        case .user: try require(roles, to: action)
        case .app(let app):
            guard app.permissions.contains(permission) else {
                throw APIError.forbidden("This app may not \(action): it lacks the permission `\(permission)`.")
            }
        }
    }

    /// Users who read the platform's data (not developers); apps pass, each action then asking
    /// for its own permission.
    public func requireReader(to action: String) throws {
        if case .user = self { try require(Role.readers, to: action) }
    }

    /// The user behind the call, or 403 for an app: for what only people do (their own tokens,
    /// signing out).
    public func requireUser(to action: String) throws -> UserPrincipal {
        guard case .user(let user) = self else { throw APIError.forbidden("An app cannot \(action); only users can.") }
        return user
    }

    /// 403 for a test credential or one limited to workspaces: what reaches the whole
    /// organization (users, the activity log, the outbox) needs an unrestricted live credential.
    public func requireOrganizationWide(to action: String) throws {
        if case .app = self { throw APIError.forbidden("An app cannot \(action); only users can.") }
        if mode == .test {
            throw APIError.forbidden("A test token (sy_test_…) cannot \(action); use a live token.")
        }
        if workspaceLimit != nil {
            throw APIError.forbidden("A token limited to workspaces cannot \(action); use a token for all workspaces.")
        }
    }

    /// 403 when a scoped or test credential is used on a workspace it may not reach.
    public func requireAccess(to workspace: Workspace) throws {
        try requireAccess(to: workspace.id, mode: workspace.mode)
    }

    public func requireAccess(to workspaceID: String, mode workspaceMode: WorkspaceMode) throws {
        if case .app(let app) = self {
            if app.mode == .test && workspaceMode == .live {
                throw APIError.forbidden("A test app reaches only sandbox workspaces; \(workspaceID) is live.")
            }
            if let allowed = app.workspaces, !allowed.contains(workspaceID) {
                throw APIError.forbidden("The app \(app.name) is not granted the workspace \(workspaceID).")
            }
            return
        }
        if mode == .test && workspaceMode == .live {
            throw APIError.forbidden("A test token (sy_test_…) reaches only sandbox workspaces; \(workspaceID) is live. Use a live token.")
        }
        if let allowed = workspaceLimit, !allowed.contains(workspaceID) {
            throw APIError.forbidden("This API token is limited to other workspaces than \(workspaceID).")
        }
    }

    /// `audit` with this principal as the actor.
    public func audit(from audit: AuditContext) -> AuditContext {
        var audit = audit
        audit.actorType = actorType
        audit.actorID = actorID
        audit.actorLabel = label
        if case .app(let app) = self { audit.appID = app.id }
        return audit
    }
}

/// A user and the credential they called with.
public struct UserPrincipal: Sendable {
    public enum Credential: Sendable {
        case apiToken(TokenGrant)
        case session(id: String)
    }

    /// The user as read with the credentials, so answering "who am I" needs no second read.
    public var user: User
    public var credential: Credential

    public init(user: User, credential: Credential) {
        self.user = user
        self.credential = credential
    }

    public var id: String { user.id }
    public var role: Role { user.role }

    public var token: TokenGrant? {
        guard case .apiToken(let token) = credential else { return nil }
        return token
    }

    public var sessionID: String? {
        guard case .session(let id) = credential else { return nil }
        return id
    }
}

/// What a personal API token grants, as read with it.
public struct TokenGrant: Sendable {
    public var id: String
    public var name: String
    public var mode: TokenMode
    /// The workspaces a scoped token may reach; nil reaches every workspace.
    public var workspaces: [String]?
    public var expiresAt: Date?
}

/// An app calling with its access token, as read with it: a change to the app's workspaces or
/// permissions applies to its very next call.
public struct AppPrincipal: Sendable {
    public var id: String
    public var name: String
    public var mode: TokenMode
    /// The workspaces the app may reach; nil is every workspace of its mode.
    public var workspaces: [String]?
    /// The app's grants (`work_order:read`, `events:read`…), narrowed by the token's scope.
    public var permissions: Set<String>
    /// The access token's id (`atk_…`).
    public var tokenID: String
    /// Requests per second of its API calls; nil is `--app-rate-limit`.
    public var rateLimit: Double?

    public init(
        id: String,
        name: String,
        mode: TokenMode,
        workspaces: [String]?,
        permissions: Set<String>,
        tokenID: String = "",
        rateLimit: Double? = nil
    ) {
        self.id = id
        self.name = name
        self.mode = mode
        self.workspaces = workspaces
        self.permissions = permissions
        self.tokenID = tokenID
        self.rateLimit = rateLimit
    }

    public var grants: Grants { Grants(permissions) }
}
