import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Switchyard

/// A browser-like client of the portal: it keeps the `sy_portal` cookie the portal sets. A class,
/// so that a test's requests share the cookie as a browser tab would; used from one task only.
final class PortalClient {
    let app: TestApp
    var cookie: String?

    init(app: TestApp) { self.app = app }

    @discardableResult
    func request(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = headers
        if let cookie { fields[.cookie] = cookie }
        let response = try await app.request(method, uri, json: json, headers: fields)
        if let set = response.headers[.setCookie], set.hasPrefix("\(PortalAuthenticationMiddleware.cookie)=") {
            let pair = String(set.split(separator: ";")[0])
            cookie = pair.hasSuffix("=") ? nil : pair
        }
        return response
    }
}

@Suite("Developer portal")
struct PortalTests {
    static let password = "correct horse battery"

    /// An unverified app and an invite to it for its developer.
    static func invited(
        _ app: TestApp,
        _ name: String = "Acme Ledger",
        email: String = "dev@partner.example"
    ) async throws -> (
        made: TestApp.MadeApp, token: String
    ) {
        let made = try await app.makeApp(name, developerEmail: email, verified: false)
        let now = app.clock.now
        let token = try await app.database.write { tx in try Invites.issue(tx, kind: .developer, email: email, appID: made.app.id, now: now).token }
        return (made, token)
    }

    /// A developer signed up from a fresh invite, with their unverified app.
    static func signedUp(_ app: TestApp) async throws -> (portal: PortalClient, made: TestApp.MadeApp) {
        let (made, token) = try await invited(app)
        let portal = PortalClient(app: app)
        let signUp = try await portal.request(.post, "/portal/api/signup", json: #"{"invite_token": "\#(token)", "password": "\#(password)"}"#)
        #expect(signUp.status == .created, "body: \(signUp.body)")
        return (portal, made)
    }

    static func entries(_ app: TestApp, _ action: String, target: String? = nil) async throws -> [ActivityEntry] {
        try await app.services.activity.list(ActivityFilter(action: action, targetID: target, limit: 200))
    }

    static func failures(_ app: TestApp, _ appID: String) async throws -> Int64 {
        try await app.database.read { tx in try tx.queryOne("SELECT otp_failures FROM apps WHERE id = ?", appID)?.int("otp_failures") ?? -1 }
    }

    @Test("sign-up from an invite sets the portal cookie, links the app and lists it; the invite works once")
    func signUpListsApp() async throws {
        try await TestApp.run { app in
            let (made, token) = try await Self.invited(app)
            let portal = PortalClient(app: app)
            let invite = try await portal.request(.get, "/portal/api/invites/\(token)")
            #expect(invite.status == .ok, "body: \(invite.body)")
            #expect((invite["app"] as? [String: Any])?["name"] as? String == "Acme Ledger")
            #expect(invite["email"] as? String == "dev@partner.example")
            #expect(invite["has_account"] as? Bool == false)
            #expect(invite["expires_at"] is String)

            let signUp = try await portal.request(
                .post,
                "/portal/api/signup",
                json: #"{"invite_token": "\#(token)", "password": "\#(Self.password)"}"#
            )
            #expect(signUp.status == .created, "body: \(signUp.body)")
            let developer = try #require(signUp["developer"] as? [String: Any])
            #expect(developer["email"] as? String == "dev@partner.example")
            #expect(developer["name"] as? String == "dev")
            let setCookie = try #require(signUp.headers[.setCookie])
            #expect(setCookie.hasPrefix("sy_portal=syp_"))
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/portal"))
            #expect(!setCookie.contains("Secure"), "http public URL: \(setCookie)")

            let list = try await portal.request(.get, "/portal/api/apps")
            #expect(list.status == .ok, "body: \(list.body)")
            let apps = try #require(list["data"] as? [[String: Any]])
            #expect(apps.map { $0["id"] as? String } == [made.app.id])
            let detail = try await portal.request(.get, "/portal/api/apps/\(made.app.id)")
            #expect(detail["status"] as? String == "pending_verification")
            #expect(detail["verified"] as? Bool == false)
            #expect(detail["client_id"] as? String == made.app.clientId)
            #expect((detail["workspaces"] as? [[String: Any]])?.first?["name"] as? String == app.liveWorkspace.name)
            #expect((detail["verification"] as? [String: Any])?["tries_left"] as? Int == 5)
            let base = app.services.configuration.publicURL
            #expect(detail["token_endpoint"] as? String == "\(base)/oauth/token")
            #expect((detail["links"] as? [String: Any])?["api_reference"] as? String == "\(base)/openapi.yaml")
            #expect(!detail.body.contains("otp") && !detail.body.contains("secret_hash"))

            let user = try #require(try await app.services.users.user(email: "dev@partner.example"))
            #expect(user.role == .developer)
            let stored = try #require(try await app.database.read { tx in try AppStore.app(tx, id: made.app.id) })
            #expect(stored.developer?.userId == user.id && stored.developer?.linkedAt != nil)
            let linked = try await Self.entries(app, "app.developer_linked", target: made.app.id)
            #expect(linked.count == 1 && linked.first?.targetType == "app" && linked.first?.targetLabel == "Acme Ledger")
            #expect(linked.first?.actorId == user.id)
            #expect(try await Self.entries(app, "portal.signed_up", target: user.id).count == 1)

            // Before verification no secret, and a used invite is gone.
            try await portal.request(.post, "/portal/api/apps/\(made.app.id)/secrets").expectProblem(.conflict, "app-not-verified")
            #expect(try await app.count("app_secrets") == 0)
            let users = try await app.count("users")
            let other = PortalClient(app: app)
            try await other.request(.post, "/portal/api/signup", json: #"{"invite_token": "\#(token)", "password": "another password"}"#)
                .expectProblem(.gone, "link-expired")
            #expect(try await app.count("users") == users)
            try await other.request(.get, "/portal/api/invites/\(token)").expectProblem(.gone, "link-expired")
            try await other.request(.get, "/portal/api/invites/syi_nothing").expectProblem(.notFound, "not-found")
            #expect(try await Self.entries(app, "portal.signed_up").contains { $0.outcome == .failure })

            #expect(try await portal.request(.post, "/portal/api/logout").status == .noContent)
            #expect(try await Self.entries(app, "portal.signed_out", target: user.id).count == 1)
            try await portal.request(.get, "/portal/api/apps").expectProblem(.unauthorized, "unauthenticated")
        }
    }

    @Test("the portal cookie is Secure when the public URL is https; a short password is refused and uses no invite")
    func secureCookieAndPassword() async throws {
        try await TestApp.run(configure: { $0.publicURL = "https://switchyard.example" }) { app in
            let (_, token) = try await Self.invited(app)
            let portal = PortalClient(app: app)
            try await portal.request(.post, "/portal/api/signup", json: #"{"invite_token": "\#(token)", "password": "short"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "password")
            let signUp = try await portal.request(
                .post,
                "/portal/api/signup",
                json: #"{"invite_token": "\#(token)", "password": "\#(Self.password)", "name": "Dev One"}"#
            )
            #expect(signUp.status == .created, "body: \(signUp.body)")
            #expect(signUp.headers[.setCookie]?.contains("Secure") == true)
            #expect((signUp["developer"] as? [String: Any])?["name"] as? String == "Dev One")
        }
    }

    @Test("five wrong one-time passwords lock the app, counting down in the detail; then even the right one is 409")
    func wrongPasswordsLock() async throws {
        try await TestApp.run { app in
            let (portal, made) = try await Self.signedUp(app)
            let uri = "/portal/api/apps/\(made.app.id)/verify"
            let right = try #require(made.oneTimePassword)
            let wrong = right == "00000000" ? "11111111" : "00000000"
            for attempt in 1...5 {
                let answer = try await portal.request(.post, uri, json: #"{"one_time_password": "\#(wrong)"}"#)
                answer.expectProblem(.unprocessableContent, "one-time-password-wrong", field: "one_time_password")
                let detail = answer["detail"] as? String ?? ""
                let left = 5 - attempt
                #expect(left == 0 ? detail.contains("last try") : detail.contains("\(left) \(left == 1 ? "try" : "tries") left"), "\(detail)")
                #expect(try await Self.failures(app, made.app.id) == Int64(attempt))
            }
            try await portal.request(.post, uri, json: #"{"one_time_password": "\#(right)"}"#).expectProblem(.conflict, "one-time-password-unusable")
            #expect(try await Self.failures(app, made.app.id) == 5)
            let detail = try await portal.request(.get, "/portal/api/apps/\(made.app.id)")
            #expect(detail["status"] as? String == "pending_verification")
            #expect((detail["verification"] as? [String: Any])?["locked"] as? Bool == true)
            let refused = try await Self.entries(app, "app.verification_failed", target: made.app.id)
            #expect(refused.count == 6 && refused.allSatisfy { $0.outcome == .failure && $0.targetLabel == "Acme Ledger" && $0.targetType == "app" })

            // An admin's reset (new password, count back to 0) opens it again.
            let fresh = "24681357"
            let expires = app.clock.now.addingTimeInterval(3 * 86_400)
            try await app.database.write { tx in
                try AppStore.setOneTimePassword(
                    tx,
                    id: made.app.id,
                    hash: AppStore.otpDigest(appID: made.app.id, password: fresh),
                    expiresAt: expires
                )
            }
            let verified = try await portal.request(.post, uri, json: #"{"one_time_password": "2468 1357"}"#)
            #expect(verified.status == .ok, "body: \(verified.body)")
        }
    }

    @Test("a one-time password expires after 3 days: 409, and the failure count stays")
    func passwordExpires() async throws {
        try await TestApp.run { app in
            let (portal, made) = try await Self.signedUp(app)
            app.clock.advance(by: 3 * 86_400 + 1)
            let right = try #require(made.oneTimePassword)
            try await portal.request(.post, "/portal/api/apps/\(made.app.id)/verify", json: #"{"one_time_password": "\#(right)"}"#)
                .expectProblem(.conflict, "one-time-password-unusable")
            #expect(try await Self.failures(app, made.app.id) == 0)
            let stored = try #require(try await app.database.read { tx in try AppStore.app(tx, id: made.app.id) })
            #expect(stored.status == .pendingVerification && stored.developer?.verifiedAt == nil)
        }
    }

    @Test("verifying activates the app and forgets the password; at most two client secrets, deleted ones free a place")
    func verifyAndSecrets() async throws {
        try await TestApp.run { app in
            let (portal, made) = try await Self.signedUp(app)
            let base = "/portal/api/apps/\(made.app.id)"
            let right = try #require(made.oneTimePassword)
            let verified = try await portal.request(.post, "\(base)/verify", json: #"{"one_time_password": "\#(right)"}"#)
            #expect(verified.status == .ok, "body: \(verified.body)")
            #expect(verified["status"] as? String == "active" && verified["verified"] as? Bool == true)
            #expect(verified["verified_at"] is String && verified["verification"] == nil)
            let hash = try await app.database.read { tx in try AppStore.otpHash(tx, id: made.app.id) }
            #expect(hash == nil)
            #expect(try await Self.entries(app, "app.verified", target: made.app.id).first?.targetLabel == "Acme Ledger")
            try await portal.request(.post, "\(base)/verify", json: #"{"one_time_password": "\#(right)"}"#).expectProblem(.conflict, "conflict")

            var secrets: [[String: Any]] = []
            for _ in 0..<2 {
                let created = try await portal.request(.post, "\(base)/secrets")
                #expect(created.status == .created, "body: \(created.body)")
                let secret = try #require(created["secret"] as? String)
                #expect(TokenFormat.isWellFormed(secret, prefixes: ["syc_"]))
                let record = try #require(created["app_secret"] as? [String: Any])
                #expect(record["last_four"] as? String == String(secret.suffix(4)))
                secrets.append(record)
            }
            try await portal.request(.post, "\(base)/secrets").expectProblem(.conflict, "conflict")
            #expect(try await app.count("app_secrets") == 2)
            let listed = try await portal.request(.get, base)
            #expect((listed["secrets"] as? [[String: Any]])?.map { $0["id"] as? String } == secrets.map { $0["id"] as? String })
            #expect(!listed.body.contains("syc_"))

            let first = try #require(secrets[0]["id"] as? String)
            #expect(try await portal.request(.delete, "\(base)/secrets/\(first)").status == .noContent)
            try await portal.request(.delete, "\(base)/secrets/\(first)").expectProblem(.notFound, "not-found")
            #expect(try await portal.request(.post, "\(base)/secrets").status == .created)
            #expect(try await Self.entries(app, "app.secret_created", target: made.app.id).filter { $0.outcome == .success }.count == 3)
            #expect(try await Self.entries(app, "app.secret_created", target: made.app.id).filter { $0.outcome == .failure }.count == 1)
            #expect(try await Self.entries(app, "app.secret_deleted", target: made.app.id).first?.targetLabel == "Acme Ledger")
        }
    }

    @Test("a state-changing portal request from another site is refused and changes nothing; one without either header passes")
    func crossSiteRefused() async throws {
        try await TestApp.run { app in
            let (portal, made) = try await Self.signedUp(app)
            let uri = "/portal/api/apps/\(made.app.id)/verify"
            let right = try #require(made.oneTimePassword)
            let body = #"{"one_time_password": "\#(right)"}"#
            try await portal.request(.post, uri, json: body, headers: [.origin: "https://evil.example"])
                .expectProblem(.forbidden, "cross-site-request")
            try await portal.request(.post, uri, json: body, headers: [.secFetchSite: "cross-site"])
                .expectProblem(.forbidden, "cross-site-request")
            #expect(try await Self.failures(app, made.app.id) == 0)
            let stored = try #require(try await app.database.read { tx in try AppStore.app(tx, id: made.app.id) })
            #expect(stored.status == .pendingVerification)
            // Reading from anywhere is fine; the portal's own origin, and no header at all, may change things.
            #expect(try await portal.request(.get, "/portal/api/apps", headers: [.origin: "https://evil.example"]).status == .ok)
            let origin = try #require(AuthenticationMiddleware.origin(of: app.services.configuration.publicURL))
            let verified = try await portal.request(.post, uri, json: body, headers: [.origin: origin, .secFetchSite: "same-origin"])
            #expect(verified.status == .ok, "body: \(verified.body)")
            #expect(try await portal.request(.post, "/portal/api/apps/\(made.app.id)/secrets").status == .created)
            // A forged sign-up is refused too, and uses no invite.
            let (_, token) = try await Self.invited(app, "Other App", email: "other@partner.example")
            let other = PortalClient(app: app)
            try await other.request(
                .post,
                "/portal/api/signup",
                json: #"{"invite_token": "\#(token)", "password": "\#(Self.password)"}"#,
                headers: [.origin: "https://evil.example"]
            ).expectProblem(.forbidden, "cross-site-request")
            #expect(try await other.request(.get, "/portal/api/invites/\(token)").status == .ok)
        }
    }

    @Test("the portal cookie opens nothing under /v1, and console credentials open nothing of the portal")
    func credentialsStayApart() async throws {
        try await TestApp.run { app in
            let portal = try await Self.signedUp(app).portal
            let portalCookie = try #require(portal.cookie)
            let secret = String(portalCookie.dropFirst("sy_portal=".count))
            try await app.request(.get, "/v1/ping", headers: [.cookie: portalCookie]).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/ping", headers: [.cookie: "sy_session=\(secret)"]).expectProblem(.unauthorized, "unauthenticated")
            // Even a developer's own console session would reach no data (Role.readers), and the
            // console's cookie is no portal session.
            _ = try await app.makeUser("ada@example.com", role: .admin)
            let signIn = try await app.request(.post, "/v1/sessions", json: #"{"email": "ada@example.com", "password": "\#(Self.password)"}"#)
            let consoleCookie = try #require(signIn.headers[.setCookie].map { String($0.split(separator: ";")[0]) })
            let consoleSecret = String(consoleCookie.dropFirst("sy_session=".count))
            try await app.request(.get, "/portal/api/apps", headers: [.cookie: consoleCookie]).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/portal/api/apps", headers: [.cookie: "sy_portal=\(consoleSecret)"])
                .expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/portal/api/apps", token: app.ownerToken).expectProblem(.unauthorized, "unauthenticated")
            // An admin cannot sign in to the portal.
            try await app.request(.post, "/portal/api/login", json: #"{"email": "ada@example.com", "password": "\#(Self.password)"}"#)
                .expectProblem(.forbidden, "forbidden")
        }
    }

    @Test("sign-up with an email that has an account is 409 saying to sign in; signing in with the invite accepts it")
    func existingAccountSignsIn() async throws {
        try await TestApp.run { app in
            let (portal, first) = try await Self.signedUp(app)
            try await portal.request(.post, "/portal/api/logout")
            let (second, token) = try await Self.invited(app, "Acme Payroll")
            let browser = PortalClient(app: app)
            let invite = try await browser.request(.get, "/portal/api/invites/\(token)")
            #expect(invite["has_account"] as? Bool == true)
            let refused = try await browser.request(
                .post,
                "/portal/api/signup",
                json: #"{"invite_token": "\#(token)", "password": "\#(Self.password)"}"#
            )
            refused.expectProblem(.conflict, "conflict")
            #expect((refused["detail"] as? String)?.contains("sign in") == true)
            #expect(browser.cookie == nil)
            // Nothing changed: the invite still opens, the app is not linked.
            #expect(try await browser.request(.get, "/portal/api/invites/\(token)").status == .ok)

            try await browser.request(.post, "/portal/api/login", json: #"{"email": "dev@partner.example", "password": "wrong password!"}"#)
                .expectProblem(.unauthorized, "unauthenticated")
            let login = try await browser.request(
                .post,
                "/portal/api/login",
                json: #"{"email": "Dev@Partner.example", "password": "\#(Self.password)", "invite_token": "\#(token)"}"#
            )
            #expect(login.status == .ok, "body: \(login.body)")
            #expect(browser.cookie?.hasPrefix("sy_portal=syp_") == true)
            let apps = try await browser.request(.get, "/portal/api/apps")
            #expect(Set((apps["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []) == [first.app.id, second.app.id])
            #expect(try await Self.entries(app, "app.developer_linked", target: second.app.id).first?.targetLabel == "Acme Payroll")
            #expect(try await Self.entries(app, "portal.signed_in").contains { $0.outcome == .success })
            // The invite is used now.
            let again = PortalClient(app: app)
            try await again.request(
                .post,
                "/portal/api/login",
                json: #"{"email": "dev@partner.example", "password": "\#(Self.password)", "invite_token": "\#(token)"}"#
            ).expectProblem(.gone, "link-expired")
            #expect(again.cookie == nil)
        }
    }

    @Test("a revoked app leaves the developer's portal; another developer's app is not found")
    func revokedAndForeignApps() async throws {
        try await TestApp.run { app in
            let (portal, made) = try await Self.signedUp(app)
            let foreign = try await app.makeApp("Someone Else's", developerEmail: "else@partner.example")
            try await portal.request(.get, "/portal/api/apps/\(foreign.app.id)").expectProblem(.notFound, "not-found")
            try await portal.request(.post, "/portal/api/apps/\(foreign.app.id)/secrets").expectProblem(.notFound, "not-found")
            var revoked = try #require(try await app.database.read { tx in try AppStore.app(tx, id: made.app.id) })
            revoked.status = .revoked
            revoked.revokedAt = app.clock.now
            let stored = revoked
            try await app.database.write { tx in try AppStore.update(tx, stored) }
            try await portal.request(.get, "/portal/api/apps/\(made.app.id)").expectProblem(.notFound, "not-found")
            #expect((try await portal.request(.get, "/portal/api/apps")["data"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("the invite page names the app and email, escaped, with the calls that accept it")
    func invitePage() async throws {
        try await TestApp.run { app in
            let (_, token) = try await Self.invited(app, "Acme <Ledger> & Co")
            let page = try await app.request(.get, "/portal/invite/\(token)")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(page.body.contains("Acme &lt;Ledger&gt; &amp; Co") && !page.body.contains("<Ledger>"))
            #expect(page.body.contains("dev@partner.example") && page.body.contains("/portal/api/signup") && page.body.contains(token))
            let missing = try await app.request(.get, "/portal/invite/syi_unknown")
            #expect(missing.status == .notFound && missing.headers[.contentType] == "text/html; charset=utf-8")
        }
    }

    @Test("an invite expires after 3 days: 410 for the API and the page, and nobody is signed up")
    func inviteExpires() async throws {
        try await TestApp.run { app in
            let (_, token) = try await Self.invited(app)
            app.clock.advance(by: 3 * 86_400 + 1)
            try await app.request(.get, "/portal/api/invites/\(token)").expectProblem(.gone, "link-expired")
            #expect(try await app.request(.get, "/portal/invite/\(token)").status == .gone)
            let users = try await app.count("users")
            try await app.request(.post, "/portal/api/signup", json: #"{"invite_token": "\#(token)", "password": "\#(Self.password)"}"#)
                .expectProblem(.gone, "link-expired")
            #expect(try await app.count("users") == users)
            #expect(try await app.count("sessions") == 0)
        }
    }

    @Test("failed portal sign-ins are throttled like the console's")
    func signInThrottled() async throws {
        try await TestApp.run { app in
            _ = try await Self.signedUp(app)
            let wrong = #"{"email": "dev@partner.example", "password": "not the password"}"#
            for _ in 0..<SessionService.signInFailuresPerEmail {
                try await app.request(.post, "/portal/api/login", json: wrong).expectProblem(.unauthorized, "unauthenticated")
            }
            let throttled = try await app.request(
                .post,
                "/portal/api/login",
                json: #"{"email": "dev@partner.example", "password": "\#(Self.password)"}"#
            )
            throttled.expectProblem(.tooManyRequests, "too-many-attempts")
            #expect(throttled.headers[.retryAfter] != nil)
        }
    }
}
