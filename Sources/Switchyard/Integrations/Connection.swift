import Foundation

/// An integration authorized for one workspace: the credentials or tokens its calls carry
/// (sealed in `connections.secrets`), and where the authorization stands.
public struct Connection: Codable, Sendable {
    public enum Status: String, APIEnum, Sendable {
        case pendingAuthorization = "pending_authorization"
        case active
        case needsReauthorization = "needs_reauthorization"
    }

    public struct LastError: Codable, Sendable, Equatable {
        public var message: String
        public var at: Date
    }

    public var id: String
    public var integrationId: String
    public var integrationName: String
    public var workspaceId: String
    public var status: Status
    public var authType: AuthSpec.Kind
    /// The scopes the provider granted (OAuth 2.0).
    public var scopes: [String]?
    /// When the access token expires (OAuth 2.0).
    public var expiresAt: Date?
    public var lastAuthorizedAt: Date?
    public var lastRefreshedAt: Date?
    public var lastError: LastError?
    public var createdBy: Record.CreatedBy?
    public var createdAt: Date
    public var updatedAt: Date
}

/// What the token lifecycle needs beyond the answer: failures, cooldown and the refresh lease.
public struct ConnectionRefreshState: Sendable, Equatable {
    public var failures: Int
    /// No refresh is tried before this (a cooldown after a transient failure).
    public var notBefore: Date?
    public var leaseUntil: Date?
    public var leaseID: String?
}
