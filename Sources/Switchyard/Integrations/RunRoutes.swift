import Foundation
import Hummingbird

/// `/v1/workspaces/{workspace_id}/connections/{connection_id}/run/{connector_key}` and `…/runs`:
/// connectors run for real on a connection, and their history.
struct RunRoutes {
    let integrations: IntegrationService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("workspaces/:workspace_id/connections/:connection_id/run/:connector_key", use: run)
            .get("workspaces/:workspace_id/connections/:connection_id/runs", use: runs)
    }

    /// 200 whatever the connector did: the run says it.
    @Sendable func run(_ request: Request, context: AppRequestContext) async throws -> Response {
        let workspaceID = try context.parameters.require("workspace_id")
        let connectionID = try context.parameters.require("connection_id")
        let key = try context.parameters.require("connector_key")
        var request = request
        let input = try await request.decodeBody(ConnectorRunInput.self, limit: maximumBodySize)
        let run = try await integrations.run(
            caller: try context.caller(),
            workspaceID: workspaceID,
            connectionID: connectionID,
            key: key,
            input: input.input
        )
        return Response.json(status: 200, body: run.json.jsonText)
    }

    @Sendable func runs(_ request: Request, context: AppRequestContext) async throws -> Page<JSONValue> {
        let limit = try Validate.limit(request.query("limit"))
        let runs = try await integrations.runs(
            caller: try context.caller(),
            workspaceID: try context.parameters.require("workspace_id"),
            connectionID: try context.parameters.require("connection_id"),
            after: request.query("after"),
            limit: limit
        )
        return Page(runs.map(\.json), limit: limit, cursor: IntegrationRoutes.id)
    }
}
