import Foundation
import Testing

@testable import Switchyard

/// Transformations run in the real script workers (`switchyard script-worker`), as in production.
@Suite("Webhook transformations")
struct WebhookTransformationTests {
    static func postEvent(_ app: TestApp, _ type: String, _ data: String) async throws {
        let posted = try await app.request(
            .post,
            "\(app.workspacePath)/events",
            token: app.ownerToken,
            json: #"{"type": "\#(type)", "data": \#(data)}"#
        )
        #expect(posted.status == .created, "\(posted.body)")
    }

    static func json(_ code: String) -> String { JSONValue.string(code).jsonText }

    @Test("a transformation changes the body, the path and a header, and the signature covers what was sent")
    func changesTheDelivery() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let code = """
                export function transform(webhook) {
                  const { type, data } = webhook.payload;
                  webhook.payload = { text: `${type}: ${data.data.amount} EUR` };
                  webhook.url = webhook.url.replace("/hook", "/slack/incoming");
                  webhook.headers["X-Kind"] = type;
                  return webhook;
                }
                """
            let (id, secret) = try await app.createEndpoint(
                #"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["invoice.paid"]}], "headers": {"X-Tenant": "acme"}, "transformation": \#(Self.json(code))}"#
            )
            let shown = try await app.request(.get, "\(app.webhooksPath)/\(id)", token: app.ownerToken)
            #expect(shown["transformation"] as? String == code)
            try await Self.postEvent(app, "invoice.paid", #"{"amount": 12}"#)
            try await app.deliver(until: receiver, has: 1)
            let request = try #require(receiver.requests.first)
            #expect(request.path == "/slack/incoming")
            #expect(request.jsonBody == .object(["text": .string("invoice.paid: 12 EUR")]))
            #expect(request.header("x-kind") == "invoice.paid")
            #expect(request.header("x-tenant") == "acme", "headers the script kept are sent")
            #expect(verifySignature(request, secret: secret), "signed after the transformation")
            let deliveries = try await app.deliveries(id)
            #expect(deliveries.first?["status"] as? String == "succeeded")
        }
    }

    @Test("a transformation that cancels sends nothing: the delivery is cancelled, not retried, the endpoint stays healthy")
    func cancels() async throws {
        try await TestApp.runWithWebhooks { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let code = """
                export const transform = (webhook) => {
                  if (webhook.payload.data.data.amount < 100) return { ...webhook, cancel: true };
                  return webhook;
                };
                """
            let (id, _) = try await app.createEndpoint(
                #"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["invoice.paid"]}], "transformation": \#(Self.json(code))}"#
            )
            try await Self.postEvent(app, "invoice.paid", #"{"amount": 5}"#)
            try await Self.postEvent(app, "invoice.paid", #"{"amount": 500}"#)
            try await app.deliver(until: receiver, has: 1)
            try await app.runWorker { try await app.deliveries(id).allSatisfy { $0["status"] as? String != "pending" } }
            #expect(receiver.requests.count == 1)
            #expect(receiver.requests.first?.jsonBody?.objectValue?["data"]?.objectValue?["data"]?.objectValue?["amount"] == .int(500))
            let statuses = try await app.deliveries(id).compactMap { $0["status"] as? String }.sorted()
            #expect(statuses == ["cancelled", "succeeded"])
            let cancelled = try #require(try await app.deliveries(id, "?status=cancelled").first)
            let attempts = try await app.request(
                .get,
                "\(app.webhooksPath)/\(id)/deliveries/\(try #require(cancelled["id"] as? String))/attempts",
                token: app.ownerToken
            )
            let attempt = try #require((attempts["data"] as? [[String: Any]])?.first)
            #expect((attempt["error"] as? String)?.contains("Cancelled by the endpoint's transformation") == true)
            let endpoint = try await app.request(.get, "\(app.webhooksPath)/\(id)", token: app.ownerToken)
            #expect(endpoint["status"] as? String == "active")
        }
    }

    @Test("a transformation that throws, answers the wrong shape or moves the host fails the attempt with the reason, and is retried")
    func failuresAreLogged() async throws {
        try await TestApp.runWithWebhooks(schedule: [0, 3600]) { app in
            let receiver = try await LoopbackReceiver.start()
            defer { receiver.stopLater() }
            let cases: [(code: String, error: String)] = [
                (
                    "export function transform(webhook) {\n  throw new Error('no template for ' + webhook.payload.type);\n}",
                    "no template for invoice.paid (line 2)"
                ),
                ("export function transform(webhook) { return 42; }", "must return the webhook object"),
                ("export function transform(webhook) { webhook.url = 'http://example.com/x'; return webhook; }", "only the URL's path and query"),
                (
                    "export function transform(webhook) { webhook.headers['webhook-signature'] = 'v1,forged'; return webhook; }",
                    "every delivery sets it itself"
                ),
            ]
            var endpoints: [(String, String)] = []
            for (code, error) in cases {
                let (id, _) = try await app.createEndpoint(
                    #"{"url": "\#(receiver.url())", "subscriptions": [{"events": ["invoice.paid"]}], "transformation": \#(Self.json(code))}"#
                )
                endpoints.append((id, error))
            }
            try await Self.postEvent(app, "invoice.paid", #"{"amount": 1}"#)
            for (id, error) in endpoints {
                try await app.runWorker { (try await app.deliveries(id).first?["attempts"] as? Int ?? 0) >= 1 }
                let delivery = try #require(try await app.deliveries(id).first)
                #expect(delivery["status"] as? String == "pending", "retried on the schedule like any failure")
                #expect((delivery["last_error"] as? String)?.contains(error) == true, "\(delivery["last_error"] ?? "none") should say \(error)")
            }
            #expect(receiver.requests.isEmpty, "nothing was sent")
        }
    }

    @Test("a transformation that does not compile or exports no transform is refused with 422 naming the line")
    func refusedAtSave() async throws {
        try await TestApp.runWithWebhooks { app in
            let broken = try await app.request(
                .post,
                app.webhooksPath,
                token: app.ownerToken,
                json:
                    #"{"url": "http://127.0.0.1:9/hook", "subscriptions": [{"events": ["*"]}], "transformation": "export function transform(w) {\n  return w +;\n}"}"#
            )
            broken.expectProblem(.unprocessableContent, "validation-failed", field: "transformation")
            #expect(broken.body.contains("line 2"), "\(broken.body)")
            let missing = try await app.request(
                .post,
                app.webhooksPath,
                token: app.ownerToken,
                json:
                    #"{"url": "http://127.0.0.1:9/hook", "subscriptions": [{"events": ["*"]}], "transformation": "export function handler(w) { return w; }"}"#
            )
            missing.expectProblem(.unprocessableContent, "validation-failed", field: "transformation")
            #expect(try await app.count("webhook_endpoints") == 0, "nothing half-stored")
            let (id, _) = try await app.createEndpoint(#"{"url": "http://127.0.0.1:9/hook", "subscriptions": [{"events": ["*"]}]}"#)
            let patched = try await app.request(
                .patch,
                "\(app.webhooksPath)/\(id)",
                token: app.ownerToken,
                json: #"{"transformation": "export function transform(w) { return w "}"#
            )
            patched.expectProblem(.unprocessableContent, "validation-failed", field: "transformation")
            let removed = try await app.request(.patch, "\(app.webhooksPath)/\(id)", token: app.ownerToken, json: #"{"transformation": null}"#)
            #expect(removed.status == .ok)
            #expect(removed["transformation"] is NSNull)
        }
    }
}
