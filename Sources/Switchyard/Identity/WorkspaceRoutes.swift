import Foundation
import Hummingbird

/// `/v1/organization` and `/v1/workspaces`.
struct WorkspaceRoutes {
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get("organization", use: organization)
            .post("workspaces", use: create)
            .get("workspaces", use: list)
            .get("workspaces/:workspace_id", use: get)
            .patch("workspaces/:workspace_id", use: update)
    }

    @Sendable func organization(_ request: Request, context: AppRequestContext) async throws -> Organization {
        try await workspaces.organization(by: try await authenticator.principal(context))
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        var request = request
        let key = try Idempotency.key(request.headers[.idempotencyKey])
        let input = try await request.decodeBody(CreateWorkspaceInput.self, limit: maximumBodySize)
        let workspaces = workspaces
        // Above workspaces: keys live under the organization, per caller.
        let answer = try await authenticator.createOnce(
            caller,
            key: key,
            workspaceID: "organization",
            scope: { "workspaces:\($0.actorID)" },
            fingerprint: input.idempotencyFingerprint,
            authorize: { _, principal in try workspaces.authorizeCreate(input, by: principal) },
            create: { tx, principal, _ in
                try JSONCoding.encodeText(try workspaces.create(tx, input, by: principal, audit: caller.audit))
            }
        )
        return Response.json(status: answer.status, body: answer.body)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<Workspace> {
        let principal = try await authenticator.principal(context)
        let limit = try Validate.limit(request.query("limit"))
        return Page(try await workspaces.list(by: principal, after: request.query("after"), limit: limit), limit: limit, cursor: \.id)
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Workspace {
        let principal = try await authenticator.principal(context)
        return try await workspaces.workspace(id: try context.parameters.require("workspace_id"), by: principal)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Workspace {
        let principal = try await authenticator.principal(context)
        var request = request
        let input = try await request.decodeBody(UpdateWorkspaceInput.self, limit: maximumBodySize)
        let id = try context.parameters.require("workspace_id")
        return try await workspaces.update(id: id, input, by: principal, audit: context.audit())
    }
}
