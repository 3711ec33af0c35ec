import Foundation
import Hummingbird

extension Event: ResponseEncodable {}

/// `/v1/workspaces/{workspace_id}/events`: post a host's own event; read the log in order.
struct EventRoutes {
    let authenticator: Authenticator
    let events: EventService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post(use: post)
            .get(use: list)
    }

    /// With an `Idempotency-Key`, a repeat within 24 hours returns the first event and posts nothing.
    @Sendable func post(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        var request = request
        let key = try Idempotency.key(request.headers[.idempotencyKey])
        let input = try await request.decodeBody(PostEventInput.self, limit: maximumBodySize)
        let workspaceID = try context.parameters.require("workspace_id")
        let events = events
        let answer = try await authenticator.createOnce(
            caller,
            key: key,
            workspaceID: workspaceID,
            scope: { "events:\($0.actorID)" },
            fingerprint: input.idempotencyFingerprint,
            authorize: { tx, principal in try events.authorizePost(tx, input, workspaceID: workspaceID, by: principal) },
            create: { tx, principal, _ in
                try events.post(tx, input, workspaceID: workspaceID, by: principal, audit: caller.audit).jsonText
            }
        )
        events.didCommitPost(input, workspaceID: workspaceID)
        return Response.json(status: answer.status, body: answer.body)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<Event> {
        let caller = try context.caller()
        let limit = try Validate.limit(request.query("limit"))
        let types = request.queryAll("type").flatMap { $0.split(separator: ",").map(String.init) }
        let list = try await events.list(
            workspaceID: try context.parameters.require("workspace_id"),
            caller: caller,
            after: request.query("after"),
            types: types,
            limit: limit
        )
        return Page(list, limit: limit, cursor: \.id)
    }
}
