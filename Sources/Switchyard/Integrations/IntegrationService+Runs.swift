import Foundation

/// `POST /v1/integrations/{integration_id}/test`.
public struct TestRunInput: JSONObjectBody {
    public static let keys: Set<String> = ["target", "input", "workspace"]
    /// `auth` or a connector key.
    public var target: String
    /// Any JSON: one that is not an object is a run failed with an InputError, shown in the panel.
    public var input: JSONValue
    public var workspace: String?

    public init(json object: [String: JSONValue]) throws {
        let target = try JSONBody.required(object, "target", "\"auth\" or a connector key", \.stringValue)
        guard target == "auth" || ConnectorInput.isKey(target) else {
            throw APIError.validation("`target` must be \"auth\" or a connector key such as send_for_esign.", field: "target")
        }
        self.target = target
        input = object["input"].flatMap { $0 == .null ? nil : $0 } ?? .object([:])
        if let value = object["workspace"], value != .null {
            guard let id = value.stringValue, ID.isValid(id, prefix: "ws") else {
                throw APIError.validation("`workspace` must be a workspace id (ws_…).", field: "workspace")
            }
            workspace = id
        }
    }

    public init(target: String, input: JSONValue = .object([:]), workspace: String? = nil) {
        self.target = target
        self.input = input
        self.workspace = workspace
    }

    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}

/// `POST /v1/workspaces/{workspace_id}/connections/{connection_id}/run/{connector_key}`.
public struct ConnectorRunInput: JSONObjectBody {
    public static let keys: Set<String> = ["input"]
    public var input: JSONValue

    public init(json object: [String: JSONValue]) throws {
        input = object["input"].flatMap { $0 == .null ? nil : $0 } ?? .object([:])
    }

    public init(input: JSONValue) { self.input = input }
    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}

/// Test runs (the test panel) and connector runs on connections, each kept as history.
extension IntegrationService {
    /// Runs the auth or a connector as a manager testing it, with the workspace's connection when
    /// there is one. Answers whatever the script did; 404 for an unknown integration or connector.
    public func test(caller: Caller, integrationID: String, _ input: TestRunInput) async throws -> ScriptRun {
        let job = try await authenticator.read(caller) { [self] tx, principal -> ConnectorRunner.Job in
            try Self.requireManager(principal)
            let integration = try Self.find(tx, integrationID, connectors: false)
            let target: ConnectorRunner.Target =
                input.target == "auth" ? .auth : .connector(try Self.findConnector(tx, integrationID: integrationID, key: input.target))
            var connection: Connection?
            if let workspaceID = input.workspace {
                guard let workspace = try WorkspaceStore.workspace(tx, id: workspaceID) else {
                    throw APIError.validation("`workspace` names no workspace: \(workspaceID).", field: "workspace")
                }
                try principal.requireAccess(to: workspace)
                connection = try ConnectionStore.connection(tx, integrationID: integrationID, workspaceID: workspaceID)
            }
            return ConnectorRunner.Job(
                kind: .test,
                integration: integration,
                secrets: try openSecrets(tx, integrationID: integrationID),
                target: target,
                input: input.input,
                workspaceID: input.workspace,
                connectionID: connection?.id,
                connection: connection,
                createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID)
            )
        }
        return try await runAndKeep(job)
    }

    /// Runs a connector on a connection: readers of the workspace and apps holding `connections:run` on it.
    public func run(caller: Caller, workspaceID: String, connectionID: String, key: String, input: JSONValue) async throws -> ScriptRun {
        let job = try await authenticator.read(caller) { [self] tx, principal -> ConnectorRunner.Job in
            try principal.require(Role.readers, or: "connections:run", to: "run connectors")
            let connection = try findConnection(tx, workspaceID: workspaceID, connectionID: connectionID, by: principal)
            let integration = try Self.find(tx, connection.integrationId, connectors: false)
            return ConnectorRunner.Job(
                kind: .run,
                integration: integration,
                secrets: try openSecrets(tx, integrationID: integration.id),
                target: .connector(try Self.findConnector(tx, integrationID: integration.id, key: key)),
                input: input,
                workspaceID: workspaceID,
                connectionID: connection.id,
                connection: connection,
                createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID)
            )
        }
        return try await runAndKeep(job)
    }

    private func runAndKeep(_ job: ConnectorRunner.Job) async throws -> ScriptRun {
        let run = await runner.run(job)
        try await database.write { tx in try ScriptRunStore.insert(tx, run) }
        return run
    }

    func openSecrets(_ tx: SQLTx, integrationID: String) throws -> IntegrationSecrets {
        guard let sealed = try IntegrationStore.sealedSecrets(tx, id: integrationID) else { return IntegrationSecrets() }
        return try sealer.openIntegrationSecrets(configuration: sealed.configuration, auth: sealed.auth)
    }

    /// The connection, in the workspace the path names (404 otherwise), which the caller may reach.
    func findConnection(_ tx: SQLTx, workspaceID: String, connectionID: String, by principal: Principal) throws -> Connection {
        _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
        guard ID.isValid(connectionID, prefix: "con"), let connection = try ConnectionStore.connection(tx, id: connectionID),
            connection.workspaceId == workspaceID
        else { throw APIError.notFound("connection", connectionID) }
        return connection
    }

    public func testRuns(caller: Caller, integrationID: String, after: String?, limit: Int) async throws -> [ScriptRun] {
        try Self.checkCursor(after)
        return try await authenticator.read(caller) { tx, principal in
            try Self.requireReader(principal)
            _ = try Self.find(tx, integrationID, connectors: false)
            return try ScriptRunStore.testRuns(tx, integrationID: integrationID, after: after, limit: limit)
        }
    }

    public func runs(caller: Caller, workspaceID: String, connectionID: String, after: String?, limit: Int) async throws -> [ScriptRun] {
        try Self.checkCursor(after)
        return try await authenticator.read(caller) { [self] tx, principal in
            try principal.require(Role.readers, or: "connections:run", to: "read connector runs")
            _ = try findConnection(tx, workspaceID: workspaceID, connectionID: connectionID, by: principal)
            return try ScriptRunStore.runs(tx, connectionID: connectionID, after: after, limit: limit)
        }
    }

    static func checkCursor(_ after: String?) throws {
        if let after, !ID.isValid(after, prefix: "run") {
            throw APIError.validation("`after` must be a run id (the `next_after` of the previous page).", field: "after")
        }
    }
}
