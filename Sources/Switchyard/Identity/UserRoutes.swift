import Foundation
import Hummingbird

/// `/v1/users` (and the lifecycle: change, deactivate, reactivate, invite again, own password)
/// and `/v1/tokens`.
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
            .patch("users/:user_id", use: updateUser)
            .post("users/:user_id/deactivate", use: deactivateUser)
            .post("users/:user_id/reactivate", use: reactivateUser)
            .post("users/:user_id/invite", use: resendInvite)
            .post("users/me/password", use: changePassword)
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

    @Sendable func updateUser(_ request: Request, context: AppRequestContext) async throws -> User {
        let principal = try await authenticator.principal(context)
        var request = request
        let input = try await request.decodeBody(UpdateUserInput.self, limit: maximumBodySize)
        return try await users.update(id: try context.parameters.require("user_id"), input, by: principal, audit: context.audit())
    }

    @Sendable func deactivateUser(_ request: Request, context: AppRequestContext) async throws -> User {
        let principal = try await authenticator.principal(context)
        return try await users.deactivate(id: try context.parameters.require("user_id"), by: principal, audit: context.audit())
    }

    @Sendable func reactivateUser(_ request: Request, context: AppRequestContext) async throws -> User {
        let principal = try await authenticator.principal(context)
        return try await users.reactivate(id: try context.parameters.require("user_id"), by: principal, audit: context.audit())
    }

    @Sendable func resendInvite(_ request: Request, context: AppRequestContext) async throws -> User {
        let principal = try await authenticator.principal(context)
        return try await users.resendInvite(id: try context.parameters.require("user_id"), by: principal, audit: context.audit())
    }

    @Sendable func changePassword(_ request: Request, context: AppRequestContext) async throws -> User {
        let principal = try await authenticator.principal(context)
        var request = request
        let input = try await request.decodeBody(ChangePasswordInput.self, limit: maximumBodySize)
        return try await users.changePassword(input, by: principal, audit: context.audit())
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
