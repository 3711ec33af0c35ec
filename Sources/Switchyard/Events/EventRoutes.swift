import Foundation
import Hummingbird

extension Event: ResponseEncodable {}

/// `/v1/workspaces/{workspace_id}/events`: post a host's own event; read the log in order.
struct EventRoutes {
    let events: EventService
    let maximumBodySize: Int

    func add(to router: Router<AppRequestContext>) {
        let path = router.group("v1/workspaces/:workspace_id/events")
        path.post { request, context -> Response in
            var request = request
            let key = try Idempotency.key(request.headers[.idempotencyKey])
            let input = try await request.decodeBody(PostEventInput.self, limit: maximumBodySize)
            let (status, body) = try await events.post(
                input,
                workspaceID: try context.parameters.require("workspace_id"),
                credentials: context.credentials,
                idempotencyKey: key,
                audit: context.audit(nil)
            )
            return Response.json(status: status, body: body)
        }
        path.get { request, context in
            let limit = try Validate.limit(request.query("limit"))
            let types = request.queryAll("type").flatMap { $0.split(separator: ",").map(String.init) }
            let list = try await events.list(
                workspaceID: try context.parameters.require("workspace_id"),
                credentials: context.credentials,
                audit: context.audit(nil),
                after: request.query("after"),
                types: types,
                limit: limit
            )
            return Page(list, limit: limit, cursor: \.id)
        }
    }
}
