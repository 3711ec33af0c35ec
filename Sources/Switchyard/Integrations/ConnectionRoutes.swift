import Foundation
import Hummingbird

/// `/v1/workspaces/{workspace_id}/connections`: the workspace's connections of integrations.
struct ConnectionRoutes {
    let connections: ConnectionService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get(":connection_id", use: get)
            .delete(":connection_id", use: delete)
    }

    /// 201 for a new connection, 200 when the credentials of the existing one were replaced: the
    /// same body twice leaves the same state, so no `Idempotency-Key` is needed.
    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        var request = request
        let input = try await request.decodeBody(CreateConnectionInput.self, limit: maximumBodySize)
        let workspaceID = try context.parameters.require("workspace_id")
        let (connection, created) = try await connections.connect(caller: try context.caller(), workspaceID: workspaceID, input)
        return Self.json(connection.json, status: created ? 201 : 200)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<JSONValue> {
        let limit = try Validate.limit(request.query("limit"))
        let found = try await connections.list(
            caller: try context.caller(),
            workspaceID: try context.parameters.require("workspace_id"),
            integrationID: request.query("integration"),
            after: request.query("after"),
            limit: limit
        )
        return Page(found.map(\.json), limit: limit) { $0.objectValue?["id"]?.stringValue ?? "" }
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let connection = try await connections.connection(
            caller: try context.caller(),
            workspaceID: try context.parameters.require("workspace_id"),
            id: try context.parameters.require("connection_id")
        )
        return Self.json(connection.json)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await connections.delete(
            caller: try context.caller(),
            workspaceID: try context.parameters.require("workspace_id"),
            id: try context.parameters.require("connection_id")
        )
        return Response(status: .noContent)
    }

    static func json(_ value: JSONValue, status: Int = 200) -> Response { Response.json(status: status, body: value.jsonText) }
}

extension Connection {
    /// The answer: every member present, `null` when it has no value; never a credential.
    public var json: JSONValue {
        func time(_ date: Date?) -> JSONValue { date.map { .string(RFC3339.format($0)) } ?? .null }
        return .object([
            "id": .string(id),
            "integration_id": .string(integrationId),
            "integration_name": .string(integrationName),
            "workspace_id": .string(workspaceId),
            "status": .string(status.rawValue),
            "auth_type": .string(authType.rawValue),
            "scopes": scopes.map { .array($0.map(JSONValue.string)) } ?? .null,
            "expires_at": time(expiresAt),
            "last_authorized_at": time(lastAuthorizedAt),
            "last_refreshed_at": time(lastRefreshedAt),
            "last_error": lastError.map { .object(["message": .string($0.message), "at": .string(RFC3339.format($0.at))]) } ?? .null,
            "created_at": .string(RFC3339.format(createdAt)),
            "updated_at": .string(RFC3339.format(updatedAt)),
        ])
    }
}
