import Foundation
import Hummingbird

/// The developer portal's API under `/portal/api` (the `sy_portal` cookie,
/// `PortalAuthenticationMiddleware`) and the invite page `/portal/invite/{token}`.
struct PortalRoutes {
    let portal: PortalService
    let maximumBodySize: Int
    let secureCookies: Bool

    /// Under `/portal/api`, without a session: sign-up, sign-in, what an invite is for.
    var open: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("signup", use: signUp)
            .post("login", use: signIn)
            .get("invites/:token", use: invite)
    }

    /// Under `/portal/api`, for a signed-in developer.
    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("logout", use: signOut)
            .get("apps", use: apps)
            .get("apps/:app_id", use: app)
            .post("apps/:app_id/verify", use: verify)
            .post("apps/:app_id/secrets", use: createSecret)
            .delete("apps/:app_id/secrets/:secret_id", use: deleteSecret)
    }

    /// Under `/portal`: the page the invite mail links to.
    var pages: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self).get("invite/:token", use: invitePage)
    }

    @Sendable func signUp(_ request: Request, context: AppRequestContext) async throws -> Response {
        var request = request
        let input = try await request.decodeBody(PortalSignUpInput.self, limit: maximumBodySize)
        let signedIn = try await portal.signUp(input, audit: context.audit())
        return try signedInResponse(signedIn, status: .created, request: request, context: context)
    }

    @Sendable func signIn(_ request: Request, context: AppRequestContext) async throws -> Response {
        var request = request
        let input = try await request.decodeBody(PortalSignInInput.self, limit: maximumBodySize)
        let signedIn = try await portal.signIn(input, audit: context.audit())
        return try signedInResponse(signedIn, status: .ok, request: request, context: context)
    }

    @Sendable func signOut(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await portal.signOut(try caller(context))
        var response = Response(status: .noContent)
        response.setCookie(cookie(value: "", maxAge: 0))
        return response
    }

    @Sendable func invite(_ request: Request, context: AppRequestContext) async throws -> PortalInvite {
        try await portal.invite(token: try context.parameters.require("token"))
    }

    @Sendable func invitePage(_ request: Request, context: AppRequestContext) async throws -> Response {
        let token = try context.parameters.require("token")
        do {
            return PortalInvitePage.response(try await portal.invite(token: token), token: token, publicURL: portal.publicURL)
        } catch let error as APIError {
            return PortalInvitePage.response(error)
        }
    }

    @Sendable func apps(_ request: Request, context: AppRequestContext) async throws -> PortalList {
        PortalList(data: try await portal.apps(try caller(context)))
    }

    @Sendable func app(_ request: Request, context: AppRequestContext) async throws -> PortalApp {
        try await portal.app(id: try context.parameters.require("app_id"), try caller(context))
    }

    @Sendable func verify(_ request: Request, context: AppRequestContext) async throws -> PortalApp {
        var request = request
        let input = try await request.decodeBody(PortalVerifyInput.self, limit: maximumBodySize)
        return try await portal.verify(id: try context.parameters.require("app_id"), oneTimePassword: input.oneTimePassword, try caller(context))
    }

    @Sendable func createSecret(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<PortalCreatedSecret> {
        let created = try await portal.createSecret(appID: try context.parameters.require("app_id"), try caller(context))
        return EditedResponse(status: .created, response: created)
    }

    @Sendable func deleteSecret(_ request: Request, context: AppRequestContext) async throws -> Response {
        let appID = try context.parameters.require("app_id")
        try await portal.deleteSecret(appID: appID, secretID: try context.parameters.require("secret_id"), try caller(context))
        return Response(status: .noContent)
    }

    private func caller(_ context: AppRequestContext) throws -> PortalService.Caller {
        guard case .session(let secret) = context.credentials else { throw PortalService.unauthenticated(PortalService.signInHint) }
        return PortalService.Caller(secret: secret, audit: context.audit())
    }

    private func signedInResponse(
        _ signedIn: PortalService.SignedIn,
        status: HTTPResponse.Status,
        request: Request,
        context: AppRequestContext
    ) throws -> Response {
        let answer = PortalSessionAnswer(developer: PortalDeveloper(signedIn.developer), expiresAt: signedIn.expiresAt)
        var response = try EditedResponse(status: status, response: answer).response(from: request, context: context)
        response.setCookie(cookie(value: signedIn.secret, expires: signedIn.expiresAt))
        return response
    }

    /// HttpOnly, SameSite=Strict, sent only to the portal's paths; Secure when the public URL is https.
    private func cookie(value: String, expires: Date? = nil, maxAge: Int? = nil) -> Cookie {
        Cookie(
            name: PortalAuthenticationMiddleware.cookie,
            value: value,
            expires: expires,
            maxAge: maxAge,
            path: "/portal",
            secure: secureCookies,
            httpOnly: true,
            sameSite: .strict
        )
    }
}
