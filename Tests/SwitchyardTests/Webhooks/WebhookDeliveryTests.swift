import Foundation
import Testing

@testable import Switchyard

@Suite("Webhook delivery")
struct WebhookDeliveryTests {
    @Test("a host event is delivered once, signed, with the Standard Webhooks body; the log shows the attempt")
    func deliversSigned() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let (id, secret) = try await app.createEndpoint(
                #"{"url": "\#(receiver.url())", "name": "Billing", "subscriptions": [{"events": ["invoice.paid"]}, {"events": ["*"]}], "headers": {"X-Tenant": "acme"}, "secret_headers": {"Authorization": "Bearer s3cr3t"}}"#
            )
            #expect(secret.hasPrefix("whsec_"))
            let posted = try await app.request(
                .post,
                "\(app.workspacePath)/events",
                token: app.ownerToken,
                json: #"{"type": "invoice.paid", "data": {"amount": 12}}"#
            )
            let eventID = try #require(posted["id"] as? String)
            try await app.deliver(until: receiver, has: 1)
            let request = try #require(receiver.requests.first)
            #expect(verifySignature(request, secret: secret))
            #expect(request.header("webhook-id") == eventID)
            #expect(request.header("x-tenant") == "acme")
            #expect(request.header("authorization") == "Bearer s3cr3t")
            #expect(request.header("content-type") == "application/json")
            guard case .object(let body)? = request.jsonBody else {
                Issue.record("not JSON: \(request.body)")
                return
            }
            #expect(body["type"] == .string("invoice.paid"))
            #expect(body["data"]?.objectValue?["id"] == .string(eventID))
            #expect(body["data"]?.objectValue?["data"]?.objectValue?["amount"] == .int(12))

            let deliveries = try await app.deliveries(id)
            #expect(deliveries.count == 1, "one delivery however many subscriptions match")
            #expect(deliveries.first?["status"] as? String == "succeeded")
            let deliveryID = try #require(deliveries.first?["id"] as? String)
            let attemptPage = try await app.request(.get, "\(app.webhooksPath)/\(id)/deliveries/\(deliveryID)/attempts", token: app.ownerToken)
            let attempts = try #require(attemptPage["data"] as? [[String: Any]])
            #expect(attempts.count == 1)
            #expect(attempts.first?["response_status"] as? Int == 204)
            let logged = try #require(attempts.first?["request_headers"] as? [String: Any])
            #expect(logged["authorization"] as? String == "[redacted]", "secret header values never reach the log")
            #expect(logged["x-tenant"] as? String == "acme")
            // The endpoint answer shows secret headers by name only, and no secret.
            let shown = try await app.request(.get, "\(app.webhooksPath)/\(id)", token: app.ownerToken)
            #expect(shown["secret"] == nil)
            #expect(shown["secret_headers"] as? [String] == ["Authorization"])
            #expect(!shown.body.contains("s3cr3t"))
            let activity = try await app.request(.get, "/v1/activity?limit=200", token: app.ownerToken)
            #expect(!activity.body.contains("s3cr3t") && !activity.body.contains(secret))
            let metrics = try await app.request(.get, "/metrics").body
            for name in [
                "switchyard_webhook_deliveries_total", "switchyard_webhook_attempts_total", "switchyard_webhook_attempt_duration_seconds",
                "switchyard_webhook_delivery_latency_seconds",
            ] {
                #expect(metrics.contains(name), "\(name) in /metrics")
            }
        }
    }

    @Test("failed attempts follow the schedule with the injected clock; Retry-After is honoured; exhausted deliveries fail")
    func retrySchedule() async throws {
        try await TestApp.runWithWebhooks(schedule: [0, 10, 60]) { app in
            let receiver = try await LoopbackReceiver.start()
            receiver.respond { number in number == 1 ? .status(503, headers: [("Retry-After", "30")]) : .status(500) }
            defer { receiver.stopLater() }
            let (id, _) = try await app.createEndpoint(#"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["*"]}]}"#)
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            try await app.deliver(until: receiver, has: 1)
            var delivery = try #require(try await app.deliveries(id).first)
            #expect(delivery["status"] as? String == "pending")
            #expect(delivery["last_status"] as? Int == 503)
            // Retry-After 30 s beats the scheduled 10 s (capped at twice that: 20 s).
            let nextText = try #require(delivery["next_attempt_at"] as? String)
            let next = try #require(RFC3339.parse(nextText))
            #expect(abs(next.timeIntervalSince(app.clock.now) - 20) < 1)
            app.clock.advance(by: 15)
            #expect(try await app.services.deliveryWorker.runDue() == 0, "not due yet")
            app.clock.advance(by: 6)
            try await app.deliver(until: receiver, has: 2)
            app.clock.advance(by: 61)
            try await app.deliver(until: receiver, has: 3)
            delivery = try #require(try await app.deliveries(id).first)
            #expect(delivery["status"] as? String == "failed")
            #expect(delivery["attempts"] as? Int == 3)
            #expect(receiver.requests.map { $0.header("webhook-id") }.allSatisfy { $0 == receiver.requests[0].header("webhook-id") })
            app.clock.advance(by: 3600)
            #expect(try await app.services.deliveryWorker.runDue() == 0, "given up after the schedule's three attempts")

            // A manual retry sends it again now; recover resends every failed one.
            receiver.behaviour = .noContent
            let deliveryID = try #require(delivery["id"] as? String)
            let retried = try await app.request(.post, "\(app.webhooksPath)/\(id)/deliveries/\(deliveryID)/retry", token: app.ownerToken)
            #expect(retried.status == .accepted)
            try await app.deliver(until: receiver, has: 4)
            #expect(try await app.deliveries(id).first?["status"] as? String == "succeeded")
        }
    }

    @Test("410 disables at once; repeated exhaustion disables, mails the owners and alert addresses; recover resends")
    func autoDisable() async throws {
        try await TestApp.runWithWebhooks(schedule: [0]) { app in
            let gone = try await LoopbackReceiver.start(.status(410))
            defer { gone.stopLater() }
            let (goneID, _) = try await app.createEndpoint(#"{"url": "\#(gone.url())", "subscriptions": [{"events": ["*"]}]}"#)
            let failing = try await LoopbackReceiver.start(.status(500, body: "boom"))
            defer { failing.stopLater() }
            let (failingID, _) = try await app.createEndpoint(
                #"{"url": "\#(failing.url())", "name": "ERP", "alert_emails": ["ops@example.com"], "subscriptions": [{"events": ["*"]}]}"#
            )
            for n in 1...3 {
                try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
                try await app.deliver(until: failing, has: n)
            }
            #expect(gone.requests.count == 1, "nothing more after a 410")
            #expect(try await app.deliveries(goneID, "?status=failed").count == 3, "what came after is kept as failed, for recover")
            let goneEndpoint = try await app.request(.get, "\(app.webhooksPath)/\(goneID)", token: app.ownerToken)
            #expect(goneEndpoint["status"] as? String == "disabled")
            let endpoint = try await app.request(.get, "\(app.webhooksPath)/\(failingID)", token: app.ownerToken)
            #expect(endpoint["status"] as? String == "disabled", "three exhausted deliveries in a row (the test setting)")
            let mails = try await app.database.read { tx in
                try tx.query("SELECT recipient, subject, body FROM mail_messages ORDER BY recipient").map {
                    (try $0.string("recipient"), try $0.string("subject"), try $0.string("body"))
                }
            }
            let erp = mails.filter { $0.1.contains("ERP") }
            #expect(Set(erp.map(\.0)) == ["ops@example.com", "owner@example.com"])
            #expect(erp.first?.2.contains("HTTP 500") == true, "the mail names the last error")
            #expect(erp.first?.2.contains("recover") == true, "and how to re-enable")

            // Events while disabled are recorded as failed; re-enabled, recover sends them.
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            try await app.runWorker { try await app.deliveries(failingID, "?status=failed").count == 4 }
            #expect(try await app.deliveries(failingID, "?status=failed").count == 4)
            #expect(failing.requests.count == 3, "nothing is sent to a disabled endpoint")
            failing.behaviour = .noContent
            let patched = try await app.request(.patch, "\(app.webhooksPath)/\(failingID)", token: app.ownerToken, json: #"{"status": "active"}"#)
            #expect(patched["status"] as? String == "active")
            let since = RFC3339.format(app.clock.now.addingTimeInterval(-3600))
            let recovered = try await app.request(
                .post,
                "\(app.webhooksPath)/\(failingID)/recover",
                token: app.ownerToken,
                json: #"{"since": "\#(since)"}"#
            )
            #expect(recovered["deliveries"] as? Int == 4)
            try await app.deliver(until: failing, has: 7)
            #expect(try await app.deliveries(failingID, "?status=succeeded").count == 4)
        }
    }

    @Test("a success ends the failure streak: failing, failing, a success, failing, failing leaves the endpoint active")
    func successEndsStreak() async throws {
        try await TestApp.runWithWebhooks(schedule: [0]) { app in
            let receiver = try await LoopbackReceiver.start(.status(500, body: "boom"))
            defer { receiver.stopLater() }
            let (id, _) = try await app.createEndpoint(#"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["*"]}]}"#)
            for (n, behaviour) in [
                LoopbackReceiver.Behaviour.status(500, body: "boom"), .status(500, body: "boom"), .noContent, .status(500, body: "boom"),
                .status(500, body: "boom"),
            ].enumerated() {
                receiver.behaviour = behaviour
                try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
                try await app.deliver(until: receiver, has: n + 1)
            }
            let endpoint = try await app.request(.get, "\(app.webhooksPath)/\(id)", token: app.ownerToken)
            #expect(endpoint["status"] as? String == "active", "two exhausted in a row since the success; three disable")
            #expect(try await app.deliveries(id, "?status=succeeded").count == 1)
            let succeeded = try #require(try await app.deliveries(id, "?status=succeeded").first?["id"] as? String)
            let attempts = try await app.request(.get, "\(app.webhooksPath)/\(id)/deliveries/\(succeeded)/attempts", token: app.ownerToken)
            #expect((attempts["data"] as? [[String: Any]])?.first?["response_status"] as? Int == 204)
        }
    }

    @Test("FIFO: one at a time in log order, the next after the previous succeeded or was exhausted")
    func fifo() async throws {
        try await TestApp.runWithWebhooks(schedule: [0, 10]) { app in
            let receiver = try await LoopbackReceiver.start()
            receiver.respond { number in number == 1 ? .status(500) : .noContent }
            defer { receiver.stopLater() }
            let (id, _) = try await app.createEndpoint(#"{"url": "\#(receiver.url())", "ordering": "fifo", "subscriptions": [{"events": ["*"]}]}"#)
            var posted: [String] = []
            for n in 0..<4 {
                let event = try await app.request(
                    .post,
                    "\(app.workspacePath)/events",
                    token: app.ownerToken,
                    json: #"{"type": "invoice.paid", "data": {"n": \#(n)}}"#
                )
                posted.append(try #require(event["id"] as? String))
            }
            try await app.deliver(until: receiver, has: 1)
            _ = try await app.services.deliveryWorker.runDue()
            #expect(receiver.requests.count == 1, "the others wait for the first to succeed or be exhausted")
            app.clock.advance(by: 11)
            try await app.deliver(until: receiver, has: 5)
            #expect(receiver.requests.map { $0.header("webhook-id") ?? "" } == [posted[0]] + posted)
            #expect(try await app.deliveries(id, "?status=succeeded").count == 4)

            // Turned off while deliveries wait their turn: they all go.
            receiver.behaviour = .status(500)
            for _ in 0..<3 {
                try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            }
            try await app.deliver(until: receiver, has: 6)
            receiver.behaviour = .noContent
            let patched = try await app.request(.patch, "\(app.webhooksPath)/\(id)", token: app.ownerToken, json: #"{"ordering": null}"#)
            #expect(patched["ordering"] is NSNull)
            try await app.deliver(until: receiver, has: 8)
            #expect(try await app.deliveries(id, "?status=pending").count == 1, "the first is still waiting for its retry")
        }
    }

    @Test("ping answers the attempt whatever the receiver said")
    func ping() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start(.status(418, body: "short and stout"))
            defer { receiver.stopLater() }
            let (id, secret) = try await app.createEndpoint(#"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["*"]}]}"#)
            let ping = try await app.request(.post, "\(app.webhooksPath)/\(id)/ping", token: app.ownerToken)
            #expect(ping.status == .ok)
            #expect(ping["response_status"] as? Int == 418)
            #expect(ping["response_body"] as? String == "short and stout")
            #expect(ping["succeeded"] as? Bool == false)
            let request = try #require(receiver.requests.first)
            #expect(verifySignature(request, secret: secret))
            #expect(request.jsonBody?.objectValue?["type"] == .string("webhook.ping"))
        }
    }

    @Test("rotation: for 24 hours deliveries carry both signatures")
    func rotation() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let (id, old) = try await app.createEndpoint(#"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["*"]}]}"#)
            let rotated = try await app.request(.post, "\(app.webhooksPath)/\(id)/rotate-secret", token: app.ownerToken)
            let new = try #require(rotated["secret"] as? String)
            #expect(new != old)
            #expect(try await app.request(.get, "\(app.webhooksPath)/\(id)/secret", token: app.ownerToken)["secret"] as? String == new)
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            try await app.deliver(until: receiver, has: 1)
            let first = try #require(receiver.requests.first)
            #expect(verifySignature(first, secret: new) && verifySignature(first, secret: old))
            #expect(first.header("webhook-signature")?.split(separator: " ").count == 2)
            app.clock.advance(by: 86_401)
            try await app.request(.post, "\(app.webhooksPath)/\(id)/ping", token: app.ownerToken)
            let later = try #require(receiver.requests.last)
            #expect(verifySignature(later, secret: new) && !verifySignature(later, secret: old))
        }
    }

    @Test("rate_limit spaces an endpoint's deliveries; a backlog waits in the database, not leased in memory")
    func rateLimit() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let (id, _) = try await app.createEndpoint(#"{"url": "\#(receiver.url())", "rate_limit": 4, "subscriptions": [{"events": ["*"]}]}"#)
            for _ in 0..<10 {
                try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            }
            let started = ContinuousClock.now
            try await app.runWorker { receiver.requests.count >= 5 }
            // Four a second: the fifth goes 1 s after the first; what is further off is put back.
            #expect(ContinuousClock.now - started >= .milliseconds(900))
            #expect(try await !app.deliveries(id, "?status=pending").isEmpty, "the rest wait their turn")
            let leased = try await app.database.read { tx in
                try tx.queryOne("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending' AND leased_until IS NOT NULL")?.int("n")
            }
            #expect(leased == 0, "postponed deliveries hold no lease")
            for _ in 0..<10 where receiver.requests.count < 10 {
                app.clock.advance(by: 5)
                _ = try await app.services.deliveryWorker.runDue()
            }
            #expect(receiver.requests.count == 10)
            #expect(try await app.deliveries(id, "?status=succeeded").count == 10)
        }
    }
}
