import Foundation
import Hummingbird

extension Workspace: ResponseEncodable {}
extension User: ResponseEncodable {}
extension APIToken: ResponseEncodable {}
extension CreatedAPIToken: ResponseEncodable {}
extension CreatedUser: ResponseEncodable {}
extension Organization: ResponseEncodable {}

struct PingAnswer: ResponseEncodable {
    struct Token: Codable {
        var id: String
        var name: String?
        var mode: TokenMode?
        var workspaces: [String]?
    }
    var ok = true
    var user: User
    var token: Token?
    var authenticatedBy: String
}

struct SessionAnswer: ResponseEncodable {
    var user: User
    var expiresAt: Date
}

/// `/v1/ping`, `/v1/sessions`, `/v1/organization`, `/v1/workspaces`, `/v1/users`, `/v1/tokens`.
struct IdentityRoutes {
    let identity: IdentityService
    let maximumBodySize: Int
    let secureCookies: Bool

    func add(to router: Router<AppRequestContext>) {
        let v1 = router.group("v1")
        v1.get("ping") { _, context in try await ping(context) }
        v1.post("sessions") { request, context in try await signIn(request, context) }
        v1.delete("sessions/current") { _, context -> Response in
            let principal = try await identity.principal(context)
            try await identity.signOut(principal, audit: context.audit(principal))
            var response = Response(status: .noContent)
            response.setCookie(
                .init(
                    name: AuthenticationMiddleware.sessionCookie,
                    value: "",
                    maxAge: 0,
                    path: "/",
                    secure: secureCookies,
                    httpOnly: true,
                    sameSite: .lax
                )
            )
            return response
        }
        v1.get("organization") { _, context in
            let principal = try await identity.principal(context)
            return try await identity.organization(by: principal)
        }

        v1.post("workspaces") { request, context -> Response in
            var request = request
            let key = try Idempotency.key(request.headers[.idempotencyKey])
            let principal = try await identity.principal(context)
            let input = try await request.decodeBody(CreateWorkspaceInput.self, limit: maximumBodySize)
            let (status, body) = try await identity.createWorkspace(input, idempotencyKey: key, by: principal, audit: context.audit(principal))
            return Response.json(status: status, body: body)
        }
        v1.get("workspaces") { request, context in
            let principal = try await identity.principal(context)
            let limit = try Validate.limit(request.query("limit"))
            let list = try await identity.listWorkspaces(by: principal, after: request.query("after"), limit: limit)
            return Page(list, limit: limit, cursor: \.id)
        }
        v1.get("workspaces/:workspace_id") { _, context in
            let principal = try await identity.principal(context)
            return try await identity.workspace(id: try context.parameters.require("workspace_id"), by: principal)
        }
        v1.patch("workspaces/:workspace_id") { request, context in
            var request = request
            let principal = try await identity.principal(context)
            let input = try await request.decodeBody(UpdateWorkspaceInput.self, limit: maximumBodySize)
            return try await identity.updateWorkspace(
                id: try context.parameters.require("workspace_id"),
                input,
                by: principal,
                audit: context.audit(principal)
            )
        }

        v1.post("users") { request, context in
            var request = request
            let principal = try await identity.principal(context)
            let input = try await request.decodeBody(CreateUserInput.self, limit: maximumBodySize)
            return EditedResponse(status: .created, response: try await identity.createUser(input, by: principal, audit: context.audit(principal)))
        }
        v1.get("users") { request, context in
            let principal = try await identity.principal(context)
            let limit = try Validate.limit(request.query("limit"))
            return Page(try await identity.listUsers(by: principal, after: request.query("after"), limit: limit), limit: limit, cursor: \.id)
        }
        v1.get("users/:user_id") { _, context in
            let principal = try await identity.principal(context)
            return try await identity.user(id: try context.parameters.require("user_id"), by: principal)
        }

        v1.post("tokens") { request, context in
            var request = request
            let principal = try await identity.principal(context)
            let input = try await request.decodeBody(CreateTokenInput.self, limit: maximumBodySize)
            let created = try await identity.createToken(input, for: principal.userID, by: principal, audit: context.audit(principal))
            return EditedResponse(status: .created, response: created)
        }
        v1.get("tokens") { request, context in
            let principal = try await identity.principal(context)
            let limit = try Validate.limit(request.query("limit"))
            let all = try Self.flag(request.query("all"), name: "all")
            return Page(
                try await identity.listTokens(by: principal, all: all, after: request.query("after"), limit: limit),
                limit: limit,
                cursor: \.id
            )
        }
        v1.delete("tokens/:token_id") { _, context in
            let principal = try await identity.principal(context)
            return try await identity.revokeToken(id: try context.parameters.require("token_id"), by: principal, audit: context.audit(principal))
        }
    }

    private func ping(_ context: AppRequestContext) async throws -> PingAnswer {
        let principal = try await identity.principal(context)
        let token = principal.tokenID.map {
            PingAnswer.Token(id: $0, name: principal.tokenName, mode: principal.tokenMode, workspaces: principal.tokenWorkspaces)
        }
        return PingAnswer(user: principal.user, token: token, authenticatedBy: principal.tokenID != nil ? "api_token" : "session")
    }

    private func signIn(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        var request = request
        let input = try await request.decodeBody(SignInInput.self, limit: maximumBodySize)
        let signedIn = try await identity.signIn(email: input.email, password: input.password, audit: context.audit(nil))
        var response = try EditedResponse(status: .created, response: SessionAnswer(user: signedIn.user, expiresAt: signedIn.expiresAt))
            .response(from: request, context: context)
        response.setCookie(
            .init(
                name: AuthenticationMiddleware.sessionCookie,
                value: signedIn.secret,
                expires: signedIn.expiresAt,
                path: "/",
                secure: secureCookies,
                httpOnly: true,
                sameSite: .lax
            )
        )
        return response
    }

    static func flag(_ value: String?, name: String) throws -> Bool {
        switch value {
        case nil, "false", "0": return false
        case "true", "1": return true
        default: throw APIError.validation("`\(name)` must be true or false.", field: name)
        }
    }
}
