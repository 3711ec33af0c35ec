import Foundation
import Testing

@testable import Switchyard

@Suite("Webhook endpoints")
struct WebhookEndpointTests {
    @Test("create, list, read, update, deactivate, delete; members read, integration managers manage")
    func lifecycle() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let (id, _) = try await app.createEndpoint(
                #"{"url": "\#(receiver.url())", "name": "ERP", "description": "Work orders to the ERP", "subscriptions": [{"events": ["*"]}], "rate_limit": 50}"#
            )
            let (member, memberToken) = try await app.makeUser("member@example.com", role: .member)
            _ = member
            let list = try await app.request(.get, app.webhooksPath, token: memberToken)
            #expect((list["data"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            #expect(list.json.keys.contains("next_after"))
            try await app.request(
                .post,
                app.webhooksPath,
                token: memberToken,
                json: #"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["*"]}]}"#
            )
            .expectProblem(.forbidden, "forbidden")
            try await app.request(.get, "\(app.webhooksPath)/\(id)/secret", token: memberToken).expectProblem(.forbidden, "forbidden")

            let patched = try await app.request(
                .patch,
                "\(app.webhooksPath)/\(id)",
                token: app.ownerToken,
                json: #"{"status": "inactive", "name": null}"#
            )
            #expect(patched["status"] as? String == "inactive")
            #expect(patched["name"] is NSNull)
            // Inactive: receives and records nothing.
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            _ = try await app.services.deliveryWorker.runDue()
            #expect(receiver.requests.isEmpty)
            #expect(try await app.deliveries(id).isEmpty)
            try await app.request(.patch, "\(app.webhooksPath)/\(id)", token: app.ownerToken, json: #"{"status": "disabled"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "status")

            #expect(try await app.request(.delete, "\(app.webhooksPath)/\(id)", token: app.ownerToken).status == .noContent)
            try await app.request(.get, "\(app.webhooksPath)/\(id)", token: app.ownerToken).expectProblem(.notFound, "not-found")
            let actions = try await app.database.read { tx in
                try tx.query("SELECT action FROM activity_entries WHERE target_id = ? ORDER BY id", id).map { try $0.string("action") }
            }
            #expect(actions == ["webhook.created", "webhook.updated", "webhook.deleted"])
        }
    }

    @Test("bad input is refused with 422 naming the field, and nothing is written")
    func badInput() async throws {
        try await TestApp.runWithWebhooks { app in
            let good = #""subscriptions": [{"events": ["*"]}]"#
            let cases: [(String, String)] = [
                (#"{\#(good)}"#, "url"),
                (#"{"url": "https://example.com/h"}"#, "subscriptions"),
                (#"{"url": "https://example.com/h", "subscriptions": []}"#, "subscriptions"),
                (#"{"url": "ftp://example.com/h", \#(good)}"#, "url"),
                (#"{"url": "not a url", \#(good)}"#, "url"),
                (#"{"url": "https://example.com/h", \#(good), "rate_limit": 0}"#, "rate_limit"),
                (#"{"url": "https://example.com/h", \#(good), "rate_limit": 10001}"#, "rate_limit"),
                (#"{"url": "https://example.com/h", \#(good), "ordering": "lifo"}"#, "ordering"),
                (#"{"url": "https://example.com/h", \#(good), "status": "disabled"}"#, "status"),
                (#"{"url": "https://example.com/h", \#(good), "alert_emails": ["nope"]}"#, "alert_emails[0]"),
                (#"{"url": "https://example.com/h", \#(good), "headers": {"webhook-signature": "x"}}"#, "headers.webhook-signature"),
                (#"{"url": "https://example.com/h", \#(good), "headers": {"bad name": "x"}}"#, "headers.bad name"),
                (#"{"url": "https://example.com/h", \#(good), "colour": "red"}"#, "colour"),
            ]
            for (body, field) in cases {
                let answer = try await app.request(.post, app.webhooksPath, token: app.ownerToken, json: body)
                #expect(answer.status.code == 422, "\(body): \(answer.body)")
                #expect(answer["field"] as? String == field, "\(body): \(answer.body)")
            }
            #expect(try await app.count("webhook_endpoints") == 0)
            let missing = try await app.request(.get, "\(app.webhooksPath)/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV", token: app.ownerToken)
            missing.expectProblem(.notFound, "not-found")
            try await app.request(.get, "\(app.webhooksPath)?status=broken", token: app.ownerToken)
                .expectProblem(.unprocessableContent, "validation-failed", field: "status")
        }
    }
}
