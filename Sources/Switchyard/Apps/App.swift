import Foundation

/// A partner's way into the platform's data: OAuth 2.0 client credentials with an access fixed at
/// creation, the workspaces and permissions an admin grants (changeable at any time), and the
/// developer who verifies it with a one-time password.
public struct App: Codable, Sendable {
    public enum Access: String, APIEnum, Sendable {
        case read
        case readWrite = "read_write"
    }

    public enum Status: String, APIEnum, Sendable {
        case pendingVerification = "pending_verification"
        case active, revoked
    }

    /// The documented categories (docs/apps.md).
    public static let categories = [
        "accounting", "crm", "e_commerce", "e_signature", "field_service", "hr", "marketing", "payments", "productivity",
        "other",
    ]

    /// The developer linked to the app, as admins see them.
    public struct Developer: Codable, Sendable {
        public var email: String
        /// Set once they signed up or signed in with the invite.
        public var userId: String?
        public var invitedAt: Date?
        public var linkedAt: Date?
        public var verified: Bool
        public var verifiedAt: Date?
    }

    /// Where the app's one-time password stands (never the password itself).
    public struct Verification: Codable, Sendable {
        public var expiresAt: Date?
        public var triesLeft: Int
        public var locked: Bool
    }

    public var id: String
    public var name: String
    public var description: String
    public var category: String
    public var access: Access
    public var mode: TokenMode
    public var workspaces: AppWorkspaces
    public var permissions: [String]
    public var status: Status
    public var clientId: String
    /// Requests per second of its API calls; nil takes `--app-rate-limit`.
    public var rateLimit: Double?
    public var developer: Developer?
    public var verification: Verification?
    public var createdBy: Record.CreatedBy?
    public var createdAt: Date
    public var updatedAt: Date
    public var revokedAt: Date?

    /// Wrong tries allowed before the one-time password locks.
    public static let oneTimePasswordTries = 5
}

/// The workspaces an app reaches: a list, or `"*"` for every workspace of its mode, later ones too.
public enum AppWorkspaces: Codable, Sendable, Equatable {
    case all
    case list([String])

    /// nil for every workspace, as `Principal.workspaceLimit` has it.
    public var ids: [String]? {
        if case .list(let ids) = self { return ids }
        return nil
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let star = try? container.decode(String.self), star == "*" {
            self = .all
        } else {
            self = .list(try container.decode([String].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .all: try container.encode("*")
        case .list(let ids): try container.encode(ids)
        }
    }
}

/// A client secret as listed: never the secret, only how to recognise it.
public struct AppSecret: Codable, Sendable {
    public var id: String
    public var appId: String
    public var lastFour: String
    public var createdAt: Date
    public var lastUsedAt: Date?
}

/// The answer to a secret's creation: the only time it is shown.
public struct CreatedAppSecret: Codable, Sendable {
    public var secret: String
    public var appSecret: AppSecret
}
