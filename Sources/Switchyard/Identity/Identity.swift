import Foundation

public enum Role: String, APIEnum, Sendable {
    case owner, admin
    case integrationAdmin = "integration_admin"
    case developer, member

    /// Who manages users.
    public static let userManagers: Set<Role> = [.owner, .admin]
    /// Who will manage integrations, apps and webhooks.
    public static let integrationManagers: Set<Role> = [.owner, .admin, .integrationAdmin]
    /// Everyone who reads the platform's data through the API (developers use the portal only).
    public static let readers: Set<Role> = [.owner, .admin, .integrationAdmin, .member]
}

public enum WorkspaceMode: String, APIEnum, Sendable {
    case live, sandbox
}

/// `live` tokens (`sy_live_…`) reach every workspace; `test` tokens (`sy_test_…`) only sandboxes.
public enum TokenMode: String, APIEnum, Sendable {
    case live, test
}

public struct Organization: Codable, Sendable {
    public var id: String
    public var name: String
    public var createdAt: Date
}

public struct Workspace: Codable, Sendable {
    public var id: String
    public var name: String
    public var mode: WorkspaceMode
    public var createdAt: Date
    public var updatedAt: Date
}

public struct User: Codable, Sendable {
    public var id: String
    public var email: String
    public var name: String
    public var role: Role
    public var createdAt: Date
    public var updatedAt: Date
}

/// A personal API token as listed: never the secret, only how to recognise it.
public struct APIToken: Codable, Sendable {
    public var id: String
    public var userId: String
    public var name: String
    public var mode: TokenMode
    public var prefix: String
    public var lastFour: String
    public var workspaces: [String]?
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?
    public var createdAt: Date
}

/// The answer to a token's creation: the only time its secret is shown.
public struct CreatedAPIToken: Codable, Sendable {
    public var token: String
    public var apiToken: APIToken
}

/// Who is calling, resolved once per request by the authentication middleware.
public struct Principal: Sendable {
    /// The user as read with the credentials, so answering "who am I" needs no second read.
    public var user: User
    public var tokenID: String?
    public var tokenName: String?
    public var tokenMode: TokenMode?
    /// The workspaces a scoped token may reach; nil reaches every workspace.
    public var tokenWorkspaces: [String]?
    public var tokenExpiresAt: Date?
    public var sessionID: String?

    public init(
        user: User,
        tokenID: String? = nil,
        tokenName: String? = nil,
        tokenMode: TokenMode? = nil,
        tokenWorkspaces: [String]? = nil,
        tokenExpiresAt: Date? = nil,
        sessionID: String? = nil
    ) {
        self.user = user
        self.tokenID = tokenID
        self.tokenName = tokenName
        self.tokenMode = tokenMode
        self.tokenWorkspaces = tokenWorkspaces
        self.tokenExpiresAt = tokenExpiresAt
        self.sessionID = sessionID
    }

    public var userID: String { user.id }
    public var email: String { user.email }
    public var role: Role { user.role }

    public var actorType: String { tokenID != nil ? "api_token" : "user" }
    public var actorID: String { tokenID ?? userID }

    /// 403 unless the caller has one of `roles`.
    public func require(_ roles: Set<Role>, to action: String) throws {
        guard roles.contains(role) else {
            let names = Role.allCases.filter(roles.contains).map(\.rawValue).joined(separator: ", ")
            throw APIError.forbidden("Only \(names) may \(action); you are \(role.rawValue).")
        }
    }

    /// 403 for a test token or a token limited to workspaces: what reaches the whole
    /// organization (users, the activity log, the outbox) needs an unrestricted live credential.
    public func requireOrganizationWide(to action: String) throws {
        if tokenMode == .test {
            throw APIError.forbidden("A test token (sy_test_…) cannot \(action); use a live token.")
        }
        if tokenWorkspaces != nil {
            throw APIError.forbidden("A token limited to workspaces cannot \(action); use a token for all workspaces.")
        }
    }

    /// 403 when a scoped or test token is used on a workspace it may not reach.
    public func requireAccess(to workspace: Workspace) throws {
        try requireAccess(to: workspace.id, mode: workspace.mode)
    }

    public func requireAccess(to workspaceID: String, mode: WorkspaceMode) throws {
        if tokenMode == .test && mode == .live {
            throw APIError.forbidden("A test token (sy_test_…) reaches only sandbox workspaces; \(workspaceID) is live. Use a live token.")
        }
        if let allowed = tokenWorkspaces, !allowed.contains(workspaceID) {
            throw APIError.forbidden("This API token is limited to other workspaces than \(workspaceID).")
        }
    }
}
