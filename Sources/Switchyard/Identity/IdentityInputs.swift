import Foundation

public struct CreateUserInput: RequestBody {
    public static let keys: Set<String> = ["email", "name", "role", "password"]
    public var email: String
    public var name: String?
    public var role: Role
    public var password: String?

    public init(email: String, name: String? = nil, role: Role, password: String? = nil) {
        self.email = email
        self.name = name
        self.role = role
        self.password = password
    }
}

public struct CreateWorkspaceInput: RequestBody {
    public static let keys: Set<String> = ["name", "mode"]
    public var name: String
    public var mode: WorkspaceMode?

    public init(name: String, mode: WorkspaceMode? = nil) {
        self.name = name
        self.mode = mode
    }

    /// What makes two creates the same request, for `Idempotency-Key`.
    public var idempotencyFingerprint: String {
        Idempotency.fingerprint(name.trimmingCharacters(in: .whitespacesAndNewlines), (mode ?? .live).rawValue)
    }
}

public struct UpdateWorkspaceInput: RequestBody {
    public static let keys: Set<String> = ["name", "mode"]
    public var name: String?
    public var mode: WorkspaceMode?
}

public struct CreateTokenInput: RequestBody {
    public static let keys: Set<String> = ["name", "mode", "workspaces", "expires_at"]
    public var name: String
    public var mode: TokenMode?
    public var workspaces: [String]?
    public var expiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, mode, workspaces
        case expiresAt = "expires_at"
    }

    public init(name: String, mode: TokenMode? = nil, workspaces: [String]? = nil, expiresAt: Date? = nil) {
        self.name = name
        self.mode = mode
        self.workspaces = workspaces
        self.expiresAt = expiresAt
    }
}

public struct SignInInput: RequestBody {
    public static let keys: Set<String> = ["email", "password"]
    public var email: String
    public var password: String
}

/// The answer to a user's creation; `password` only when the server generated it.
public struct CreatedUser: Codable, Sendable {
    public var user: User
    public var password: String?
}
