import Foundation
import Testing

@testable import Switchyard

@Suite("Webhook subscriptions on the delivery path")
struct WebhookFilterTests {
    @Test("trade, category and status filters, `changed` and `created_by` pick the record events an endpoint gets")
    func filtered() async throws {
        try await TestApp.runWithWebhooks { app in
            try await app.createWorkOrderType()
            let plumbing = try await LoopbackReceiver.start()
            defer { plumbing.stopLater() }
            let mine = try await LoopbackReceiver.start()
            defer { mine.stopLater() }
            let (_, other) = try await app.makeUser("integration@example.com", role: .integrationAdmin)
            let otherTokenID =
                try #require(try await app.request(.get, "/v1/tokens", token: other)["data"] as? [[String: Any]]).first?["id"] as? String
            _ = try await app.createEndpoint(
                #"{"url": "\#(plumbing.url())", "subscriptions": [{"object_type": "work_order", "events": ["updated"], "filters": {"trade": ["Plumbing", "HVAC"], "category": ["repair"], "status": ["completed"]}, "changed": ["status"]}]}"#
            )
            _ = try await app.createEndpoint(
                #"{"url": "\#(mine.url())", "subscriptions": [{"object_type": "work_order", "events": ["created"], "created_by": {"type": "api_token", "id": "\#(otherTokenID ?? "")"}}]}"#
            )
            func create(_ fields: String, token: String) async throws -> String {
                let created = try await app.createWorkOrder(fields, token: token)
                return try #require(created["id"] as? String, "\(created.body)")
            }
            func update(_ id: String, _ fields: String) async throws {
                let answer = try await app.request(
                    .patch,
                    "\(app.workspacePath)/records/work_order/\(id)",
                    token: app.ownerToken,
                    json: #"{"fields": \#(fields)}"#
                )
                #expect(answer.status == .ok, "\(answer.body)")
            }
            let a = try await create(#"{"number": "WO-1", "trade": "Plumbing", "category": "repair"}"#, token: app.ownerToken)
            let b = try await create(#"{"number": "WO-2", "trade": "Electrical", "category": "repair"}"#, token: app.ownerToken)
            let c = try await create(#"{"number": "WO-3", "trade": "HVAC", "category": "emergency"}"#, token: other)
            try await update(a, #"{"nte": 100}"#)  // status unchanged: no
            try await update(a, #"{"status": "completed"}"#)  // yes
            try await update(b, #"{"status": "completed"}"#)  // wrong trade: no
            try await update(c, #"{"status": "completed"}"#)  // wrong category: no
            try await app.deliver(until: plumbing, has: 1)
            try await app.deliver(until: mine, has: 1)
            _ = try await app.services.deliveryWorker.runDue()
            #expect(plumbing.requests.count == 1)
            let body = try #require(plumbing.requests.first?.jsonBody?.objectValue)
            #expect(body["type"] == .string("work_order.updated"))
            #expect(body["data"]?.objectValue?["record_id"] == .string(a))
            #expect(mine.requests.count == 1, "only the record the other token created")
            #expect(mine.requests.first?.jsonBody?.objectValue?["data"]?.objectValue?["record_id"] == .string(c))
        }
    }

    @Test("unknown object types, events, fields and invalid filter values are refused with the path")
    func refused() async throws {
        try await TestApp.runWithWebhooks { app in
            try await app.createWorkOrderType()
            let cases: [(String, String)] = [
                (#"[{"object_type": "invoice", "events": ["created"]}]"#, "subscriptions[0].object_type"),
                (#"[{"object_type": "work_order", "events": ["archived"]}]"#, "subscriptions[0].events[0]"),
                (#"[{"object_type": "work_order", "events": ["updated"], "filters": {"colour": ["red"]}}]"#, "subscriptions[0].filters.colour"),
                (#"[{"object_type": "work_order", "events": ["updated"], "filters": {"status": ["closed"]}}]"#, "subscriptions[0].filters.status[0]"),
                (#"[{"object_type": "work_order", "events": ["updated"], "filters": {"nte": ["lots"]}}]"#, "subscriptions[0].filters.nte[0]"),
            ]
            for (subscriptions, field) in cases {
                let answer = try await app.request(
                    .post,
                    app.webhooksPath,
                    token: app.ownerToken,
                    json: #"{"url": "https://example.com/h", "subscriptions": \#(subscriptions)}"#
                )
                #expect(answer.status.code == 422, "\(subscriptions): \(answer.body)")
                #expect(answer["field"] as? String == field, "\(subscriptions): \(answer.body)")
            }
            #expect(try await app.count("webhook_endpoints") == 0)
        }
    }
}
