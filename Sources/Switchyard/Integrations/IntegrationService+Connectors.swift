import Foundation

/// An integration's connectors, one per third-party API call, through
/// `/v1/integrations/{integration_id}/connectors[/{connector_key}]`.
extension IntegrationService {
    public func connectors(caller: Caller, integrationID: String) async throws -> [Connector] {
        try await authenticator.read(caller) { tx, principal in
            try Self.requireReader(principal)
            _ = try Self.find(tx, integrationID, connectors: false)
            return try IntegrationStore.connectors(tx, integrationID: integrationID)
        }
    }

    public func connector(caller: Caller, integrationID: String, key: String) async throws -> Connector {
        try await authenticator.read(caller) { tx, principal in
            try Self.requireReader(principal)
            _ = try Self.find(tx, integrationID, connectors: false)
            return try Self.findConnector(tx, integrationID: integrationID, key: key)
        }
    }

    static func findConnector(_ tx: SQLTx, integrationID: String, key: String) throws -> Connector {
        guard let connector = try IntegrationStore.connector(tx, integrationID: integrationID, key: key) else {
            throw APIError.notFound(detail: "The integration \(integrationID) has no connector with the key \(key).")
        }
        return connector
    }

    /// A connector's code compiled; the body as a connector (the key from the body, or the path's).
    func prepareConnector(_ body: ConnectorBody, pathKey: String?) async throws -> ConnectorInput {
        let input = try ConnectorInput(.object(body.object), path: "", pathKey: pathKey)
        try await checkScripts([("code", input.code, ["run"])])
        return input
    }

    /// Whether the caller may change connectors of the integration, in the caller's transaction.
    func authorizeConnectorChange(_ tx: SQLTx, integrationID: String, by principal: Principal) throws -> Integration {
        try Self.requireManager(principal)
        return try Self.find(tx, integrationID, connectors: false)
    }

    /// `POST …/connectors`: a new key, or 409.
    func createConnector(
        _ tx: SQLTx,
        _ input: ConnectorInput,
        integration: Integration,
        by principal: Principal,
        audit: AuditContext
    ) throws
        -> Connector
    {
        if try IntegrationStore.connector(tx, integrationID: integration.id, key: input.key) != nil {
            throw APIError.conflict(
                "The integration \(integration.name) has a connector \(input.key) already; PUT …/connectors/\(input.key) replaces it.",
                field: "key"
            )
        }
        let connector = input.connector(at: clock.now)
        try IntegrationStore.upsertConnector(tx, integrationID: integration.id, connector)
        try record(tx, principal.audit(from: audit), "connector.saved", integration, detail: "connector \(connector.key) created")
        return connector
    }

    /// `PUT …/connectors/{key}`: creates or replaces; answers whether it was created.
    public func putConnector(
        caller: Caller,
        integrationID: String,
        key: String,
        _ body: ConnectorBody
    ) async throws -> (
        connector: Connector, created: Bool
    ) {
        try Self.requireManager(try await authenticator.principal(caller))
        let input = try await prepareConnector(body, pathKey: key)
        let now = clock.now
        return try await authenticator.write(caller) { [self] tx, principal in
            let integration = try authorizeConnectorChange(tx, integrationID: integrationID, by: principal)
            let existing = try IntegrationStore.connector(tx, integrationID: integrationID, key: key)
            let connector = input.connector(at: now, createdAt: existing?.createdAt)
            try IntegrationStore.upsertConnector(tx, integrationID: integrationID, connector)
            try record(
                tx,
                principal.audit(from: caller.audit),
                "connector.saved",
                integration,
                detail: "connector \(key) \(existing == nil ? "created" : "replaced")"
            )
            return (connector, existing == nil)
        }
    }

    public func deleteConnector(caller: Caller, integrationID: String, key: String) async throws {
        try await authenticator.write(caller) { [self] tx, principal in
            let integration = try authorizeConnectorChange(tx, integrationID: integrationID, by: principal)
            guard try IntegrationStore.deleteConnector(tx, integrationID: integrationID, key: key) else {
                throw APIError.notFound(detail: "The integration \(integrationID) has no connector with the key \(key).")
            }
            try record(tx, principal.audit(from: caller.audit), "connector.deleted", integration, detail: "connector \(key)")
        }
    }
}
