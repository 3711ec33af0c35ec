import Foundation
import Logging

/// What a run of a connection's integration needs: the connection, its integration with the
/// secrets opened, and the connection's own secrets.
public struct ConnectionCredentials: Sendable {
    public var connection: Connection
    public var integration: Integration
    public var integrationSecrets: IntegrationSecrets
    /// `api_key`: `{"api_key"}`; `basic`: `{"username", "password"}`; `custom`: what was given;
    /// `oauth2`: `{"access_token", "refresh_token"?, "token_type"?, "scope"?}` (expiry is on the connection).
    public var secrets: JSONValue
}

/// Connections of integrations to workspaces: their credentials and tokens, the Authorize flow
/// and the token lifecycle (helper "connections" builds the routes, the flow and the refresher on this).
public struct ConnectionService: Sendable {
    let database: Database
    let clock: any WallClock
    let sealer: Sealer
    let logger: Logger

    public init(database: Database, clock: any WallClock, sealer: Sealer, logger: Logger) {
        self.database = database
        self.clock = clock
        self.sealer = sealer
        self.logger = logger
    }

    /// The connection's credentials, ready to use (refreshed first when due: helper "connections").
    public func credentials(connectionID: String) async throws -> ConnectionCredentials {
        try await database.read { tx in try self.credentials(tx, connectionID: connectionID) }
    }

    func credentials(_ tx: SQLTx, connectionID: String) throws -> ConnectionCredentials {
        guard let connection = try ConnectionStore.connection(tx, id: connectionID),
            let integration = try IntegrationStore.integration(tx, id: connection.integrationId),
            let sealed = try IntegrationStore.sealedSecrets(tx, id: connection.integrationId)
        else { throw APIError.notFound("connection", connectionID) }
        return ConnectionCredentials(
            connection: connection,
            integration: integration,
            integrationSecrets: try sealer.openIntegrationSecrets(configuration: sealed.configuration, auth: sealed.auth),
            secrets: try sealer.openConnectionSecrets(try ConnectionStore.secrets(tx, id: connectionID))
        )
    }

    /// The provider refused `rejected` (a 401): refresh once and answer the new credentials,
    /// or throw when the connection cannot be refreshed (helper "connections").
    public func refreshAfterUnauthorized(connectionID: String, rejected: String) async throws -> ConnectionCredentials {
        try await credentials(connectionID: connectionID)
    }
}
