import Foundation

/// `invite`: the user sets their own password from a mailed link instead (no `password` with it).
public struct CreateUserInput: RequestBody {
    public static let keys: Set<String> = ["email", "name", "role", "password", "invite"]
    public var email: String
    public var name: String?
    public var role: Role
    public var password: String?
    public var invite: Bool?

    public init(email: String, name: String? = nil, role: Role, password: String? = nil, invite: Bool? = nil) {
        self.email = email
        self.name = name
        self.role = role
        self.password = password
        self.invite = invite
    }
}

public struct UpdateUserInput: RequestBody {
    public static let keys: Set<String> = ["name", "role"]
    public var name: String?
    public var role: Role?

    public init(name: String? = nil, role: Role? = nil) {
        self.name = name
        self.role = role
    }
}

public struct AcceptInviteInput: RequestBody {
    public static let keys: Set<String> = ["password", "name"]
    public var password: String
    public var name: String?
}

public struct ChangePasswordInput: RequestBody {
    public static let keys: Set<String> = ["old_password", "new_password"]
    public var oldPassword: String
    public var newPassword: String

    enum CodingKeys: String, CodingKey {
        case oldPassword = "old_password"
        case newPassword = "new_password"
    }

    public init(oldPassword: String, newPassword: String) {
        self.oldPassword = oldPassword
        self.newPassword = newPassword
    }
}

public struct PasswordResetRequestInput: RequestBody {
    public static let keys: Set<String> = ["email"]
    public var email: String
}

public struct PasswordResetInput: RequestBody {
    public static let keys: Set<String> = ["password"]
    public var password: String
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

/// The answer to a user's creation; `password` only when the server generated it, `invited`
/// (true) only when the user was invited to set their own.
public struct CreatedUser: Codable, Sendable {
    public var user: User
    public var password: String?
    public var invited: Bool?
}
