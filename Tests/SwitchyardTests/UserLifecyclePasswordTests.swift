import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

/// Passwords after the first: a user's own change (old password required, throttled) and resets
/// from a mailed link valid one hour. Helpers are UserLifecycleTests'.
@Suite("User lifecycle: passwords")
struct UserLifecyclePasswordTests {
    @Test("a user changes their own password with the old one; their other sessions end")
    func changeOwnPassword() async throws {
        try await TestApp.run { app in
            let (member, memberToken) = try await app.makeUser("mia@example.com", role: .member)
            let here = try #require(try await UserLifecycleTests.signIn(app, "mia@example.com"))
            let elsewhere = try #require(try await UserLifecycleTests.signIn(app, "mia@example.com"))

            let wrong = try await app.request(
                .post,
                "/v1/users/me/password",
                json: #"{"old_password": "not my password", "new_password": "a brand new password"}"#,
                headers: [.cookie: here]
            )
            wrong.expectProblem(.unprocessableContent, "validation-failed", field: "old_password")
            try await app.request(
                .post,
                "/v1/users/me/password",
                token: memberToken,
                json: #"{"old_password": "\#(UserLifecycleTests.password)", "new_password": "short"}"#
            ).expectProblem(.unprocessableContent, "validation-failed", field: "new_password")
            #expect(try await UserLifecycleTests.ping(app, cookie: elsewhere).status == .ok, "refusals change nothing")

            let changed = try await app.request(
                .post,
                "/v1/users/me/password",
                json: #"{"old_password": "\#(UserLifecycleTests.password)", "new_password": "a brand new password"}"#,
                headers: [.cookie: here]
            )
            #expect(changed.status == .ok, "\(changed.body)")
            #expect(changed["id"] as? String == member.id)
            #expect(try await UserLifecycleTests.ping(app, cookie: here).status == .ok, "the session that changed it stays")
            #expect(try await UserLifecycleTests.ping(app, cookie: elsewhere).status == .unauthorized)
            #expect(try await app.request(.get, "/v1/ping", token: memberToken).status == .ok, "tokens are untouched")
            #expect(try await UserLifecycleTests.signIn(app, "mia@example.com") == nil)
            #expect(try await UserLifecycleTests.signIn(app, "mia@example.com", "a brand new password") != nil)

            let entries = try await UserLifecycleTests.activity(app, "user.password_changed")
            #expect(entries.contains { $0["outcome"] as? String == "success" && $0["detail"] as? String == "1 other session ended" })
            #expect(entries.contains { $0["outcome"] as? String == "failure" && $0["detail"] as? String == "wrong old password" })
            let log = try await app.request(.get, "/v1/activity?limit=200", token: app.ownerToken)
            #expect(!log.body.contains("brand new") && !log.body.contains("not my password"))
        }
    }

    @Test("wrong old passwords are throttled like sign-ins")
    func changePasswordThrottled() async throws {
        try await TestApp.run { app in
            let (_, memberToken) = try await app.makeUser("mia@example.com", role: .member)
            let wrong = #"{"old_password": "not my password", "new_password": "a brand new password"}"#
            for _ in 0..<UserService.oldPasswordFailuresPerUser {
                try await app.request(.post, "/v1/users/me/password", token: memberToken, json: wrong)
                    .expectProblem(.unprocessableContent, "validation-failed")
            }
            let right = #"{"old_password": "\#(UserLifecycleTests.password)", "new_password": "a brand new password"}"#
            let throttled = try await app.request(.post, "/v1/users/me/password", token: memberToken, json: right)
            throttled.expectProblem(.tooManyRequests, "too-many-attempts")
            #expect(throttled.headers[.retryAfter] != nil)
            app.clock.advance(by: UserService.passwordCheckWindow + 1)
            #expect(try await app.request(.post, "/v1/users/me/password", token: memberToken, json: right).status == .ok)
        }
    }

    @Test("a forgotten password is reset from a link valid one hour; the answer never tells whether the email exists")
    func passwordReset() async throws {
        try await TestApp.run { app in
            let (member, _) = try await app.makeUser("mia@example.com", role: .member)
            let cookie = try #require(try await UserLifecycleTests.signIn(app, "mia@example.com"))
            let mails = try await UserLifecycleTests.mailCount(app, to: "mia@example.com")

            let unknown = try await app.request(.post, "/v1/password-resets", json: #"{"email": "nobody@example.com"}"#)
            let known = try await app.request(.post, "/v1/password-resets", json: #"{"email": "Mia@Example.com"}"#)
            #expect(unknown.status == .accepted && known.status == .accepted)
            #expect(unknown.body == known.body)
            #expect(try await UserLifecycleTests.mailCount(app, to: "nobody@example.com") == 0)
            #expect(try await UserLifecycleTests.mailCount(app, to: "mia@example.com") == mails + 1)
            let first = try #require(try await UserLifecycleTests.mailedToken(app, to: "mia@example.com", page: "reset-password"))

            app.clock.advance(by: 3601)
            try await app.request(.post, "/v1/password-resets/\(first)", json: #"{"password": "a brand new password"}"#)
                .expectProblem(.gone, "link-expired")
            #expect(try await app.request(.post, "/v1/password-resets", json: #"{"email": "mia@example.com"}"#).status == .accepted)
            let second = try #require(try await UserLifecycleTests.mailedToken(app, to: "mia@example.com", page: "reset-password"))
            try await app.request(.post, "/v1/password-resets/\(second)", json: #"{"password": "short"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "password")
            let reset = try await app.request(.post, "/v1/password-resets/\(second)", json: #"{"password": "a brand new password"}"#)
            #expect(reset.status == .ok && reset["id"] as? String == member.id, "\(reset.body)")
            #expect(try await UserLifecycleTests.ping(app, cookie: cookie).status == .unauthorized, "every session ends")
            #expect(try await UserLifecycleTests.signIn(app, "mia@example.com") == nil)
            #expect(try await UserLifecycleTests.signIn(app, "mia@example.com", "a brand new password") != nil)
            try await app.request(.post, "/v1/password-resets/\(second)", json: #"{"password": "yet another password"}"#)
                .expectProblem(.gone, "link-expired")

            let requested = try await UserLifecycleTests.activity(app, "user.password_reset_requested")
            #expect(requested.count == 3)
            #expect(requested.contains { $0["outcome"] as? String == "failure" && $0["target_label"] as? String == "nobody@example.com" })
            #expect(requested.filter { $0["target_id"] as? String == member.id }.count == 2)
            let done = try #require(try await UserLifecycleTests.activity(app, "user.password_reset").first)
            #expect(done["target_id"] as? String == member.id)
            let log = try await app.request(.get, "/v1/activity?limit=200", token: app.ownerToken)
            #expect(!log.body.contains("syi_") && !log.body.contains("brand new"))
        }
    }

    @Test("reset requests: at most 3 mails a user an hour, deactivated users get none, one address is throttled")
    func passwordResetThrottles() async throws {
        try await TestApp.run { app in
            let (member, _) = try await app.makeUser("mia@example.com", role: .member)
            let (_, adminToken) = try await app.makeUser("adam@example.com", role: .admin)
            let before = try await UserLifecycleTests.mailCount(app, to: "mia@example.com")
            for _ in 0..<5 {
                #expect(try await app.request(.post, "/v1/password-resets", json: #"{"email": "mia@example.com"}"#).status == .accepted)
            }
            #expect(try await UserLifecycleTests.mailCount(app, to: "mia@example.com") == before + 3)
            try await app.request(.post, "/v1/users/\(member.id)/deactivate", token: adminToken)
            app.clock.advance(by: 3601)
            #expect(try await app.request(.post, "/v1/password-resets", json: #"{"email": "mia@example.com"}"#).status == .accepted)
            #expect(try await UserLifecycleTests.mailCount(app, to: "mia@example.com") == before + 3)
            try await app.request(.post, "/v1/password-resets", json: #"{"email": "not an email"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "email")

            var audit = AuditContext.system("test")
            audit.actorType = "anonymous"
            audit.ip = "198.51.100.7"
            for number in 0..<UserService.resetRequestsPerAddress {
                try await app.services.users.requestPasswordReset(PasswordResetRequestInput(email: "x\(number)@example.com"), audit: audit)
            }
            await #expect(throws: APIError.self) {
                try await app.services.users.requestPasswordReset(PasswordResetRequestInput(email: "y@example.com"), audit: audit)
            }
            audit.ip = "198.51.100.8"
            try await app.services.users.requestPasswordReset(PasswordResetRequestInput(email: "y@example.com"), audit: audit)
        }
    }
}
