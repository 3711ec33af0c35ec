import Foundation
import Hummingbird

/// `GET /v1/workspaces/{workspace_id}/event-types`: every event type a webhook subscription can
/// name, with the JSON Schema of a record event's `data`. Members read it.
struct EventTypeRoutes {
    let catalog: EventTypeCatalog

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get(use: list)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        let types = try await catalog.list(caller: caller, workspaceID: try context.parameters.require("workspace_id"))
        return Response.json(status: 200, body: JSONValue.object(["data": .array(types.map(\.json))]).jsonText)
    }
}
