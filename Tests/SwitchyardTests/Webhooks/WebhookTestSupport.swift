import Crypto
import ExtrasBase64
import Foundation
import Testing

@testable import Switchyard

extension TestApp {
    /// Tests reach receivers on loopback; production refuses it unless the operator allows it.
    static func runWithWebhooks(
        schedule: [TimeInterval] = [0, 10, 60],
        configure: @escaping (inout AppConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (TestApp) async throws -> Void
    ) async throws {
        try await run(
            configure: { configuration in
                configuration.webhooks = WebhookSettings(
                    schedule: schedule,
                    jitter: 0,
                    timeout: 2,
                    disableAfterFailures: 3,
                    allowedTargetNetworks: (try? IPNetwork(parsing: "127.0.0.0/8")).map { [$0] } ?? []
                )
                configure(&configuration)
            },
            body
        )
    }

    var webhooksPath: String { "\(workspacePath)/webhooks" }

    /// Creates an endpoint; answers its id and signing secret.
    func createEndpoint(_ body: String) async throws -> (id: String, secret: String) {
        let created = try await request(.post, webhooksPath, token: ownerToken, json: body)
        #expect(created.status == .created, "\(created.body)")
        return (try #require(created["id"] as? String), try #require(created["secret"] as? String))
    }

    /// Runs the delivery worker until `receiver` has `count` requests. On PostgreSQL an event is
    /// visible to the worker once every older transaction ended, so it may take a few rounds.
    func deliver(until receiver: LoopbackReceiver, has count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        _ = try await services.deliveryWorker.runDue()
        while receiver.requests.count < count, ContinuousClock.now < deadline {
            if try await services.deliveryWorker.runDue() == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(receiver.requests.count == count, sourceLocation: sourceLocation)
    }

    /// Runs the delivery worker until `done` holds (or 10 s pass): for outcomes other than a request
    /// arriving, such as a delivery recorded as failed.
    func runWorker(until done: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try await !done(), ContinuousClock.now < deadline {
            if try await services.deliveryWorker.runDue() == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    func deliveries(_ endpointID: String, _ query: String = "") async throws -> [[String: Any]] {
        let page = try await request(.get, "\(webhooksPath)/\(endpointID)/deliveries\(query)", token: ownerToken)
        return try #require(page["data"] as? [[String: Any]], "\(page.body)")
    }
}

/// Checks a request as the Standard Webhooks specification says a receiver must.
func verifySignature(_ received: LoopbackReceiver.Request, secret: String) -> Bool {
    guard let id = received.header("webhook-id"), let timestamp = received.header("webhook-timestamp"),
        let signatures = received.header("webhook-signature"),
        let key = try? Base64.decode(string: String(secret.dropFirst("whsec_".count)))
    else { return false }
    let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).".utf8) + received.body, using: SymmetricKey(data: key))
    let expected = "v1," + Base64.encodeToString(bytes: Array(mac))
    return signatures.split(separator: " ").contains { $0 == expected }
}

extension LoopbackReceiver {
    /// For `defer`, which cannot wait.
    func stopLater() { Task { try? await shutdown() } }
}

extension LoopbackReceiver.Request {
    var jsonBody: JSONValue? { try? JSONValue.parse(text: bodyText) }
}
