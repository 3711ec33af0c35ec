import Foundation
import Testing

@testable import Switchyard

@Suite("Webhook outbound safety")
struct WebhookSafetyTests {
    @Test("loopback, private and metadata targets are refused at creation; a name resolving to 127.0.0.1 too")
    func blockedAtCreation() async throws {
        try await TestApp.run { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let subscriptions = #""subscriptions": [{"events": ["*"]}]"#
            for url in [
                "http://localhost:\(receiver.port)/hook", "http://127.0.0.1:\(receiver.port)/hook", "http://10.1.2.3/hook",
                "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
            ] {
                let answer = try await app.request(.post, app.webhooksPath, token: app.ownerToken, json: #"{"url": "\#(url)", \#(subscriptions)}"#)
                answer.expectProblem(.unprocessableContent, "blocked-target", field: "url")
            }
            #expect(try await app.count("webhook_endpoints") == 0)
            #expect(receiver.requests.isEmpty)
        }
        // Allowed networks open loopback, never the metadata address.
        try await TestApp.runWithWebhooks(configure: { configuration in
            configuration.webhooks.allowedTargetNetworks += (try? IPNetwork(parsing: "169.254.0.0/16")).map { [$0] } ?? []
        }) { app in
            let answer = try await app.request(
                .post,
                app.webhooksPath,
                token: app.ownerToken,
                json: #"{"url": "http://169.254.169.254/", "subscriptions": [{"events": ["*"]}]}"#
            )
            answer.expectProblem(.unprocessableContent, "blocked-target", field: "url")
        }
    }

    @Test("every delivery goes through the guard: a stored URL that is no longer allowed fails its attempt, nothing is sent")
    func blockedAtDelivery() async throws {
        try await TestApp.runWithWebhooks(schedule: [0]) { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let (id, _) = try await app.createEndpoint(#"{"url": "http://127.0.0.1:\#(receiver.port)/hook", "subscriptions": [{"events": ["*"]}]}"#)
            // As if the URL had been stored when the guard allowed it: 10.9.9.9 is a private address
            // this test's settings do not allow, so the attempt itself must refuse it.
            try await app.database.write { tx in
                try tx.execute(
                    "UPDATE webhook_endpoints SET url = ?, updated_at = updated_at + 1 WHERE id = ?",
                    "http://10.9.9.9:\(receiver.port)/hook",
                    id
                )
            }
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            try await app.runWorker { try await !app.deliveries(id, "?status=failed").isEmpty }
            let delivery = try #require(try await app.deliveries(id).first)
            #expect(delivery["status"] as? String == "failed")
            #expect((delivery["last_error"] as? String)?.contains("10.9.9.9") == true, "\(delivery)")
            #expect(receiver.requests.isEmpty)
        }
    }

    @Test("a hanging receiver costs one failed attempt and never holds back another endpoint; a huge answer is cut at 20 KB")
    func hostileReceivers() async throws {
        try await TestApp.runWithWebhooks(schedule: [0]) { app in
            let hanging = try await LoopbackReceiver.start(.hang)
            defer { hanging.stopLater() }
            let huge = try await LoopbackReceiver.start(.huge(bytes: 1 << 30))
            defer { huge.stopLater() }
            let healthy = try await LoopbackReceiver.start()
            defer { healthy.stopLater() }
            var ids: [String] = []
            for receiver in [hanging, huge, healthy] {
                ids.append(try await app.createEndpoint(#"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["*"]}]}"#).id)
            }
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            let worker = Task { try await app.deliver(until: hanging, has: 1) }
            // The healthy endpoint is served while the hanging one still waits for its 2 s timeout
            // (however late the event became visible: on a loaded PostgreSQL that can take a while).
            _ = try await healthy.waitForRequests(count: 1, timeout: 20)
            #expect(try await app.deliveries(ids[0]).first?["status"] as? String == "pending", "the hanging attempt is still under way")
            try await worker.value
            try await app.runWorker { try await !app.deliveries(ids[0], "?status=failed").isEmpty }
            let timedOut = try #require(try await app.deliveries(ids[0]).first)
            #expect(timedOut["status"] as? String == "failed")
            let hugeDelivery = try #require(try await app.deliveries(ids[1]).first)
            #expect(hugeDelivery["status"] as? String == "succeeded", "a 2xx with a larger body is still a success")
            let deliveryID = try #require(hugeDelivery["id"] as? String)
            let attempts = try await app.request(.get, "\(app.webhooksPath)/\(ids[1])/deliveries/\(deliveryID)/attempts", token: app.ownerToken)
            let body = try #require((attempts["data"] as? [[String: Any]])?.first?["response_body"] as? String)
            #expect(body.utf8.count == 20 * 1024)
            #expect(try await app.deliveries(ids[2]).first?["status"] as? String == "succeeded")
        }
    }
}
