import Foundation
import Testing

@testable import Switchyard

@Suite("API tokens")
struct TokenTests {
    @Test("a created token is shown once, works, is listed by prefix and last four, and is refused once revoked")
    func lifecycle() async throws {
        try await TestApp.run { app in
            let created = try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "CI deploys"}"#)
            #expect(created.status == .created)
            let token = try #require(created["token"] as? String)
            #expect(token.hasPrefix("sy_live_"))
            #expect(TokenFormat.isWellFormed(token))
            let record = try #require(created["api_token"] as? [String: Any])
            let id = try #require(record["id"] as? String)
            #expect(record["last_four"] as? String == String(token.suffix(4)))

            let ping = try await app.request(.get, "/v1/ping", token: token)
            #expect(ping.status == .ok)
            #expect((ping["token"] as? [String: Any])?["id"] as? String == id)
            #expect((ping["user"] as? [String: Any])?["email"] as? String == "owner@example.com")

            let list = try await app.request(.get, "/v1/tokens", token: app.ownerToken)
            #expect(list.status == .ok)
            #expect(!list.body.contains(token), "the secret never appears again")
            let listed = try #require((list["data"] as? [[String: Any]])?.first { $0["id"] as? String == id })
            #expect(listed["prefix"] as? String == "sy_live_")
            #expect(listed["name"] as? String == "CI deploys")

            // Only the hash is stored.
            let stored = try await app.database.read { tx in try tx.query("SELECT * FROM api_tokens WHERE id = ?", id) }
            #expect(stored.first?["secret_hash"] == .text(TokenFormat.hash(token)))
            #expect(!stored.flatMap(\.values).contains(.text(token)))

            let revoked = try await app.request(.delete, "/v1/tokens/\(id)", token: app.ownerToken)
            #expect(revoked.status == .ok)
            #expect(revoked["revoked_at"] is String)
            try await app.request(.get, "/v1/ping", token: token).expectProblem(.unauthorized, "unauthenticated")
            // Revoking twice is harmless.
            #expect(try await app.request(.delete, "/v1/tokens/\(id)", token: app.ownerToken).status == .ok)
        }
    }

    @Test("a test token is refused by a live workspace and reaches a sandbox")
    func testTokenReachesOnlySandboxes() async throws {
        try await TestApp.run { app in
            let created = try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "sandbox", "mode": "test"}"#)
            let token = try #require(created["token"] as? String)
            #expect(token.hasPrefix("sy_test_"))
            try await app.request(.get, "/v1/workspaces/\(app.liveWorkspace.id)", token: token).expectProblem(.forbidden, "forbidden")
            #expect(try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)", token: token).status == .ok)
            let list = try await app.request(.get, "/v1/workspaces", token: token)
            let ids = (list["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == [app.sandboxWorkspace.id])
            // A test token cannot mint a live one.
            try await app.request(.post, "/v1/tokens", token: token, json: #"{"name": "x", "mode": "live"}"#)
                .expectProblem(.forbidden, "forbidden")
            // Nor can a test token be limited to a live workspace.
            try await app.request(
                .post,
                "/v1/tokens",
                token: app.ownerToken,
                json: #"{"name": "x", "mode": "test", "workspaces": ["\#(app.liveWorkspace.id)"]}"#
            )
            .expectProblem(.unprocessableContent, "validation-failed", field: "workspaces")
        }
    }

    @Test("test and workspace-limited tokens cannot act on the whole organization")
    func restrictedTokensStayInTheirLane() async throws {
        try await TestApp.run { app in
            let test = try #require(
                try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "t", "mode": "test"}"#)["token"] as? String
            )
            let scoped = try #require(
                try await app.request(
                    .post,
                    "/v1/tokens",
                    token: app.ownerToken,
                    json: #"{"name": "s", "workspaces": ["\#(app.sandboxWorkspace.id)"]}"#
                )["token"] as? String
            )
            for token in [test, scoped] {
                try await app.request(.get, "/v1/activity", token: token).expectProblem(.forbidden, "forbidden")
                try await app.request(.get, "/v1/outbox", token: token).expectProblem(.forbidden, "forbidden")
                try await app.request(.post, "/v1/users", token: token, json: #"{"email": "x@example.com", "role": "member"}"#)
                    .expectProblem(.forbidden, "forbidden")
                try await app.request(.post, "/v1/workspaces", token: token, json: #"{"name": "W"}"#).expectProblem(.forbidden, "forbidden")
                try await app.request(.get, "/v1/users", token: token).expectProblem(.forbidden, "forbidden")
            }
            // Nor revoke another user's token.
            let (_, memberToken) = try await app.makeUser("m@example.com", role: .member)
            let memberTokenID = try #require(
                (try await app.request(.get, "/v1/ping", token: memberToken)["token"] as? [String: Any])?["id"] as? String
            )
            try await app.request(.delete, "/v1/tokens/\(memberTokenID)", token: test).expectProblem(.forbidden, "forbidden")
            #expect(try await app.request(.get, "/v1/ping", token: memberToken).status == .ok)
            // A test token may make a sandbox.
            let sandbox = try await app.request(.post, "/v1/workspaces", token: test, json: #"{"name": "Play", "mode": "sandbox"}"#)
            #expect(sandbox.status == .created)
        }
    }

    @Test("an unknown enum value names the accepted ones")
    func enumValues() async throws {
        try await TestApp.run { app in
            let response = try await app.request(.post, "/v1/users", token: app.ownerToken, json: #"{"email": "x@example.com", "role": "boss"}"#)
            response.expectProblem(.unprocessableContent, "validation-failed", field: "role")
            #expect((response["detail"] as? String)?.contains("owner, admin, integration_admin, developer, member") == true)
        }
    }

    @Test("a token limited to workspaces reaches only those")
    func scopedToken() async throws {
        try await TestApp.run { app in
            let created = try await app.request(
                .post,
                "/v1/tokens",
                token: app.ownerToken,
                json: #"{"name": "one", "workspaces": ["\#(app.sandboxWorkspace.id)"]}"#
            )
            let token = try #require(created["token"] as? String)
            #expect(try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)", token: token).status == .ok)
            try await app.request(.get, "/v1/workspaces/\(app.liveWorkspace.id)", token: token).expectProblem(.forbidden, "forbidden")
            try await app.request(
                .post,
                "/v1/tokens",
                token: app.ownerToken,
                json: #"{"name": "x", "workspaces": ["ws_01JUNKJUNKJUNKJUNKJUNKJUNK"]}"#
            )
            .expectProblem(.unprocessableContent, "validation-failed", field: "workspaces")
        }
    }

    @Test("an expired token is refused, and the refusal is in the activity log without the token")
    func expiredToken() async throws {
        try await TestApp.run { app in
            let expiry = RFC3339.format(app.clock.now.addingTimeInterval(3600))
            let created = try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "short", "expires_at": "\#(expiry)"}"#)
            let token = try #require(created["token"] as? String)
            #expect(try await app.request(.get, "/v1/ping", token: token).status == .ok)
            // A token it makes expires no later than it does.
            let child = try await app.request(.post, "/v1/tokens", token: token, json: #"{"name": "child"}"#)
            #expect((child["api_token"] as? [String: Any])?["expires_at"] as? String == expiry.replacingOccurrences(of: "Z", with: "Z"))
            let later = RFC3339.format(app.clock.now.addingTimeInterval(7200))
            try await app.request(.post, "/v1/tokens", token: token, json: #"{"name": "x", "expires_at": "\#(later)"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "expires_at")
            app.clock.advance(by: 3601)
            try await app.request(.get, "/v1/ping", token: token).expectProblem(.unauthorized, "unauthenticated")
            let log = try await app.request(.get, "/v1/activity?action=api_token.rejected&outcome=failure", token: app.ownerToken)
            #expect((log["data"] as? [Any])?.count == 1)
            #expect(!log.body.contains(token))
        }
    }

    @Test("missing, malformed and unknown tokens get 401 problems")
    func badCredentials() async throws {
        try await TestApp.run { app in
            try await app.request(.get, "/v1/ping").expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/ping", headers: [.authorization: "Basic abc"]).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/ping", token: "nope").expectProblem(.unauthorized, "unauthenticated")
            // Well-formed (valid checksum) but never issued.
            try await app.request(.get, "/v1/ping", token: TokenFormat.generate(prefix: "sy_live_")).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/ping", headers: [.authorization: "Bearer    "]).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.get, "/v1/ping", headers: [.authorization: "Bearerx\(app.ownerToken)"]).expectProblem(
                .unauthorized,
                "unauthenticated"
            )
            var tampered = Array(app.ownerToken)
            tampered[12] = tampered[12] == "A" ? "B" : "A"
            #expect(!TokenFormat.isWellFormed(String(tampered)), "the checksum catches a changed character")
        }
    }

    @Test("the token format: prefix, length, alphabet and checksum are all checked")
    func tokenFormat() {
        let token = TokenFormat.generate(prefix: "sy_live_")
        #expect(token.utf8.count == 8 + 43 + 6)
        #expect(TokenFormat.isWellFormed(token))
        #expect(!TokenFormat.isWellFormed(token, prefixes: ["sys_"]))
        #expect(!TokenFormat.isWellFormed(String(token.dropLast())))
        #expect(!TokenFormat.isWellFormed(token + "0"))
        #expect(!TokenFormat.isWellFormed("sy_prod_" + token.dropFirst(8)))
        // Same length in characters, not in bytes; and a character outside base62.
        #expect(!TokenFormat.isWellFormed(String(token.dropLast()) + "é"))
        #expect(!TokenFormat.isWellFormed(String(token.prefix(20)) + "-" + String(token.dropFirst(21))))
        let session = TokenFormat.generate(prefix: "sys_")
        #expect(TokenFormat.isWellFormed(session, prefixes: ["sys_"]))
        #expect(!TokenFormat.isWellFormed(session))
    }

    @Test("the Bearer scheme is read in any case, with blanks around the token ignored")
    func bearerScheme() async throws {
        try await TestApp.run { app in
            for header in ["bearer \(app.ownerToken)", "BEARER \(app.ownerToken)", "Bearer  \t\(app.ownerToken)  "] {
                let status = try await app.request(.get, "/v1/ping", headers: [.authorization: header]).status
                #expect(status == .ok, "\(header)")
            }
        }
    }

    @Test("tokens from the command line path print only the secret and work")
    func createdForUserWithoutPrincipal() async throws {
        try await TestApp.run { app in
            let (user, token) = try await app.makeUser("dev@example.com", role: .member)
            let ping = try await app.request(.get, "/v1/ping", token: token)
            #expect((ping["user"] as? [String: Any])?["id"] as? String == user.id)
        }
    }
}
