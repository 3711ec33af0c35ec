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
    /// `invited`: no password set yet (signs in only after accepting the invite); `deactivated`:
    /// every session and token of the user is refused until reactivated.
    public enum Status: String, APIEnum, Sendable {
        case active, invited, deactivated
    }

    public var id: String
    public var email: String
    public var name: String
    public var role: Role
    public var status: Status = .active
    public var deactivatedAt: Date? = nil
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
