import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Switchyard

/// Authentication per route group: who may call without credentials, what the session cookie may
/// do from another site, and resolvers other features plug in.
@Suite("Authentication")
struct AuthenticationTests {
    /// A session cookie for a new admin.
    static func signIn(_ app: TestApp) async throws -> String {
        _ = try await app.makeUser("ada@example.com", role: .admin)
        let signIn = try await app.request(.post, "/v1/sessions", json: #"{"email": "ada@example.com", "password": "correct horse battery"}"#)
        #expect(signIn.status == .created)
        let cookie = try #require(signIn.headers[.setCookie])
        return String(cookie.split(separator: ";")[0])
    }

    /// A form another site posts, as a browser sends it: text/plain, with the cookie and `Origin`.
    static func crossSitePost(_ app: TestApp, cookie: String?, token: String? = nil, headers extra: HTTPFields) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "text/plain"]
        if let cookie { headers[.cookie] = cookie }
        if let token { headers[.authorization] = "Bearer \(token)" }
        for field in extra { headers.append(field) }
        let response = try await app.client.execute(
            uri: "/v1/workspaces",
            method: .post,
            headers: headers,
            body: ByteBuffer(string: #"{"name": "Planted"}"#)
        )
        return TestResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    @Test("a cookie-authenticated POST from another site is refused with 403 and changes nothing")
    func crossSiteCookieRefused() async throws {
        try await TestApp.run { app in
            let cookie = try await Self.signIn(app)
            let before = try await app.count("workspaces")
            try await Self.crossSitePost(app, cookie: cookie, headers: [.origin: "https://evil.example"])
                .expectProblem(.forbidden, "cross-site-request")
            try await Self.crossSitePost(app, cookie: cookie, headers: [.secFetchSite: "cross-site"])
                .expectProblem(.forbidden, "cross-site-request")
            try await Self.crossSitePost(app, cookie: cookie, headers: [.origin: "null"])
                .expectProblem(.forbidden, "cross-site-request")
            #expect(try await app.count("workspaces") == before)
            let refusedSignOut = try await app.request(.delete, "/v1/sessions/current", headers: [.cookie: cookie, .origin: "https://evil.example"])
            refusedSignOut.expectProblem(.forbidden, "cross-site-request")
            // Reading with the cookie from anywhere stays allowed: SameSite and CORS guard answers.
            let ping = try await app.request(.get, "/v1/ping", headers: [.cookie: cookie, .origin: "https://evil.example"])
            #expect(ping.status == .ok)
        }
    }

    @Test("the console's own pages may change state with the cookie")
    func sameSiteCookieAccepted() async throws {
        try await TestApp.run { app in
            let cookie = try await Self.signIn(app)
            let origin = try #require(AuthenticationMiddleware.origin(of: app.services.configuration.publicURL))
            let created = try await Self.crossSitePost(
                app,
                cookie: cookie,
                headers: [.origin: origin, .secFetchSite: "same-origin"]
            )
            #expect(created.status == .created, "body: \(created.body)")
            // Without Origin or Sec-Fetch-Site the request is not from a browser page: SameSite=Lax guards.
            #expect(try await Self.crossSitePost(app, cookie: cookie, headers: [:]).status == .created)
        }
    }

    @Test("a bearer token is not affected: a POST without a JSON content type from anywhere works")
    func bearerUnaffected() async throws {
        try await TestApp.run { app in
            let created = try await Self.crossSitePost(app, cookie: nil, token: app.ownerToken, headers: [.origin: "https://evil.example"])
            #expect(created.status == .created, "body: \(created.body)")
        }
    }

    @Test("only sign-in takes callers without credentials; other schemes are refused; unknown paths stay 404")
    func routeGroups() async throws {
        try await TestApp.run { app in
            try await app.request(.get, "/v1/workspaces").expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.post, "/v1/workspaces", json: "{").expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/workspaces", headers: [.authorization: "Basic YTpi"]).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/nothing-here").expectProblem(.notFound, "route-not-found")
            try await app.request(.post, "/v1/sessions", json: #"{"email": "x@example.com", "password": "wrong password"}"#)
                .expectProblem(.unauthorized, "unauthenticated")
            #expect(try await app.request(.get, "/healthz").status == .ok)
        }
    }

    /// The apps issue adds app access tokens this way; here a resolver of the test's own shows that
    /// an app principal flows through a hot read and is recorded as an app.
    struct FixedAppResolver: CredentialResolver {
        func accepts(_ credentials: Credentials) -> Bool { credentials == .bearer("app-token") }
        func resolve(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication {
            .principal(.app(AppPrincipal(id: "app_1", name: "Partner", mode: .live, workspaces: nil, permissions: [])), noteUse: nil)
        }
    }

    @Test("a resolver plugged into the Authenticator produces an app principal, which roles do not admit")
    func appPrincipal() async throws {
        try await TestApp.run { app in
            let services = app.services
            let authenticator = Authenticator(
                database: services.database,
                clock: services.clock,
                activity: services.activity,
                resolvers: [FixedAppResolver(), APITokenResolver()]
            )
            let caller = Caller(credentials: .bearer("app-token"), audit: .system("test"))
            let principal = try await authenticator.read(caller) { _, principal in principal }
            #expect(principal.actorType == "app")
            #expect(principal.audit(from: .system("test")).appID == "app_1")
            #expect(throws: APIError.self) { try principal.require(Role.readers, to: "read records") }
            #expect(throws: APIError.self) { try principal.requireUser(to: "create API tokens") }
            // A personal token still resolves beside it; an unknown scheme's token is refused.
            let owner = try await authenticator.principal(Caller(credentials: .bearer(app.ownerToken), audit: .system("test")))
            #expect(owner.actorType == "api_token")
            await #expect(throws: APIError.self) {
                try await authenticator.principal(Caller(credentials: .bearer("other"), audit: .system("test")))
            }
        }
    }
}
