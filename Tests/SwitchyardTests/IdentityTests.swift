import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

@Suite("Users, roles, workspaces and sessions")
struct IdentityTests {
    @Test("a member cannot create a user, and nothing is written")
    func memberCannotCreateUsers() async throws {
        try await TestApp.run { app in
            let (_, member) = try await app.makeUser("mem@example.com", role: .member)
            let before = try await app.count("users")
            let activityBefore = try await app.count("activity_entries")
            try await app.request(.post, "/v1/users", token: member, json: #"{"email": "x@example.com", "role": "member"}"#)
                .expectProblem(.forbidden, "forbidden")
            #expect(try await app.count("users") == before)
            #expect(try await app.count("activity_entries") == activityBefore)
            #expect(try await app.count("mail_messages") == 1, "only the member's own welcome mail")
        }
    }

    @Test("an admin creates users but not owners; an integration admin creates none")
    func roleRules() async throws {
        try await TestApp.run { app in
            let (_, admin) = try await app.makeUser("adm@example.com", role: .admin)
            let (_, integrations) = try await app.makeUser("int@example.com", role: .integrationAdmin)
            let (_, developer) = try await app.makeUser("dev@example.com", role: .developer)
            #expect(
                try await app.request(.post, "/v1/users", token: admin, json: #"{"email": "a@example.com", "role": "member"}"#).status == .created
            )
            try await app.request(.post, "/v1/users", token: admin, json: #"{"email": "b@example.com", "role": "owner"}"#)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.post, "/v1/users", token: integrations, json: #"{"email": "c@example.com", "role": "member"}"#)
                .expectProblem(.forbidden, "forbidden")
            // Developers reach only the developer portal.
            try await app.request(.get, "/v1/workspaces", token: developer).expectProblem(.forbidden, "forbidden")
            try await app.request(.post, "/v1/workspaces", token: integrations, json: #"{"name": "W"}"#).expectProblem(.forbidden, "forbidden")
        }
    }

    @Test("creating a user returns a generated password once, queues a welcome mail, and records the change")
    func createUser() async throws {
        try await TestApp.run { app in
            let created = try await app.request(
                .post,
                "/v1/users",
                token: app.ownerToken,
                json: #"{"email": "Ann@Example.com", "name": "Ann", "role": "integration_admin"}"#
            )
            #expect(created.status == .created)
            let password = try #require(created["password"] as? String)
            let user = try #require(created["user"] as? [String: Any])
            #expect(user["email"] as? String == "ann@example.com")
            #expect(user["role"] as? String == "integration_admin")
            #expect(user["password_hash"] == nil)
            let id = try #require(user["id"] as? String)

            let mail = try await app.services.mail.list(status: nil, after: nil, limit: 10)
            #expect(mail.contains { $0.recipient == "ann@example.com" && !$0.body.contains(password) })
            let log = try await app.request(.get, "/v1/activity?action=user.created&target_id=\(id)", token: app.ownerToken)
            #expect((log["data"] as? [Any])?.count == 1)
            #expect(!log.body.contains(password))

            // The generated password signs in; the session cookie authenticates; sign-out ends it.
            let signIn = try await app.request(.post, "/v1/sessions", json: #"{"email": "ann@example.com", "password": "\#(password)"}"#)
            #expect(signIn.status == .created)
            let cookie = try #require(signIn.headers[.setCookie])
            #expect(cookie.contains("HttpOnly"))
            let session = String(cookie.split(separator: ";")[0])
            let ping = try await app.request(.get, "/v1/ping", headers: [.cookie: session])
            #expect(ping["authenticated_by"] as? String == "session")
            #expect(try await app.request(.delete, "/v1/sessions/current", headers: [.cookie: session]).status == .noContent)
            try await app.request(.get, "/v1/ping", headers: [.cookie: session]).expectProblem(.unauthorized, "unauthenticated")

            try await app.request(.post, "/v1/users", token: app.ownerToken, json: #"{"email": "ann@example.com", "role": "member"}"#)
                .expectProblem(.conflict, "conflict", field: "email")
        }
    }

    @Test("a wrong password is refused and recorded as a failed sign-in")
    func wrongPassword() async throws {
        try await TestApp.run { app in
            _ = try await app.makeUser("bob@example.com", role: .member)
            try await app.request(.post, "/v1/sessions", json: #"{"email": "bob@example.com", "password": "wrong password!"}"#)
                .expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.post, "/v1/sessions", json: #"{"email": "nobody@example.com", "password": "whatever123"}"#)
                .expectProblem(.unauthorized, "unauthenticated")
            let log = try await app.request(.get, "/v1/activity?action=session.created&outcome=failure", token: app.ownerToken)
            let entries = try #require(log["data"] as? [[String: Any]])
            #expect(entries.count == 2)
            #expect(!log.body.contains("wrong password!"))
            #expect(
                try await app.request(.post, "/v1/sessions", json: #"{"email": "bob@example.com", "password": "correct horse battery"}"#).status
                    == .created
            )
        }
    }

    @Test("after 10 failed sign-ins for one email, the next is refused with 429 until the window passes")
    func signInThrottled() async throws {
        try await TestApp.run { app in
            _ = try await app.makeUser("bob@example.com", role: .member)
            let wrong = #"{"email": "bob@example.com", "password": "wrong password!"}"#
            let right = #"{"email": "Bob@example.com", "password": "correct horse battery"}"#
            for _ in 0..<10 {
                try await app.request(.post, "/v1/sessions", json: wrong).expectProblem(.unauthorized, "unauthenticated")
            }
            // Even the right password: the throttle is checked first and tells nothing.
            let throttled = try await app.request(.post, "/v1/sessions", json: right)
            throttled.expectProblem(.tooManyRequests, "too-many-attempts")
            let retryAfter = try #require(throttled.headers[.retryAfter].flatMap { Int($0) })
            #expect(retryAfter > 0 && retryAfter <= 15 * 60)
            // Another email is not affected.
            _ = try await app.makeUser("cy@example.com", role: .member)
            #expect(
                try await app.request(.post, "/v1/sessions", json: #"{"email": "cy@example.com", "password": "correct horse battery"}"#).status
                    == .created
            )
            let log = try await app.request(.get, "/v1/activity?action=session.throttled", token: app.ownerToken)
            #expect((log["data"] as? [Any])?.count == 1)

            app.clock.advance(by: 15 * 60 + 60)
            #expect(try await app.request(.post, "/v1/sessions", json: right).status == .created)
        }
    }

    @Test("a burst of parallel wrong sign-ins gets at most 10 password checks; the rest are throttled")
    func signInBurst() async throws {
        try await TestApp.run { app in
            _ = try await app.makeUser("bob@example.com", role: .member)
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<30 {
                    group.addTask {
                        try await app.request(.post, "/v1/sessions", json: #"{"email": "bob@example.com", "password": "wrong password!"}"#).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .unauthorized }.count <= 10)
            #expect(statuses.filter { $0 == .tooManyRequests }.count >= 20)
            #expect(statuses.allSatisfy { $0 == .unauthorized || $0 == .tooManyRequests })
            #expect(try await app.count("activity_entries WHERE action = 'session.created' AND outcome = 'failure'") <= 10)
        }
    }

    @Test("there is one organization, made with the schema")
    func organization() async throws {
        try await TestApp.run { app in
            let organization = try await app.request(.get, "/v1/organization", token: app.ownerToken)
            #expect(organization.status == .ok)
            #expect(organization["id"] as? String == "org_00000000000000000000000000")
            #expect(try await app.count("organizations") == 1)
            try await Migrator.migrate(app.database)
            #expect(try await app.count("organizations") == 1)
        }
    }

    @Test("a workspace created with an Idempotency-Key is created once; the key cannot be reused for another body")
    func workspaceIdempotency() async throws {
        try await TestApp.run { app in
            let before = try await app.count("workspaces")
            let key: HTTPFields = [.idempotencyKey: "entity-7"]
            let first = try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "Entity 7"}"#, headers: key)
            let again = try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "Entity 7"}"#, headers: key)
            #expect(first.status == .created)
            #expect(again.status == .created)
            #expect(again.body == first.body)
            #expect(try await app.count("workspaces") == before + 1)
            try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "Entity 8"}"#, headers: key)
                .expectProblem(.unprocessableContent, "idempotency-key-reused", field: "Idempotency-Key")
            // Keys are per caller: another caller's same key creates its own workspace.
            let (_, adminToken) = try await app.makeUser("admin@example.com", role: .admin)
            #expect(
                try await app.request(.post, "/v1/workspaces", token: adminToken, json: #"{"name": "Entity 7"}"#, headers: key).status == .created
            )
            #expect(try await app.count("workspaces") == before + 2)
        }
    }

    @Test("workspaces: create, list with cursor, rename; mode is fixed")
    func workspaces() async throws {
        try await TestApp.run { app in
            for n in 1...3 {
                #expect(try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "Entity \#(n)"}"#).status == .created)
            }
            // Walk the pages: every workspace once, in creation order, and the last page says so.
            var names: [String] = []
            var after: String?
            repeat {
                let page = try await app.request(.get, "/v1/workspaces?limit=2" + (after.map { "&after=\($0)" } ?? ""), token: app.ownerToken)
                let data = try #require(page["data"] as? [[String: Any]])
                #expect(data.count <= 2)
                names += data.compactMap { $0["name"] as? String }
                after = page["next_after"] as? String
            } while after != nil
            #expect(names == ["Default", "Sandbox", "Entity 1", "Entity 2", "Entity 3"])

            let id = app.liveWorkspace.id
            let renamed = try await app.request(.patch, "/v1/workspaces/\(id)", token: app.ownerToken, json: #"{"name": "Production"}"#)
            #expect(renamed["name"] as? String == "Production")
            try await app.request(.patch, "/v1/workspaces/\(id)", token: app.ownerToken, json: #"{"mode": "sandbox"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "mode")
            #expect(try await app.request(.get, "/v1/workspaces/\(id)", token: app.ownerToken)["mode"] as? String == "live")
        }
    }
}
