import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import Switchyard

/// The AccountsIQ flow end to end, through the API only: an admin registers an app, its developer
/// joins the portal from the invite mail, verifies the app with the one-time password handed over
/// by phone, gets a client secret and tokens, and calls the API within exactly the access granted.
@Suite("Apps: the whole flow")
struct AppFlowTests {
    /// The link token of the latest invite mail to `email`.
    func inviteToken(_ app: TestApp, to email: String) async throws -> String {
        let body = try await app.database.read { tx in
            try tx.queryOne("SELECT body FROM mail_messages WHERE recipient = ? ORDER BY id DESC LIMIT 1", email)?.string("body")
        }
        let text = try #require(body)
        let range = try #require(text.range(of: "/portal/invite/"))
        return String(text[range.upperBound...].prefix { !$0.isWhitespace })
    }

    func portal(_ app: TestApp, _ method: HTTPRequest.Method, _ path: String, cookie: String?, json: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = "sy_portal=\(cookie)" }
        return try await app.request(method, path, json: json, headers: headers)
    }

    func sessionCookie(_ response: TestResponse) -> String? {
        guard let header = response.headers[.setCookie], let range = header.range(of: "sy_portal=") else { return nil }
        return String(header[range.upperBound...].prefix { $0 != ";" })
    }

    func token(_ app: TestApp, clientID: String, secret: String) async throws -> TestResponse {
        let basic = Data("\(clientID):\(secret)".utf8).base64EncodedString()
        let response = try await app.client.execute(
            uri: "/oauth/token",
            method: .post,
            headers: [.authorization: "Basic \(basic)", .contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "grant_type=client_credentials")
        )
        return TestResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    @Test("register → invite → sign up → 5 wrong passwords lock → reset → verify → secret → token → grants → PATCH → revoke")
    func accountsIQ() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.request(.post, "/v1/workspaces/\(app.sandboxWorkspace.id)/object-types", token: app.ownerToken, json: workOrderType)
            let order = try #require(try await app.createWorkOrder(#"{"number": "WO-1"}"#)["id"] as? String)
            let registered = try await app.registerApp(
                """
                {"name": "AccountsIQ Sync", "description": "Posts invoices", "category": "accounting", "access": "read_write",
                 "workspaces": ["\(app.liveWorkspace.id)", "\(app.sandboxWorkspace.id)"],
                 "permissions": ["work_order:read", "work_order:update:status=completed"], "developer_email": "dev@aiq.example"}
                """
            )
            #expect(registered.status == .created, "\(registered.body)")
            let appID = try #require(registered["id"] as? String)
            let clientID = try #require(registered["client_id"] as? String)
            _ = try #require(registered["one_time_password"] as? String)

            // The developer signs up from the invite mail.
            let invite = try await inviteToken(app, to: "dev@aiq.example")
            let signup = try await portal(
                app,
                .post,
                "/portal/api/signup",
                cookie: nil,
                json: #"{"invite_token": "\#(invite)", "password": "a long portal password"}"#
            )
            #expect(signup.status == .created, "\(signup.body)")
            let cookie = try #require(sessionCookie(signup))
            let mine = try await portal(app, .get, "/portal/api/apps", cookie: cookie)
            #expect((mine["data"] as? [[String: Any]])?.first?["id"] as? String == appID, "\(mine.body)")

            // No secret before verification; five wrong passwords lock it.
            try await portal(app, .post, "/portal/api/apps/\(appID)/secrets", cookie: cookie).expectProblem(.conflict, "app-not-verified")
            for tries in (0..<5).reversed() {
                let wrong = try await portal(
                    app,
                    .post,
                    "/portal/api/apps/\(appID)/verify",
                    cookie: cookie,
                    json: #"{"one_time_password": "00000000"}"#
                )
                wrong.expectProblem(.unprocessableContent, "one-time-password-wrong")
                #expect(wrong.body.contains(tries == 0 ? "locked" : "\(tries) tr"), "\(wrong.body)")
            }
            let locked = try await app.request(.get, "/v1/apps/\(appID)", token: app.ownerToken)
            #expect((locked["verification"] as? [String: Any])?["locked"] as? Bool == true)

            // The admin resets it; the new one, handed over by phone, verifies the app.
            let reset = try await app.request(.post, "/v1/apps/\(appID)/one-time-password", token: app.ownerToken)
            let password = try #require(reset["one_time_password"] as? String, "\(reset.body)")
            let verified = try await portal(
                app,
                .post,
                "/portal/api/apps/\(appID)/verify",
                cookie: cookie,
                json: #"{"one_time_password": "\#(password)"}"#
            )
            #expect(verified.status == .ok, "\(verified.body)")
            #expect(try await app.request(.get, "/v1/apps/\(appID)", token: app.ownerToken)["status"] as? String == "active")

            let secretAnswer = try await portal(app, .post, "/portal/api/apps/\(appID)/secrets", cookie: cookie)
            #expect(secretAnswer.status == .created, "\(secretAnswer.body)")
            let secret = try #require(secretAnswer["secret"] as? String)
            #expect(secret.hasPrefix("syc_"))

            let issued = try await token(app, clientID: clientID, secret: secret)
            #expect(issued.status == .ok, "\(issued.body)")
            let access = try #require(issued["access_token"] as? String)
            #expect(access.hasPrefix("sya_live_") && issued["expires_in"] as? Int == 3600)

            // Inside the grants, and outside them.
            let records = "\(app.workspacePath)/records/work_order"
            #expect(try await app.request(.get, "\(records)/\(order)", token: access).status == .ok)
            #expect(
                try await app.request(.patch, "\(records)/\(order)", token: access, json: #"{"fields": {"status": "completed"}}"#).status == .ok
            )
            try await app.request(.patch, "\(records)/\(order)", token: access, json: #"{"fields": {"status": "open"}}"#)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.post, records, token: access, json: #"{"fields": {"number": "WO-2"}}"#).expectProblem(.forbidden, "forbidden")
            let calls = try await app.request(.get, "/v1/apps/\(appID)/activity", token: app.ownerToken)
            let actions = (calls["data"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions.contains("app.token_issued") && actions.contains("app.verified"), "\(actions)")

            // The admin removes the live workspace: the very next call to it fails.
            let patched = try await app.request(
                .patch,
                "/v1/apps/\(appID)",
                token: app.ownerToken,
                json: #"{"workspaces": ["\#(app.sandboxWorkspace.id)"]}"#
            )
            #expect(patched.status == .ok, "\(patched.body)")
            try await app.request(.get, "\(records)/\(order)", token: access).expectProblem(.forbidden, "forbidden")
            #expect(try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)/records/work_order", token: access).status == .ok)

            // Revoke: the token and the secret are refused.
            #expect(try await app.request(.post, "/v1/apps/\(appID)/revoke", token: app.ownerToken).status == .ok)
            try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)/records/work_order", token: access)
                .expectProblem(.unauthorized, "unauthenticated")
            let refused = try await token(app, clientID: clientID, secret: secret)
            #expect(refused.status == .unauthorized && refused["error"] as? String == "invalid_client", "\(refused.body)")
            let gone = try await portal(app, .get, "/portal/api/apps", cookie: cookie)
            #expect((gone["data"] as? [[String: Any]])?.contains { $0["id"] as? String == appID && $0["status"] as? String != "revoked" } != true)
        }
    }

    @Test("the invite and the one-time password expire after 3 days (injected clock)")
    func expiries() async throws {
        try await TestApp.run { app in
            let registered = try await app.registerApp(
                """
                {"name": "Late Partner", "description": "d", "category": "crm", "access": "read", "workspaces": "*",
                 "permissions": [], "developer_email": "late@partner.example"}
                """
            )
            let appID = try #require(registered["id"] as? String)
            let password = try #require(registered["one_time_password"] as? String)
            let invite = try await inviteToken(app, to: "late@partner.example")
            app.clock.advance(by: 3 * 86_400 + 1)
            try await portal(
                app,
                .post,
                "/portal/api/signup",
                cookie: nil,
                json: #"{"invite_token": "\#(invite)", "password": "a long portal password"}"#
            )
            .expectProblem(.gone, "link-expired")
            // A new invite works; the one-time password has expired too, until an admin resets it.
            #expect(try await app.request(.post, "/v1/apps/\(appID)/developer/invite", token: app.ownerToken).status == .ok)
            let fresh = try await inviteToken(app, to: "late@partner.example")
            #expect(fresh != invite)
            try await portal(
                app,
                .post,
                "/portal/api/signup",
                cookie: nil,
                json: #"{"invite_token": "\#(invite)", "password": "a long portal password"}"#
            )
            .expectProblem(.gone, "link-expired")
            let signup = try await portal(
                app,
                .post,
                "/portal/api/signup",
                cookie: nil,
                json: #"{"invite_token": "\#(fresh)", "password": "a long portal password"}"#
            )
            #expect(signup.status == .created, "\(signup.body)")
            let cookie = try #require(sessionCookie(signup))
            try await portal(app, .post, "/portal/api/apps/\(appID)/verify", cookie: cookie, json: #"{"one_time_password": "\#(password)"}"#)
                .expectProblem(.conflict, "one-time-password-unusable")
        }
    }
}
