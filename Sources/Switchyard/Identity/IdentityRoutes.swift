import Foundation
import Hummingbird

extension Workspace: ResponseEncodable {}
extension User: ResponseEncodable {}
extension APIToken: ResponseEncodable {}
extension CreatedAPIToken: ResponseEncodable {}
extension CreatedUser: ResponseEncodable {}
extension Organization: ResponseEncodable {}

extension AppRequestContext {
    /// The caller as the route group's authentication read them, not yet looked up.
    func caller() throws -> Caller {
        guard let credentials else { throw APIError.unauthenticated(Authentication.signInHint) }
        return Caller(credentials: credentials, audit: audit())
    }
}

extension Authenticator {
    /// The caller of `context`'s request, looked up in a read of its own; 401 without valid credentials.
    func principal(_ context: AppRequestContext) async throws -> Principal {
        try await principal(try context.caller())
    }
}

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

/// `/v1/users` and `/v1/tokens`.
struct UserRoutes {
    let authenticator: Authenticator
    let users: UserService
    let tokens: TokenService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("users", use: createUser)
            .get("users", use: listUsers)
            .get("users/:user_id", use: user)
            .post("tokens", use: createToken)
            .get("tokens", use: listTokens)
            .delete("tokens/:token_id", use: revokeToken)
    }

    @Sendable func createUser(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<CreatedUser> {
        let principal = try await authenticator.principal(context)
        var request = request
        let input = try await request.decodeBody(CreateUserInput.self, limit: maximumBodySize)
        return EditedResponse(status: .created, response: try await users.create(input, by: principal, audit: context.audit()))
    }

    @Sendable func listUsers(_ request: Request, context: AppRequestContext) async throws -> Page<User> {
        let principal = try await authenticator.principal(context)
        let limit = try Validate.limit(request.query("limit"))
        return Page(try await users.list(by: principal, after: request.query("after"), limit: limit), limit: limit, cursor: \.id)
    }

    @Sendable func user(_ request: Request, context: AppRequestContext) async throws -> User {
        let principal = try await authenticator.principal(context)
        return try await users.user(id: try context.parameters.require("user_id"), by: principal)
    }

    @Sendable func createToken(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<CreatedAPIToken> {
        let principal = try await authenticator.principal(context)
        var request = request
        let input = try await request.decodeBody(CreateTokenInput.self, limit: maximumBodySize)
        let owner = try principal.requireUser(to: "create API tokens")
        let created = try await tokens.create(input, for: owner.id, by: principal, audit: context.audit())
        return EditedResponse(status: .created, response: created)
    }

    @Sendable func listTokens(_ request: Request, context: AppRequestContext) async throws -> Page<APIToken> {
        let principal = try await authenticator.principal(context)
        let limit = try Validate.limit(request.query("limit"))
        let all = try Validate.flag(request.query("all"), name: "all")
        return Page(try await tokens.list(by: principal, all: all, after: request.query("after"), limit: limit), limit: limit, cursor: \.id)
    }

    @Sendable func revokeToken(_ request: Request, context: AppRequestContext) async throws -> APIToken {
        let principal = try await authenticator.principal(context)
        return try await tokens.revoke(id: try context.parameters.require("token_id"), by: principal, audit: context.audit())
    }
}
