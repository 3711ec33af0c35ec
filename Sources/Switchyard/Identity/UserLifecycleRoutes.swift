import Foundation
import Hummingbird

struct PasswordResetAccepted: ResponseEncodable {
    var detail: String
}

/// The lifecycle routes that take callers without credentials (mounted without authentication,
/// like sign-in): accepting an invite, asking for a password reset and using its link. The link's
/// token is the credential.
struct UserLifecycleRoutes {
    let users: UserService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("invites/:token/accept", use: acceptInvite)
            .post("password-resets", use: requestReset)
            .post("password-resets/:token", use: reset)
    }

    @Sendable func acceptInvite(_ request: Request, context: AppRequestContext) async throws -> User {
        var request = request
        let input = try await request.decodeBody(AcceptInviteInput.self, limit: maximumBodySize)
        return try await users.acceptInvite(token: try context.parameters.require("token"), input, audit: context.audit())
    }

    @Sendable func requestReset(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<PasswordResetAccepted> {
        var request = request
        let input = try await request.decodeBody(PasswordResetRequestInput.self, limit: maximumBodySize)
        try await users.requestPasswordReset(input, audit: context.audit())
        let detail = "If an active user has this email, a link to reset the password was mailed to it; it works once, for one hour."
        return EditedResponse(status: .accepted, response: PasswordResetAccepted(detail: detail))
    }

    @Sendable func reset(_ request: Request, context: AppRequestContext) async throws -> User {
        var request = request
        let input = try await request.decodeBody(PasswordResetInput.self, limit: maximumBodySize)
        return try await users.resetPassword(token: try context.parameters.require("token"), input, audit: context.audit())
    }
}
