import Foundation
import Testing

@testable import Switchyard

@Suite("Apps: registration and grants")
struct AppRegistrationTests {
    func body(
        _ app: TestApp,
        name: String = "Acme Ledger",
        access: String = "read_write",
        mode: String = "live",
        workspaces: String? = nil,
        permissions: String
    )
        -> String
    {
        """
        {"name": "\(name)", "description": "Syncs invoices", "category": "accounting", "access": "\(access)", "mode": "\(mode)",
         "workspaces": \(workspaces ?? "[\"\(app.liveWorkspace.id)\"]"), "permissions": \(permissions),
         "developer_email": "dev@partner.example"}
        """
    }

    @Test("registering answers the app and a one-time password once, mails an invite without it, and writes an activity entry")
    func register() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let created = try await app.registerApp(body(app, permissions: #"["work_order:read", "events:read"]"#))
            #expect(created.status == .created, "\(created.body)")
            let password = try #require(created["one_time_password"] as? String)
            #expect(password.count == 8 && password.allSatisfy(\.isNumber))
            #expect(created["status"] as? String == "pending_verification")
            #expect((created["client_id"] as? String)?.hasPrefix("cid_") == true)
            #expect(created["workspaces"] as? [String] == [app.liveWorkspace.id])
            let id = try #require(created["id"] as? String)
            let mails = try await app.database.read { tx in
                try tx.query("SELECT recipient, body FROM mail_messages ORDER BY id").map { (try $0.string("recipient"), try $0.string("body")) }
            }
            let invite = try #require(mails.last)
            #expect(invite.0 == "dev@partner.example")
            #expect(invite.1.contains("/portal/invite/syi_"))
            #expect(!invite.1.contains(password), "the one-time password is never mailed")
            // Admins see the mail in the outbox without the link's secret; owners see it whole.
            let admin = try await app.makeUser("admin@example.com", role: .admin)
            for (token, shown) in [(admin.token, "/portal/invite/syi_[hidden]"), (app.ownerToken, "/portal/invite/syi_")] {
                let outbox = try await app.request(.get, "/v1/outbox", token: token)
                let mail = try #require((outbox["data"] as? [[String: Any]])?.first { $0["recipient"] as? String == "dev@partner.example" })
                let body = mail["body"] as? String ?? ""
                #expect(body.contains(shown) && (token == admin.token || !body.contains("[hidden]")), "\(body)")
            }
            let read = try await app.request(.get, "/v1/apps/\(id)", token: app.ownerToken)
            #expect(read["one_time_password"] == nil)
            #expect((read["developer"] as? [String: Any])?["email"] as? String == "dev@partner.example")
            #expect((read["verification"] as? [String: Any])?["tries_left"] as? Int == 5)
            let activity = try await app.request(.get, "/v1/apps/\(id)/activity", token: app.ownerToken)
            let actions = (activity["data"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions.contains("app.created") && actions.contains("app.invite_sent"))
            #expect((activity["data"] as? [[String: Any]])?.first?["target_label"] as? String == "Acme Ledger")
            let csv = try await app.request(.get, "/v1/apps/\(id)/activity.csv", token: app.ownerToken)
            #expect(csv.status == .ok && csv.body.contains("app.created") && csv.body.contains("Acme Ledger"))
            let listed = try await app.request(.get, "/v1/apps?status=pending_verification&q=acme", token: app.ownerToken)
            #expect((listed["data"] as? [[String: Any]])?.count == 1)
            let none = try await app.request(.get, "/v1/apps?status=active", token: app.ownerToken)
            #expect((none["data"] as? [[String: Any]])?.isEmpty == true)
        }
    }

    @Test("bad registrations get a 4xx naming what to fix, and write nothing")
    func refusals() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            _ = try await app.registerApp(body(app, permissions: #"["work_order:read"]"#))
            let member = try await app.makeUser("member@example.com", role: .member)
            let before = try await app.count("apps")
            let mailsBefore = try await app.count("mail_messages")
            try await app.registerApp(body(app, name: "ACME LEDGER", permissions: "[]")).expectProblem(.conflict, "conflict", field: "name")
            try await app.registerApp(body(app, name: "B", workspaces: #"["ws_01ARZ3NDEKTSV4RRFFQ69G5FAV"]"#, permissions: "[]"))
                .expectProblem(.unprocessableContent, "validation-failed", field: "workspaces[0]")
            try await app.registerApp(body(app, name: "C", permissions: #"["invoice:read"]"#))
                .expectProblem(.unprocessableContent, "validation-failed", field: "permissions[0]")
            try await app.registerApp(body(app, name: "D", permissions: #"["work_order:fly"]"#))
                .expectProblem(.unprocessableContent, "validation-failed", field: "permissions[0]")
            try await app.registerApp(body(app, name: "E", access: "read", permissions: #"["work_order:read", "work_order:create"]"#))
                .expectProblem(.unprocessableContent, "validation-failed", field: "permissions[1]")
            try await app.registerApp(body(app, name: "F", mode: "test", permissions: "[]"))
                .expectProblem(.unprocessableContent, "validation-failed", field: "workspaces[0]")
            try await app.registerApp(body(app, name: "G", permissions: #"["work_order:update:status=closed"]"#))
                .expectProblem(.unprocessableContent, "validation-failed", field: "permissions[0]")
            try await app.registerApp(body(app, name: "H", permissions: #"["work_order:update:colour"]"#))
                .expectProblem(.unprocessableContent, "validation-failed", field: "permissions[0]")
            try await app.registerApp(body(app, name: "I", permissions: "[]"), token: member.token).expectProblem(.forbidden, "forbidden")
            #expect(try await app.count("apps") == before)
            let refusals = try await app.database.read { tx in
                try tx.queryOne("SELECT COUNT(*) AS n FROM activity_entries WHERE action = 'app.created' AND outcome = 'failure'")?.int("n")
            }
            #expect(refusals == 9, "every refusal is in the activity log")
            #expect(try await app.count("mail_messages") == mailsBefore)
            // Members read apps.
            #expect(try await app.request(.get, "/v1/apps", token: member.token).status == .ok)
        }
    }

    @Test("PATCH changes grants; name, access and mode cannot change")
    func patch() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let id = try #require(try await app.registerApp(body(app, permissions: #"["work_order:read"]"#))["id"] as? String)
            try await app.request(.patch, "/v1/apps/\(id)", token: app.ownerToken, json: #"{"name": "Other"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "name")
            try await app.request(.patch, "/v1/apps/\(id)", token: app.ownerToken, json: #"{"access": "read"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "access")
            let changed = try await app.request(
                .patch,
                "/v1/apps/\(id)",
                token: app.ownerToken,
                json: #"{"description": "New", "permissions": ["work_order:read", "work_order:update:status=completed"], "rate_limit": 50}"#
            )
            #expect(changed.status == .ok, "\(changed.body)")
            #expect(changed["permissions"] as? [String] == ["work_order:read", "work_order:update:status=completed"])
            #expect(changed["rate_limit"] as? Double == 50)
            let table = try await app.request(.get, "/v1/apps/\(id)/permissions", token: app.ownerToken)
            let row = try #require((table["data"] as? [[String: Any]])?.first)
            #expect(row["object_type"] as? String == "work_order" && row["read"] as? Bool == true && row["create"] as? Bool == false)
            #expect(row["update"] as? [String] == ["status=completed"])
            let offered = try await app.request(.get, "\(app.workspacePath)/permissions", token: app.ownerToken)
            let names = (offered["data"] as? [[String: Any]] ?? []).compactMap { $0["permission"] as? String }
            #expect(names.contains("work_order:update:status=completed") && names.contains("events:read") && names.contains("work_order:delete"))
        }
    }

    @Test("an app token reaches exactly its grants, and a change applies to its next call")
    func grants() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let order = try #require(try await app.createWorkOrder(#"{"number": "WO-1"}"#)["id"] as? String)
            let made = try await app.makeApp(
                permissions: ["work_order:read", "work_order:create", "work_order:update:status=completed"],
                developerEmail: "dev@partner.example"
            )
            let token = try await app.accessToken(for: made.app)
            let ping = try await app.request(.get, "/v1/ping", token: token)
            #expect(ping["authenticated_by"] as? String == "app", "\(ping.body)")
            #expect((ping["app"] as? [String: Any])?["id"] as? String == made.app.id)
            let records = "\(app.workspacePath)/records/work_order"
            #expect(try await app.request(.get, "\(records)/\(order)", token: token).status == .ok)
            #expect(try await app.request(.get, records, token: token).status == .ok)
            let created = try await app.request(.post, records, token: token, json: #"{"fields": {"number": "WO-2"}}"#)
            #expect(created.status == .created, "\(created.body)")
            #expect((created["created_by"] as? [String: Any])?["type"] as? String == "app")
            // Only `status`, only to `completed`.
            #expect(try await app.request(.patch, "\(records)/\(order)", token: token, json: #"{"fields": {"status": "completed"}}"#).status == .ok)
            let other = try await app.request(.patch, "\(records)/\(order)", token: token, json: #"{"fields": {"status": "open"}}"#)
            other.expectProblem(.forbidden, "forbidden")
            #expect(other.body.contains("work_order:update:status"))
            try await app.request(.patch, "\(records)/\(order)", token: token, json: #"{"fields": {"trade": "HVAC"}}"#).expectProblem(
                .forbidden,
                "forbidden"
            )
            let deleted = try await app.request(.delete, "\(records)/\(order)", token: token)
            deleted.expectProblem(.forbidden, "forbidden")
            #expect(deleted.body.contains("work_order:delete"))
            try await app.request(.get, "\(app.workspacePath)/events", token: token).expectProblem(.forbidden, "forbidden")
            try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)/records/work_order", token: token)
                .expectProblem(.forbidden, "forbidden")
            try await app.request(.get, "/v1/users", token: token).expectProblem(.forbidden, "forbidden")
            try await app.request(.get, "/v1/apps", token: token).expectProblem(.forbidden, "forbidden")
            // The admin narrows the app: the very next call sees it.
            let narrowed = try await app.request(
                .patch,
                "/v1/apps/\(made.app.id)",
                token: app.ownerToken,
                json: #"{"workspaces": ["\#(app.sandboxWorkspace.id)"], "permissions": []}"#
            )
            #expect(narrowed.status == .ok, "\(narrowed.body)")
            try await app.request(.get, "\(records)/\(order)", token: token).expectProblem(.forbidden, "forbidden")
            // Revoke: every token refused at once.
            let revoked = try await app.request(.post, "/v1/apps/\(made.app.id)/revoke", token: app.ownerToken)
            #expect(revoked["status"] as? String == "revoked")
            try await app.request(.get, "/v1/ping", token: token).expectProblem(.unauthorized, "unauthenticated")
        }
    }

    @Test("a read app cannot write; a test app reaches only sandboxes; a narrowed token holds less")
    func readAndTestApps() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.request(.post, "/v1/workspaces/\(app.sandboxWorkspace.id)/object-types", token: app.ownerToken, json: workOrderType)
            let reader = try await app.makeApp("Reader", access: .read, permissions: ["work_order:read"])
            let token = try await app.accessToken(for: reader.app)
            let records = "\(app.workspacePath)/records/work_order"
            try await app.request(.post, records, token: token, json: #"{"fields": {"number": "WO-9"}}"#).expectProblem(.forbidden, "forbidden")
            let tester = try await app.makeApp("Tester", mode: .test, workspaces: .all, permissions: ["work_order:read"])
            let testToken = try await app.accessToken(for: tester.app)
            #expect(testToken.hasPrefix("sya_test_"))
            try await app.request(.get, records, token: testToken).expectProblem(.forbidden, "forbidden")
            #expect(try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)/records/work_order", token: testToken).status == .ok)
            let scoped = try await app.makeApp("Scoped", permissions: ["work_order:read", "work_order:create"])
            let narrow = try await app.accessToken(for: scoped.app, scope: ["work_order:read"])
            #expect(try await app.request(.get, records, token: narrow).status == .ok)
            try await app.request(.post, records, token: narrow, json: #"{"fields": {"number": "WO-8"}}"#).expectProblem(.forbidden, "forbidden")
        }
    }

    @Test("a webhook an app creates hears only of the records it created")
    func appWebhooks() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let made = try await app.makeApp(permissions: ["work_order:read", "webhooks:manage"])
            let token = try await app.accessToken(for: made.app)
            let body = #"{"url": "https://hooks.partner.example/in", "subscriptions": [{"object_type": "work_order", "events": ["created"]}]}"#
            let created = try await app.request(.post, "\(app.workspacePath)/webhooks", token: token, json: body)
            #expect(created.status == .created, "\(created.body)")
            let subscription = try #require((created["subscriptions"] as? [[String: Any]])?.first)
            let createdBy = subscription["created_by"] as? [String: Any]
            #expect(createdBy?["type"] as? String == "app" && createdBy?["id"] as? String == made.app.id)
            let widened =
                #"{"url": "https://hooks.partner.example/in", "subscriptions": [{"object_type": "work_order", "events": ["created"], "created_by": {"type": "user"}}]}"#
            try await app.request(.post, "\(app.workspacePath)/webhooks", token: token, json: widened)
                .expectProblem(.unprocessableContent, "validation-failed", field: "subscriptions[0].created_by")
            // The owner's endpoints are not the app's business.
            let own = try await app.request(.post, "\(app.workspacePath)/webhooks", token: app.ownerToken, json: body)
            let ownID = try #require(own["id"] as? String)
            try await app.request(.get, "\(app.workspacePath)/webhooks/\(ownID)", token: token).expectProblem(.notFound, "not-found")
            let listed = try await app.request(.get, "\(app.workspacePath)/webhooks", token: token)
            #expect((listed["data"] as? [[String: Any]])?.count == 1)
            // Revoking the app stops its endpoint.
            _ = try await app.request(.post, "/v1/apps/\(made.app.id)/revoke", token: app.ownerToken)
            let endpointID = try #require(created["id"] as? String)
            let stopped = try await app.request(.get, "\(app.workspacePath)/webhooks/\(endpointID)", token: app.ownerToken)
            #expect(stopped["status"] as? String == "disabled")
        }
    }
}
