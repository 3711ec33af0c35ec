import Foundation
import Logging

/// What a run of a connection's integration needs: the connection, its integration with the
/// secrets opened, and the connection's own secrets.
public struct ConnectionCredentials: Sendable {
    public var connection: Connection
    public var integration: Integration
    public var integrationSecrets: IntegrationSecrets
    /// `api_key`: `{"api_key"}`; `basic`: `{"username", "password"}`; `custom`: what was given;
    /// `oauth2`: `{"access_token", "refresh_token"?, "token_type", "scope"?}` (expiry is on the connection).
    public var secrets: JSONValue
    /// What happened to the tokens on the way (a refresh, its script's console lines, a failed
    /// refresh that left the current token in use): for a run's `auth_logs`.
    public var authLogs: [ScriptLogLine] = []

    static func read(_ tx: SQLTx, connectionID: String, sealer: Sealer) throws -> ConnectionCredentials {
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
}

/// The connection has no usable credentials: it waits for an authorization (`pending_authorization`,
/// `needs_reauthorization`), or its token expired and could not be refreshed. `message` says which
/// and what to do; it holds no secret.
public struct ConnectionUnusable: Error, Sendable, CustomStringConvertible {
    public var connection: Connection
    public var message: String
    public var description: String { message }
}

/// Connections of integrations to workspaces: their credentials and tokens, the Authorize flow
/// and the token lifecycle (the refresher).
public struct ConnectionService: Sendable {
    let database: Database
    let clock: any WallClock
    let sealer: Sealer
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let activity: ActivityService
    let outbound: OutboundHTTP
    let scripts: any ScriptRunner
    let publicURL: String
    let logger: Logger
    let oauth: OAuthClient
    /// The background refresher of `serve` (a `Worker`), and the refresh every run goes through.
    public let refresher: TokenRefresher

    /// - Parameter tokenTimeout: seconds for one request to a token endpoint.
    public init(
        database: Database,
        clock: any WallClock,
        sealer: Sealer,
        authenticator: Authenticator,
        workspaces: WorkspaceService,
        activity: ActivityService,
        mail: MailService,
        outbound: OutboundHTTP,
        scripts: any ScriptRunner,
        publicURL: String,
        tokenTimeout: TimeInterval = 15,
        logger: Logger
    ) {
        self.database = database
        self.clock = clock
        self.sealer = sealer
        self.authenticator = authenticator
        self.workspaces = workspaces
        self.activity = activity
        self.outbound = outbound
        self.scripts = scripts
        self.publicURL = publicURL
        self.logger = logger
        oauth = OAuthClient(outbound: outbound, timeout: tokenTimeout)
        refresher = TokenRefresher(
            database: database,
            clock: clock,
            sealer: sealer,
            oauth: oauth,
            scripts: scripts,
            activity: activity,
            mail: mail,
            publicURL: publicURL,
            logger: logger
        )
    }

    /// `{public-url}/integrations/callback`, where providers send the browser back.
    public var redirectURI: String { publicURL + "/integrations/callback" }

    /// The connection's credentials, ready to use: an OAuth 2.0 token that is due is refreshed
    /// first (by this process, or by another one this call waits for). Throws `ConnectionUnusable`
    /// when an OAuth 2.0 connection has no usable token (not authorized yet, needs
    /// reauthorization, expired and not refreshable), `APIError` 404 when there is no connection.
    public func credentials(connectionID: String) async throws -> ConnectionCredentials {
        let credentials = try await refresher.ensure(connectionID: connectionID, trigger: .due)
        try Self.requireTokens(credentials)
        return credentials
    }

    /// The provider refused `rejected` (a 401): refresh once, unless someone else already replaced
    /// that token, and answer the new credentials. Throws `ConnectionUnusable` when there is
    /// nothing to refresh (not OAuth 2.0) or the refresh failed; the connection then says why.
    public func refreshAfterUnauthorized(connectionID: String, rejected: String) async throws -> ConnectionCredentials {
        let credentials = try await refresher.ensure(connectionID: connectionID, trigger: .unauthorized(rejected: rejected))
        guard credentials.integration.auth.type == .oauth2 else {
            throw ConnectionUnusable(
                connection: credentials.connection,
                message: "The provider refused the connection's \(credentials.integration.auth.type.rawValue) credentials (401); "
                    + "give new ones with POST /v1/workspaces/\(credentials.connection.workspaceId)/connections."
            )
        }
        try Self.requireTokens(credentials)
        if credentials.secrets.objectValue?["access_token"]?.stringValue == rejected {
            throw ConnectionUnusable(connection: credentials.connection, message: "The provider refused the access token, and it was not refreshed.")
        }
        return credentials
    }

    static func requireTokens(_ credentials: ConnectionCredentials) throws {
        let connection = credentials.connection
        guard credentials.integration.auth.type == .oauth2 else { return }
        switch connection.status {
        case .active:
            return
        case .pendingAuthorization:
            throw ConnectionUnusable(
                connection: connection,
                message:
                    "The connection is not authorized yet: GET /v1/integrations/\(connection.integrationId)/authorize?workspace=\(connection.workspaceId)."
            )
        case .needsReauthorization:
            throw ConnectionUnusable(
                connection: connection,
                message: "The connection needs to be authorized again\(connection.lastError.map { ": \($0.message)" } ?? ".")"
            )
        }
    }

    // MARK: Reading and deleting

    /// Who may read a workspace's connections: its readers, and apps that may run them.
    func authorizeRead(_ tx: SQLTx, workspaceID: String, by principal: Principal) throws {
        try principal.require(Role.readers, or: "connections:run", to: "read connections")
        _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
    }

    /// Who may authorize, replace or delete a workspace's connections.
    func authorizeManage(_ tx: SQLTx, workspaceID: String, by principal: Principal) throws -> Workspace {
        try principal.require(Role.integrationManagers, to: "manage connections")
        return try workspaces.workspace(tx, id: workspaceID, by: principal)
    }

    public func list(caller: Caller, workspaceID: String, integrationID: String?, after: String?, limit: Int) async throws -> [Connection] {
        if let after, !ID.isValid(after, prefix: "con") {
            throw APIError.validation("`after` must be a connection id (the `next_after` of the previous page).", field: "after")
        }
        if let integrationID, !ID.isValid(integrationID, prefix: "int") {
            throw APIError.validation("`integration` must be an integration id (int_…).", field: "integration")
        }
        return try await authenticator.read(caller) { [self] tx, principal in
            try authorizeRead(tx, workspaceID: workspaceID, by: principal)
            return try ConnectionStore.connections(tx, workspaceID: workspaceID, integrationID: integrationID, after: after, limit: limit)
        }
    }

    public func connection(caller: Caller, workspaceID: String, id: String) async throws -> Connection {
        try await authenticator.read(caller) { [self] tx, principal in
            try authorizeRead(tx, workspaceID: workspaceID, by: principal)
            return try Self.connection(tx, workspaceID: workspaceID, id: id)
        }
    }

    /// Deletes the connection with its tokens and unfinished authorizations.
    public func delete(caller: Caller, workspaceID: String, id: String) async throws {
        try await authenticator.write(caller) { [self] tx, principal in
            _ = try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            let connection = try Self.connection(tx, workspaceID: workspaceID, id: id)
            _ = try ConnectionStore.delete(tx, id: id)
            try record(tx, "connection.deleted", connection, audit: principal.audit(from: caller.audit))
        }
    }

    static func connection(_ tx: SQLTx, workspaceID: String, id: String) throws -> Connection {
        guard ID.isValid(id, prefix: "con"), let connection = try ConnectionStore.connection(tx, id: id), connection.workspaceId == workspaceID
        else { throw APIError.notFound("connection", id) }
        return connection
    }

    func record(_ tx: SQLTx, _ action: String, _ connection: Connection, audit: AuditContext, failed: Bool = false, detail: String? = nil) throws {
        try activity.record(
            tx,
            audit,
            action: action,
            targetType: "connection",
            targetID: connection.id,
            targetLabel: connection.integrationName,
            workspaceID: connection.workspaceId,
            outcome: failed ? .failure : .success,
            detail: detail
        )
    }
}
