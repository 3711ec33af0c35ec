import Foundation
import Hummingbird

/// An app as its developer sees it in the portal: what it may reach, its client id and secrets'
/// ids (never a secret), where to get tokens and the API's reference.
public struct PortalApp: Codable, Sendable, ResponseEncodable {
    public struct WorkspaceRef: Codable, Sendable {
        public var id: String
        public var name: String
        public var mode: WorkspaceMode
    }

    public struct Links: Codable, Sendable {
        /// `{public-url}/openapi.yaml`.
        public var apiReference: String
        /// No guide is served yet (docs/apps.md ships with the source); null until one is.
        public var docs: String?
    }

    public var id: String
    public var name: String
    public var description: String
    public var category: String
    public var access: App.Access
    public var mode: TokenMode
    public var status: App.Status
    public var clientId: String
    /// The workspaces the app reaches today, with their names; with `all_workspaces`, every
    /// workspace of its mode, later ones too.
    public var workspaces: [WorkspaceRef]
    public var allWorkspaces: Bool
    public var permissions: [String]
    public var verified: Bool
    public var verifiedAt: Date?
    /// Where the one-time password stands while the app is unverified.
    public var verification: App.Verification?
    public var secrets: [PortalSecret]
    /// `{public-url}/oauth/token`.
    public var tokenEndpoint: String
    public var links: Links
}

/// A client secret as listed: its id and last four characters.
public struct PortalSecret: Codable, Sendable {
    public var id: String
    public var lastFour: String
    public var createdAt: Date
    public var lastUsedAt: Date?

    init(_ secret: AppSecret) {
        id = secret.id
        lastFour = secret.lastFour
        createdAt = secret.createdAt
        lastUsedAt = secret.lastUsedAt
    }
}

/// The answer to a secret's creation, the only time the secret is shown.
public struct PortalCreatedSecret: Codable, Sendable, ResponseEncodable {
    public var secret: String
    public var appSecret: PortalSecret
}

/// A developer as the portal shows them.
public struct PortalDeveloper: Codable, Sendable {
    public var id: String
    public var email: String
    public var name: String

    init(_ user: User) {
        id = user.id
        email = user.email
        name = user.name
    }
}

/// The answer to a sign-up or sign-in (the session itself travels in the `sy_portal` cookie).
public struct PortalSessionAnswer: Codable, Sendable, ResponseEncodable {
    public var developer: PortalDeveloper
    public var expiresAt: Date
}

/// What an invite link is for, for the page that opens it: the app, the email, and whether that
/// email has an account (then the developer signs in to accept it rather than signing up).
public struct PortalInvite: Codable, Sendable, ResponseEncodable {
    public struct AppRef: Codable, Sendable {
        public var id: String
        public var name: String
    }

    public var app: AppRef
    public var email: String
    public var hasAccount: Bool
    public var expiresAt: Date
}

public struct PortalList: Codable, Sendable, ResponseEncodable {
    public var data: [PortalApp]
}

public struct PortalSignUpInput: RequestBody {
    public static let keys: Set<String> = ["invite_token", "password", "name"]
    public var inviteToken: String
    public var password: String
    public var name: String?

    enum CodingKeys: String, CodingKey {
        case inviteToken = "invite_token"
        case password, name
    }
}

public struct PortalSignInInput: RequestBody {
    public static let keys: Set<String> = ["email", "password", "invite_token"]
    public var email: String
    public var password: String
    public var inviteToken: String?

    enum CodingKeys: String, CodingKey {
        case inviteToken = "invite_token"
        case email, password
    }
}

public struct PortalVerifyInput: RequestBody {
    public static let keys: Set<String> = ["one_time_password"]
    public var oneTimePassword: String

    enum CodingKeys: String, CodingKey {
        case oneTimePassword = "one_time_password"
    }
}
