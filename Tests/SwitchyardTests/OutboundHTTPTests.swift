import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Testing

@testable import Switchyard

/// The outbound client against real receivers on loopback.
@Suite("Outbound HTTP against loopback receivers")
struct OutboundHTTPTests {
    static let loopback = TargetGuard(allowedNetworks: ["127.0.0.0/8", "::1/128"].compactMap { try? IPNetwork(parsing: $0) })

    /// A receiver and a client allowed to reach it, both shut down after `body`.
    static func withReceiver(
        _ behaviour: LoopbackReceiver.Behaviour = .noContent,
        guard targetGuard: TargetGuard = loopback,
        _ body: (LoopbackReceiver, OutboundHTTP) async throws -> Void
    ) async throws {
        let receiver = try await LoopbackReceiver.start(behaviour)
        let client = OutboundHTTP(guard: targetGuard)
        do {
            try await body(receiver, client)
        } catch {
            try await client.shutdown()
            try await receiver.shutdown()
            throw error
        }
        try await client.shutdown()
        try await receiver.shutdown()
    }

    /// The failure `send` throws, or nil (recorded as a test issue) when it answered.
    static func failure(of request: OutboundRequest, with client: OutboundHTTP) async -> OutboundFailure? {
        do {
            let response = try await client.send(request)
            Issue.record("expected a failure, got status \(response.status)")
            return nil
        } catch {
            return error
        }
    }

    @Test("a POST arrives with its headers and body; the answer comes back")
    func delivers() async throws {
        try await Self.withReceiver(.status(200, headers: [("x-receipt", "r1")], body: "thanks")) { receiver, client in
            let response = try await client.send(
                OutboundRequest(
                    url: receiver.url("/hook?x=1"),
                    headers: [("content-type", "application/json"), ("webhook-id", "evt_1")],
                    body: Array(#"{"a":1}"#.utf8)
                )
            )
            #expect(response.status == 200)
            #expect(response.header("X-Receipt") == "r1")
            #expect(response.body == Array("thanks".utf8))
            #expect(!response.bodyTruncated)
            #expect(response.duration > 0 && response.duration < 10)
            let request = try #require(try await receiver.waitForRequests(count: 1).first)
            #expect(request.method == "POST" && request.path == "/hook?x=1")
            #expect(request.header("content-type") == "application/json" && request.header("webhook-id") == "evt_1")
            #expect(request.bodyText == #"{"a":1}"#)
        }
    }

    @Test("any status is an answer, not a failure: 204, 410, 429 with Retry-After, 500, 503")
    func statuses() async throws {
        try await Self.withReceiver { receiver, client in
            for (status, headers) in [(204, []), (410, []), (429, [("retry-after", "7")]), (500, []), (503, [("retry-after", "2")])] {
                receiver.behaviour = .status(status, headers: headers)
                let response = try await client.send(OutboundRequest(url: receiver.url()))
                #expect(response.status == status)
                #expect(response.header("retry-after") == headers.first?.1)
            }
        }
    }

    @Test("a name resolving to 127.0.0.1 is refused unless loopback is allowed")
    func localhost() async throws {
        try await Self.withReceiver(guard: TargetGuard()) { receiver, client in
            let failure = await Self.failure(of: OutboundRequest(url: "http://localhost:\(receiver.port)/hook"), with: client)
            #expect(failure?.kind == .blocked)
            #expect(failure?.description.hasPrefix("localhost resolves to ") == true)
            #expect(failure?.description.contains("which is not an allowed target") == true)
            let literal = await Self.failure(of: OutboundRequest(url: receiver.url()), with: client)
            #expect(literal?.kind == .blocked)
            #expect(literal?.description == "127.0.0.1 is not an allowed target (a loopback address)")
            #expect(receiver.requests.isEmpty)
        }
        try await Self.withReceiver { receiver, client in
            let response = try await client.send(OutboundRequest(url: "http://localhost:\(receiver.port)/hook"))
            #expect(response.status == 204)
            #expect(receiver.requests.count == 1)
        }
    }

    @Test("a name that moves to a refused address is refused (DNS rebinding); one that does not resolve fails")
    func rebinding() async throws {
        let receiver = try await LoopbackReceiver.start()
        let answer = NIOLockedValueBox(["127.0.0.1"])
        var settings = OutboundHTTP.Settings()
        // Long enough that a resolution is still fresh when a loaded machine reads it back (the
        // whole suite runs at once: 0.5 s was missed on PostgreSQL runs with 350 tests).
        settings.resolutionTTL = 2
        let onlyOne = TargetGuard(allowedNetworks: [try IPNetwork(parsing: "127.0.0.1")])
        let client = OutboundHTTP(guard: onlyOne, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, settings: settings) { host in
            guard host == "rebind.test" else { throw HostResolver.Failure(host: host, message: "Name or service not known") }
            return answer.withLockedValue { $0 }
        }
        let url = "http://rebind.test:\(receiver.port)/hook"
        #expect(try await client.send(OutboundRequest(url: url)).status == 204)
        answer.withLockedValue { $0 = ["127.0.0.1", "10.0.0.7"] }
        // Past twice the lifetime: an older resolution is not even used while a new one runs.
        try await Task.sleep(for: .milliseconds(4200))
        let failure = await Self.failure(of: OutboundRequest(url: url), with: client)
        #expect(failure?.kind == .blocked)
        #expect(failure?.description == "rebind.test resolves to 10.0.0.7, which is not an allowed target (a private network address)")
        let unknown = await Self.failure(of: OutboundRequest(url: "http://nowhere.test/hook"), with: client)
        #expect(unknown?.kind == .resolution)
        #expect(unknown?.description.contains("nowhere.test") == true)
        #expect(receiver.requests.count == 1)
        try await client.shutdown()
        try await receiver.shutdown()
    }

    @Test("a name that moves gets a new pinned client; the old one closes once idle")
    func moving() async throws {
        let first = try await LoopbackReceiver.start()
        let second = try await LoopbackReceiver.start(host: "127.0.0.2", port: first.port)
        let answer = NIOLockedValueBox(["127.0.0.1"])
        var settings = OutboundHTTP.Settings()
        settings.resolutionTTL = 0.5  // fresh when a loaded machine reads it back
        let client = OutboundHTTP(guard: Self.loopback, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, settings: settings) { _ in
            answer.withLockedValue { $0 }
        }
        let url = "http://moving.test:\(first.port)/hook"
        _ = try await client.send(OutboundRequest(url: url))
        #expect(first.requests.count == 1 && first.openConnectionCount == 1)
        answer.withLockedValue { $0 = ["127.0.0.2"] }
        // Within the resolution's second lifetime the old pin serves while a new resolution runs.
        let end = Date().addingTimeInterval(5)
        while second.requests.isEmpty && Date() < end {
            _ = try await client.send(OutboundRequest(url: url))
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(second.requests.count == 1)
        #expect(second.requests.first?.header("host") == "moving.test:\(first.port)")
        while first.openConnectionCount > 0 && Date() < end { try await Task.sleep(for: .milliseconds(10)) }
        #expect(first.openConnectionCount == 0)
        try await client.shutdown()
        try await first.shutdown()
        try await second.shutdown()
    }

    @Test("TLS to a receiver that does not speak it is a tls failure")
    func notTLS() async throws {
        try await Self.withReceiver { receiver, client in
            let failure = await Self.failure(of: OutboundRequest(url: "https://127.0.0.1:\(receiver.port)/", timeout: 5), with: client)
            #expect(failure?.kind == .tls)
        }
    }

    @Test("a receiver that never answers costs the deadline, no more")
    func hanging() async throws {
        try await Self.withReceiver(.hang) { receiver, client in
            let failure = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 0.5), with: client)
            #expect(failure?.kind == .timeout)
            #expect(failure?.description == "127.0.0.1 did not answer within 0.5 s")
            #expect((failure?.duration ?? 99) < 5)
        }
    }

    @Test("a receiver that trickles its body, or pauses after the headers, times out")
    func trickling() async throws {
        try await Self.withReceiver(.trickle(bytes: 20, every: 0.5)) { receiver, client in
            let failure = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 1), with: client)
            #expect(failure?.kind == .timeout)
            #expect(failure?.description == "127.0.0.1 did not finish its answer within 1 s")
            #expect((failure?.duration ?? 99) < 5)
            receiver.behaviour = .delayed(5, then: .noContent)
            let slow = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 0.3), with: client)
            #expect(slow?.kind == .timeout)
        }
    }

    @Test("a gigabyte body: the first N bytes, truncated, and the rest never read")
    func hugeBody() async throws {
        try await Self.withReceiver(.oneGigabyte) { receiver, client in
            let started = Date()
            let response = try await client.send(OutboundRequest(url: receiver.url(), timeout: 30))
            #expect(response.status == 200)
            #expect(response.body.count == 20 * 1024)
            #expect(response.bodyTruncated)
            #expect(Date().timeIntervalSince(started) < 10)
            // The client is still good for the next request.
            receiver.behaviour = .noContent
            #expect(try await client.send(OutboundRequest(url: receiver.url())).status == 204)
        }
    }

    @Test("the body cap is exact: a body of exactly N bytes is whole, one more is truncated")
    func capBoundary() async throws {
        try await Self.withReceiver(.status(200, body: String(repeating: "a", count: 100))) { receiver, client in
            let whole = try await client.send(OutboundRequest(url: receiver.url(), maximumResponseBytes: 100))
            #expect(whole.body.count == 100 && !whole.bodyTruncated)
            let cut = try await client.send(OutboundRequest(url: receiver.url(), maximumResponseBytes: 99))
            #expect(cut.body.count == 99 && cut.bodyTruncated)
            let none = try await client.send(OutboundRequest(url: receiver.url(), maximumResponseBytes: 0))
            #expect(none.body.isEmpty && none.bodyTruncated && none.status == 200)
        }
    }

    @Test("garbage instead of HTTP, a close mid-response, a close without answer, a refused port")
    func brokenReceivers() async throws {
        try await Self.withReceiver(.garbage) { receiver, client in
            let garbage = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 5), with: client)
            #expect(garbage?.kind == .protocolError || garbage?.kind == .connection)
            receiver.behaviour = .closeMidResponse
            let cut = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 5), with: client)
            #expect(cut?.kind == .connection)
            #expect(cut?.description == "127.0.0.1 closed the connection before the answer was complete")
            receiver.behaviour = .close
            let closed = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 5), with: client)
            #expect(closed?.kind == .connection)
            receiver.behaviour = .noContent
            let after = try await client.send(OutboundRequest(url: receiver.url()))
            #expect(after.status == 204)
        }
        let gone = try await LoopbackReceiver.start()
        let port = gone.port
        try await gone.shutdown()
        let client = OutboundHTTP(guard: Self.loopback)
        let refused = await Self.failure(of: OutboundRequest(url: "http://127.0.0.1:\(port)/", timeout: 5), with: client)
        #expect(refused?.kind == .connection)
        #expect(refused?.description == "127.0.0.1 refused the connection")
        #expect((refused?.duration ?? 99) < 4)
        try await client.shutdown()
    }

    @Test("a redirect is not followed: the answer is the 302 itself")
    func redirect() async throws {
        try await Self.withReceiver { receiver, client in
            receiver.behaviour = .status(302, headers: [("location", receiver.url("/elsewhere"))])
            let response = try await client.send(OutboundRequest(url: receiver.url()))
            #expect(response.status == 302)
            #expect(response.header("location") == receiver.url("/elsewhere"))
            try await Task.sleep(for: .milliseconds(50))
            #expect(receiver.requests.map(\.path) == ["/hook"])
        }
    }

    @Test("keep-alive: many sequential requests share a few connections; concurrent ones all succeed")
    func keepAlive() async throws {
        try await Self.withReceiver { receiver, client in
            for _ in 0..<200 {
                #expect(try await client.send(OutboundRequest(url: receiver.url(), body: [1, 2, 3])).status == 204)
            }
            #expect(receiver.connectionCount <= 2)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<64 { group.addTask { try await client.send(OutboundRequest(url: receiver.url())).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.count == 64 && statuses.allSatisfy { $0 == 204 })
            #expect(receiver.requests.count == 264)
        }
    }

    @Test("bad input fails before any I/O, and a header's value never reaches the words")
    func badInput() async throws {
        try await Self.withReceiver { receiver, client in
            let ftp = await Self.failure(of: OutboundRequest(url: "ftp://example.com/"), with: client)
            #expect(ftp?.kind == .invalidURL)
            let injected = await Self.failure(
                of: OutboundRequest(url: receiver.url(), headers: [("authorization", "Bearer s3cret\r\nx-evil: 1")]),
                with: client
            )
            #expect(injected?.kind == .invalidRequest)
            #expect(injected?.description.contains("s3cret") == false)
            #expect(receiver.requests.isEmpty)
        }
    }

    @Test("response headers over 80 KB are refused as too large")
    func hugeHeaders() async throws {
        try await Self.withReceiver(.status(200, headers: [("x-padding", String(repeating: "a", count: 90_000))])) { receiver, client in
            let failure = await Self.failure(of: OutboundRequest(url: receiver.url(), timeout: 5), with: client)
            #expect(failure?.kind == .tooLarge)
        }
    }

    @Test("a cancelled caller ends its request at once; odd timeouts do not crash")
    func cancellation() async throws {
        try await Self.withReceiver(.hang) { receiver, client in
            let url = receiver.url()
            let started = Date()
            let sending = Task { await OutboundHTTPTests.failure(of: OutboundRequest(url: url, timeout: 30), with: client) }
            try await receiver.waitForRequests(count: 1)
            sending.cancel()
            let failure = await sending.value
            #expect(failure?.kind == .connection)
            #expect(Date().timeIntervalSince(started) < 10)
            for timeout in [TimeInterval.nan, -1, 0] {
                let odd = await Self.failure(of: OutboundRequest(url: url, timeout: timeout), with: client)
                #expect(odd?.kind == .timeout)
            }
        }
    }

    @Test("after shutdown a request fails, it does not crash")
    func afterShutdown() async throws {
        let client = OutboundHTTP(guard: Self.loopback)
        try await client.shutdown()
        let failure = await Self.failure(of: OutboundRequest(url: "http://127.0.0.1:9/"), with: client)
        #expect(failure?.kind == .connection)
        let named = await Self.failure(of: OutboundRequest(url: "http://localhost:9/"), with: client)
        #expect(named?.kind == .connection)
    }
}

@Suite("The loopback receiver fixture")
struct LoopbackReceiverTests {
    @Test("records requests and answers by request number")
    func byNumber() async throws {
        let receiver = try await LoopbackReceiver.start()
        receiver.respond { number in number < 3 ? .status(503, headers: [("retry-after", "1")]) : .noContent }
        let client = OutboundHTTP(guard: OutboundHTTPTests.loopback)
        var statuses: [Int] = []
        for number in 1...4 {
            statuses.append(try await client.send(OutboundRequest(url: receiver.url("/n\(number)"), body: Array("b\(number)".utf8))).status)
        }
        #expect(statuses == [503, 503, 204, 204])
        let requests = try await receiver.waitForRequests(count: 4, timeout: 1)
        #expect(requests.map(\.number) == [1, 2, 3, 4])
        #expect(requests.map(\.path) == ["/n1", "/n2", "/n3", "/n4"])
        #expect(requests.map(\.bodyText) == ["b1", "b2", "b3", "b4"])
        await #expect(throws: LoopbackReceiver.TimedOut.self) { try await receiver.waitForRequests(count: 5, timeout: 0.05) }
        try await client.shutdown()
        try await receiver.shutdown()
    }
}
