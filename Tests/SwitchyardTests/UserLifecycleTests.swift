import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

/// The user lifecycle: invite → mail → accept → sign in; name and role changes; deactivation that
/// stops every credential on the next request; own password changes; resets from a mailed link.
@Suite("User lifecycle")
struct UserLifecycleTests {
    static let password = "correct horse battery"

    /// The token of the newest mail to `email` linking to `/console/{page}/…`, read from the mail
    /// table (the outbox API hides links' secrets).
    static func mailedToken(_ app: TestApp, to email: String, page: String) async throws -> String? {
        let messages = try await app.database.read { tx in
            try tx.query("SELECT subject, body FROM mail_messages WHERE recipient = ? ORDER BY id DESC", email)
                .map { (try $0.string("subject"), try $0.string("body")) }
        }
        for (subject, body) in messages {
            #expect(!subject.contains("syi_"), "no token in a subject")
            guard let range = body.range(of: "/console/\(page)/syi_") else { continue }
            let token = body[range.upperBound...].prefix { $0.isLetter || $0.isNumber }
            return "syi_" + token
        }
        return nil
    }

    static func mailCount(_ app: TestApp, to email: String) async throws -> Int64 {
        try await app.count("mail_messages WHERE recipient = '\(email)'")
    }

    /// Signs in; the session cookie (`sy_session=…`) or nil when refused.
    static func signIn(_ app: TestApp, _ email: String, _ password: String = password) async throws -> String? {
        let answer = try await app.request(.post, "/v1/sessions", json: #"{"email": "\#(email)", "password": "\#(password)"}"#)
        guard answer.status == .created, let cookie = answer.headers[.setCookie] else { return nil }
        return String(cookie.split(separator: ";")[0])
    }

    static func ping(_ app: TestApp, cookie: String) async throws -> TestResponse {
        try await app.request(.get, "/v1/ping", headers: [.cookie: cookie])
    }

    static func activity(_ app: TestApp, _ action: String) async throws -> [[String: Any]] {
        let log = try await app.request(.get, "/v1/activity?action=\(action)", token: app.ownerToken)
        return log["data"] as? [[String: Any]] ?? []
    }

    @Test("an invited user gets a mail, sets a password from its link, then signs in; the link works once")
    func inviteAndAccept() async throws {
        try await TestApp.run { app in
            let created = try await app.request(
                .post,
                "/v1/users",
                token: app.ownerToken,
                json: #"{"email": "ann@example.com", "role": "member", "invite": true}"#
            )
            #expect(created.status == .created, "\(created.body)")
            #expect(created["invited"] as? Bool == true)
            #expect(created["password"] == nil, "an invite never carries a password")
            let user = try #require(created["user"] as? [String: Any])
            #expect(user["status"] as? String == "invited")
            let id = try #require(user["id"] as? String)
            #expect(try await Self.signIn(app, "ann@example.com", "") == nil)

            let token = try #require(try await Self.mailedToken(app, to: "ann@example.com", page: "invite"))
            let accepted = try await app.request(
                .post,
                "/v1/invites/\(token)/accept",
                json: #"{"password": "\#(Self.password)", "name": "Ann Lee"}"#
            )
            #expect(accepted.status == .ok, "\(accepted.body)")
            #expect(accepted["status"] as? String == "active")
            #expect(accepted["name"] as? String == "Ann Lee")
            let cookie = try #require(try await Self.signIn(app, "ann@example.com"))
            #expect(try await Self.ping(app, cookie: cookie).status == .ok)

            try await app.request(.post, "/v1/invites/\(token)/accept", json: #"{"password": "another password 1"}"#)
                .expectProblem(.gone, "link-expired")
            #expect(try await Self.signIn(app, "ann@example.com", "another password 1") == nil, "a refused link changes nothing")

            let invited = try #require(try await Self.activity(app, "user.invited").first)
            #expect(invited["target_type"] as? String == "user")
            #expect(invited["target_id"] as? String == id)
            #expect(invited["target_label"] as? String == "ann@example.com")
            let accept = try #require(try await Self.activity(app, "user.password_changed").first)
            #expect(accept["actor_id"] as? String == id)
            let log = try await app.request(.get, "/v1/activity?limit=200", token: app.ownerToken)
            #expect(!log.body.contains("syi_") && !log.body.contains(Self.password))
        }
    }

    @Test("an invite with a password, or a bad acceptance, is refused and changes nothing")
    func inviteBadInput() async throws {
        try await TestApp.run { app in
            let users = try await app.count("users")
            try await app.request(
                .post,
                "/v1/users",
                token: app.ownerToken,
                json: #"{"email": "ann@example.com", "role": "member", "invite": true, "password": "a good password"}"#
            ).expectProblem(.unprocessableContent, "validation-failed", field: "password")
            #expect(try await app.count("users") == users)
            #expect(try await app.count("invites") == 0)

            try await app.request(.post, "/v1/users", token: app.ownerToken, json: #"{"email": "ann@example.com", "role": "member", "invite": true}"#)
            let token = try #require(try await Self.mailedToken(app, to: "ann@example.com", page: "invite"))
            try await app.request(.post, "/v1/invites/\(token)/accept", json: #"{"password": "short"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "password")
            try await app.request(.post, "/v1/invites/\(token)/accept", json: #"{"password": "\#(Self.password)", "admin": true}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "admin")
            try await app.request(.post, "/v1/invites/syi_junk/accept", json: #"{"password": "\#(Self.password)"}"#)
                .expectProblem(.notFound, "not-found")
            // The link still works after the refusals.
            #expect(try await app.request(.post, "/v1/invites/\(token)/accept", json: #"{"password": "\#(Self.password)"}"#).status == .ok)
        }
    }

    @Test("an invite expires after 3 days; sending it again replaces the old link")
    func inviteExpiresAndResend() async throws {
        try await TestApp.run { app in
            let created = try await app.request(
                .post,
                "/v1/users",
                token: app.ownerToken,
                json: #"{"email": "ann@example.com", "role": "member", "invite": true}"#
            )
            let id = try #require((created["user"] as? [String: Any])?["id"] as? String)
            let first = try #require(try await Self.mailedToken(app, to: "ann@example.com", page: "invite"))
            app.clock.advance(by: 3 * 24 * 3600 - 60)
            // Still open a minute before the end: checked without using it.
            try await app.request(.post, "/v1/invites/\(first)/accept", json: #"{"password": "short"}"#)
                .expectProblem(.unprocessableContent, "validation-failed")
            app.clock.advance(by: 61)
            let expired = try await app.request(.post, "/v1/invites/\(first)/accept", json: #"{"password": "\#(Self.password)"}"#)
            expired.expectProblem(.gone, "link-expired")
            #expect((expired["detail"] as? String)?.contains("expired") == true)

            let resent = try await app.request(.post, "/v1/users/\(id)/invite", token: app.ownerToken)
            #expect(resent.status == .ok, "\(resent.body)")
            let second = try #require(try await Self.mailedToken(app, to: "ann@example.com", page: "invite"))
            #expect(second != first)
            app.clock.advance(by: 60)
            let third = try await app.request(.post, "/v1/users/\(id)/invite", token: app.ownerToken)
            #expect(third.status == .ok)
            let latest = try #require(try await Self.mailedToken(app, to: "ann@example.com", page: "invite"))
            let replaced = try await app.request(.post, "/v1/invites/\(second)/accept", json: #"{"password": "\#(Self.password)"}"#)
            replaced.expectProblem(.gone, "link-expired")
            #expect((replaced["detail"] as? String)?.contains("replaced") == true)
            #expect(try await app.request(.post, "/v1/invites/\(latest)/accept", json: #"{"password": "\#(Self.password)"}"#).status == .ok)
            try await app.request(.post, "/v1/users/\(id)/invite", token: app.ownerToken).expectProblem(.conflict, "conflict")
            #expect(try await Self.activity(app, "user.invited").count == 3)
        }
    }

    @Test("PATCH: owners and admins change others, anyone their own name; only owners make owners; the last owner stays")
    func patchRules() async throws {
        try await TestApp.run { app in
            let owner = try #require(try await app.services.users.user(email: "owner@example.com"))
            let (admin, adminToken) = try await app.makeUser("adam@example.com", role: .admin)
            let (member, memberToken) = try await app.makeUser("mia@example.com", role: .member)

            let renamed = try await app.request(.patch, "/v1/users/\(member.id)", token: memberToken, json: #"{"name": "Mia M"}"#)
            #expect(renamed.status == .ok && renamed["name"] as? String == "Mia M", "\(renamed.body)")
            try await app.request(.patch, "/v1/users/\(member.id)", token: memberToken, json: #"{"role": "admin"}"#)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.patch, "/v1/users/\(admin.id)", token: memberToken, json: #"{"name": "X"}"#)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.patch, "/v1/users/\(member.id)", token: adminToken, json: #"{"role": "owner"}"#)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.patch, "/v1/users/\(owner.id)", token: adminToken, json: #"{"role": "member"}"#)
                .expectProblem(.forbidden, "forbidden")
            let promoted = try await app.request(.patch, "/v1/users/\(member.id)", token: adminToken, json: #"{"role": "integration_admin"}"#)
            #expect(promoted["role"] as? String == "integration_admin")

            let last = try await app.request(.patch, "/v1/users/\(owner.id)", token: app.ownerToken, json: #"{"role": "admin"}"#)
            last.expectProblem(.conflict, "conflict", field: "role")
            #expect((last["detail"] as? String)?.contains("last active owner") == true)
            #expect(try await app.services.users.user(email: "owner@example.com")?.role == .owner)

            #expect(try await app.request(.patch, "/v1/users/\(admin.id)", token: app.ownerToken, json: #"{"role": "owner"}"#).status == .ok)
            let demoted = try await app.request(.patch, "/v1/users/\(owner.id)", token: app.ownerToken, json: #"{"role": "admin"}"#)
            #expect(demoted.status == .ok && demoted["role"] as? String == "admin", "\(demoted.body)")

            try await app.request(.patch, "/v1/users/\(member.id)", token: adminToken, json: #"{}"#)
                .expectProblem(.unprocessableContent, "validation-failed")
            try await app.request(.patch, "/v1/users/\(member.id)", token: adminToken, json: #"{"role": "emperor"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "role")
            try await app.request(.patch, "/v1/users/\(member.id)", token: adminToken, json: #"{"name": "  "}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "name")
            try await app.request(.patch, "/v1/users/usr_nobody", token: adminToken, json: #"{"name": "X"}"#)
                .expectProblem(.notFound, "not-found")

            let updates = try await Self.activity(app, "user.updated")
            #expect(updates.count == 4)
            #expect(
                updates.contains {
                    ($0["detail"] as? String) == "role member → integration_admin" && $0["target_label"] as? String == "mia@example.com"
                }
            )
            #expect(updates.contains { ($0["detail"] as? String) == "name mia → Mia M" })
        }
    }

    @Test("deactivation stops the user's token and session on the next request and refuses sign-in; reactivation lets them in again")
    func deactivateAndReactivate() async throws {
        try await TestApp.run { app in
            let (admin, adminToken) = try await app.makeUser("adam@example.com", role: .admin)
            let (member, memberToken) = try await app.makeUser("mia@example.com", role: .member)
            let cookie = try #require(try await Self.signIn(app, "mia@example.com"))
            #expect(try await app.request(.get, "/v1/ping", token: memberToken).status == .ok)

            let deactivated = try await app.request(.post, "/v1/users/\(member.id)/deactivate", token: adminToken)
            #expect(deactivated.status == .ok, "\(deactivated.body)")
            #expect(deactivated["status"] as? String == "deactivated")
            #expect(deactivated["deactivated_at"] is String)

            let byToken = try await app.request(.get, "/v1/ping", token: memberToken)
            byToken.expectProblem(.unauthorized, "unauthenticated")
            #expect((byToken["detail"] as? String)?.contains("mia@example.com is deactivated") == true)
            try await Self.ping(app, cookie: cookie).expectProblem(.unauthorized, "unauthenticated")
            #expect(try await app.count("sessions WHERE user_id = '\(member.id)'") == 0)

            let refused = try await app.request(.post, "/v1/sessions", json: #"{"email": "mia@example.com", "password": "\#(Self.password)"}"#)
            refused.expectProblem(.unauthorized, "unauthenticated")
            #expect(refused["detail"] as? String == "The email or password is wrong.")
            let failures = try await Self.activity(app, "session.created")
            #expect(failures.contains { $0["detail"] as? String == "user deactivated" && $0["outcome"] as? String == "failure" })

            try await app.request(.post, "/v1/users/\(admin.id)/deactivate", token: adminToken).expectProblem(.forbidden, "forbidden")
            let owner = try #require(try await app.services.users.user(email: "owner@example.com"))
            try await app.request(.post, "/v1/users/\(owner.id)/deactivate", token: adminToken).expectProblem(.forbidden, "forbidden")
            try await app.request(.post, "/v1/users/\(member.id)/reactivate", token: memberToken).expectProblem(.unauthorized, "unauthenticated")
            let listed = try await app.request(.get, "/v1/users/\(member.id)", token: adminToken)
            #expect(listed["status"] as? String == "deactivated")

            let reactivated = try await app.request(.post, "/v1/users/\(member.id)/reactivate", token: adminToken)
            #expect(reactivated.status == .ok && reactivated["status"] as? String == "active", "\(reactivated.body)")
            #expect(reactivated["deactivated_at"] == nil)
            #expect(try await Self.ping(app, cookie: cookie).status == .unauthorized, "the ended session stays ended")
            let again = try #require(try await Self.signIn(app, "mia@example.com"))
            #expect(try await Self.ping(app, cookie: again).status == .ok)
            #expect(try await app.request(.get, "/v1/ping", token: memberToken).status == .ok, "unrevoked tokens work again")

            let entry = try #require(try await Self.activity(app, "user.deactivated").first)
            #expect(entry["target_id"] as? String == member.id && entry["target_label"] as? String == "mia@example.com")
            #expect(entry["detail"] as? String == "1 session ended")
            #expect(try await Self.activity(app, "user.reactivated").count == 1)
        }
    }

    @Test("a deactivated user's portal session is refused by the query itself, with the reason")
    func portalSessionRefused() async throws {
        try await TestApp.run { app in
            let (member, _) = try await app.makeUser("dev@example.com", role: .developer)
            let (_, adminToken) = try await app.makeUser("adam@example.com", role: .admin)
            #expect(try await app.request(.post, "/v1/users/\(member.id)/deactivate", token: adminToken).status == .ok)
            // A portal session written alongside the deactivation (it deleted the ones it saw).
            let now = app.clock.now
            try await app.database.write { tx in
                try SessionStore.insertSession(
                    tx,
                    id: ID.make("ses", at: now),
                    userID: member.id,
                    secretHash: "portal-hash",
                    createdAt: now,
                    expiresAt: now.addingTimeInterval(3600),
                    kind: "portal"
                )
            }
            await #expect(throws: APIError.self) {
                try await app.database.read { tx in try SessionStore.sessionWithUser(tx, secretHash: "portal-hash", kind: "portal") }
            }
            do {
                _ = try await app.database.read { tx in try SessionStore.sessionWithUser(tx, secretHash: "portal-hash", kind: "portal") }
            } catch let error as APIError {
                #expect(error.status == .unauthorized && error.detail.contains("is deactivated"))
            }
        }
    }
}
