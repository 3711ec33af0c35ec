import Foundation
import Hummingbird

struct PingAnswer: ResponseEncodable {
    struct Token: Codable {
        var id: String
        var name: String?
        var mode: TokenMode?
        var workspaces: [String]?
    }
    /// The app behind an app access token.
    struct AppAnswer: Codable {
        var id: String
        var name: String
        var mode: TokenMode
        var workspaces: AppWorkspaces
        var permissions: [String]
    }
    var ok = true
    var user: User?
    var token: Token?
    var app: AppAnswer?
    var authenticatedBy: String
}

struct SessionAnswer: ResponseEncodable {
    var user: User
    var expiresAt: Date
}

/// `POST /v1/sessions` (sign-in: the one route that takes callers without credentials, mounted
/// without authentication), `DELETE /v1/sessions/current` and `GET /v1/ping`.
struct SessionRoutes {
    let authenticator: Authenticator
    let sessions: SessionService
    let maximumBodySize: Int
    let secureCookies: Bool

    var signIn: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self).post("sessions", use: create)
    }

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .delete("sessions/current", use: delete)
            .get("ping", use: ping)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        var request = request
        let input = try await request.decodeBody(SignInInput.self, limit: maximumBodySize)
        let signedIn = try await sessions.signIn(email: input.email, password: input.password, audit: context.audit())
        var response = try EditedResponse(status: .created, response: SessionAnswer(user: signedIn.user, expiresAt: signedIn.expiresAt))
            .response(from: request, context: context)
        response.setCookie(cookie(value: signedIn.secret, expires: signedIn.expiresAt))
        return response
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let principal = try await authenticator.principal(context)
        try await sessions.signOut(principal, audit: context.audit())
        var response = Response(status: .noContent)
        response.setCookie(cookie(value: "", maxAge: 0))
        return response
    }

    @Sendable func ping(_ request: Request, context: AppRequestContext) async throws -> PingAnswer {
        let principal = try await authenticator.principal(context)
        if case .app(let app) = principal {
            let answer = PingAnswer.AppAnswer(
                id: app.id,
                name: app.name,
                mode: app.mode,
                workspaces: app.workspaces.map(AppWorkspaces.list) ?? .all,
                permissions: app.permissions.sorted()
            )
            return PingAnswer(user: nil, app: answer, authenticatedBy: "app")
        }
        let caller = try principal.requireUser(to: "ping")
        let token = caller.token.map { PingAnswer.Token(id: $0.id, name: $0.name, mode: $0.mode, workspaces: $0.workspaces) }
        return PingAnswer(user: caller.user, token: token, authenticatedBy: token != nil ? "api_token" : "session")
    }

    private func cookie(value: String, expires: Date? = nil, maxAge: Int? = nil) -> Cookie {
        Cookie(
            name: AuthenticationMiddleware.sessionCookie,
            value: value,
            expires: expires,
            maxAge: maxAge,
            path: "/",
            secure: secureCookies,
            httpOnly: true,
            sameSite: .lax
        )
    }
}
