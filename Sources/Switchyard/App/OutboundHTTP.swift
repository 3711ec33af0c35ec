import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One outbound HTTP request: a webhook delivery, later a connector call or an OAuth exchange.
public struct OutboundRequest: Sendable {
    public var method: HTTPMethod
    public var url: String
    /// Sent as given; async-http-client adds `host` and `content-length`.
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Seconds for the whole exchange: resolution, connecting, TLS, sending, and reading the
    /// answer to its end (or to `maximumResponseBytes`).
    public var timeout: TimeInterval
    /// Bytes of the response body kept; the rest is never read.
    public var maximumResponseBytes: Int

    public init(
        method: HTTPMethod = .POST,
        url: String,
        headers: [(String, String)] = [],
        body: [UInt8] = [],
        timeout: TimeInterval = 15,
        maximumResponseBytes: Int = 20 * 1024
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.maximumResponseBytes = maximumResponseBytes
    }
}

/// The receiver's answer, whatever its status (a 500 is a response, not a failure).
public struct OutboundResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    /// At most the request's `maximumResponseBytes`.
    public var body: [UInt8]
    /// The receiver had more to send than `maximumResponseBytes`; it was not read.
    public var bodyTruncated: Bool
    /// Seconds from `send` to the end of the answer.
    public var duration: TimeInterval

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// Why no answer came. `description` is in words for the attempt log; it never holds a header
/// value or a URL's user info.
public struct OutboundFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The URL is not an http(s) URL with a host (caught before any I/O).
        case invalidURL = "invalid_url"
        /// A header name or value HTTP does not allow (caught before any I/O).
        case invalidRequest = "invalid_request"
        /// The URL's address, or one its name resolves to, is refused by the `TargetGuard`.
        case blocked
        /// The name does not resolve.
        case resolution
        /// The deadline passed: connecting, or waiting for (all of) the answer.
        case timeout
        /// Refused, reset, or closed before the answer was complete.
        case connection
        /// The TLS handshake failed (untrusted or wrong-host certificate, not TLS).
        case tls
        /// Response headers over NIO's limit (80 KB).
        case tooLarge = "too_large"
        /// The receiver's answer is not HTTP.
        case protocolError = "protocol_error"
    }

    public var kind: Kind
    public var description: String
    public var duration: TimeInterval

    public init(_ kind: Kind, _ description: String, duration: TimeInterval = 0) {
        self.kind = kind
        self.description = description
        self.duration = duration
    }
}

/// The product's one outbound HTTP client: async-http-client with the SSRF guard applied to every
/// address connected to, a deadline per request, a response body cap, and no redirects.
///
/// async-http-client resolves names itself and has no resolver hook, so names are resolved
/// here (getaddrinfo on NIO's blocking thread pool, cached `resolutionTTL`), EVERY address is
/// checked, and the request goes through an `HTTPClient` whose `dnsOverride` pins the host to
/// one checked address (IPv4 preferred: a receiver listening on 127.0.0.1 only is common, and
/// IPv4 reaches nearly every public receiver). `dnsOverride` keeps the host name for TLS SNI and
/// certificate checks (`ConnectionPool.Key.serverNameIndicatorOverride`). When a name moves
/// to another address the host gets a new client; the old one shuts down once its last request
/// ends. A DNS record changed to a private address (rebinding) is refused at the next
/// resolution, and every new connection's peer is checked again before it is used.
///
/// Failures are thrown as `OutboundFailure`, never crash; `shutdown()` before the last reference
/// goes (the clients are also shut down, unawaited, on deinit).
public final class OutboundHTTP: Sendable {
    /// Tuning; the defaults suit webhooks.
    public struct Settings: Sendable {
        /// Longest wait for a TCP connection (and TLS handshake), within the request's deadline.
        public var connectTimeout: TimeInterval = 5
        /// How long a resolution is used; for as long again it is used while a new one runs.
        public var resolutionTTL: TimeInterval = 30
        /// Hosts with a client of their own; the least recently used goes beyond this.
        public var maximumPinnedHosts = 256
        /// Keep-alive connections per host and address.
        public var maximumConnectionsPerHost = 16
        public var idleConnectionTimeout: TimeInterval = 60

        public init() {}
    }

    let targetGuard: TargetGuard
    let eventLoopGroup: any EventLoopGroup
    let settings: Settings
    let pins: PinTable

    public convenience init(
        guard targetGuard: TargetGuard,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        settings: Settings = Settings()
    ) {
        self.init(guard: targetGuard, eventLoopGroup: eventLoopGroup, settings: settings, resolve: HostResolver.addresses(of:))
    }

    /// - Parameter resolve: blocking name resolution (run on NIO's thread pool); tests replace it.
    init(
        guard targetGuard: TargetGuard,
        eventLoopGroup: any EventLoopGroup,
        settings: Settings,
        resolve: @escaping @Sendable (String) throws -> [String]
    ) {
        self.targetGuard = targetGuard
        self.eventLoopGroup = eventLoopGroup
        self.settings = settings
        self.pins = PinTable(guard: targetGuard, eventLoopGroup: eventLoopGroup, settings: settings, resolve: resolve)
    }

    deinit {
        pins.shutdownUnawaited()
    }

    /// Sends `request` and reads its answer under one deadline (`request.timeout`).
    public func send(_ request: OutboundRequest) async throws(OutboundFailure) -> OutboundResponse {
        let start = NIODeadline.now()
        let deadline = start + .clamped(seconds: request.timeout)
        func seconds() -> TimeInterval { Double((NIODeadline.now() - start).nanoseconds) / 1_000_000_000 }

        let target: OutboundTarget
        switch OutboundTarget.parse(request.url) {
        case .failure(let problem): throw OutboundFailure(.invalidURL, "the URL \(problem)", duration: seconds())
        case .success(let parsed): target = parsed
        }
        let pin: Pin
        if target.isAddress, let bytes = target.literalBytes, let reason = targetGuard.check(bytes: bytes) {
            let problem = URLProblem.blocked(host: target.host, address: target.host, reason: reason)
            throw OutboundFailure(.blocked, problem.description, duration: seconds())
        }
        do {
            pin = target.isAddress ? try pins.direct() : try await pins.lease(host: target.host, deadline: deadline)
        } catch {
            var failure = error
            failure.duration = seconds()
            throw failure
        }
        defer { pins.release(pin) }

        let collector = ResponseCollector(limit: max(0, request.maximumResponseBytes))
        do {
            let outgoing = try HTTPClient.Request(
                url: target.url,
                method: request.method,
                headers: HTTPHeaders(request.headers),
                body: request.body.isEmpty ? nil : .bytes(request.body)
            )
            let task = pin.client.execute(request: outgoing, delegate: collector, deadline: deadline)
            // A cancelled caller (a worker shutting down) ends the request instead of waiting out its deadline.
            let collected = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
            return collected.response(truncated: false, duration: seconds())
        } catch let capped as ResponseCollector.CapReached {
            return capped.collected.response(truncated: true, duration: seconds())
        } catch {
            let context = FailureContext(target: target, address: pin.address, timeout: request.timeout, headReceived: collector.headReceived)
            throw OutboundFailure(mapping: error, context, duration: seconds())
        }
    }

    /// Shuts every client down; requests still running fail. Call once, at the end.
    public func shutdown() async throws {
        try await pins.shutdown()
    }
}

extension TimeAmount {
    /// Seconds as given by a caller or an operator, never a crash: NaN and negatives are 0,
    /// and anything over a year is a year.
    static func clamped(seconds: TimeInterval) -> TimeAmount {
        guard seconds.isFinite, seconds > 0 else { return .zero }
        return .nanoseconds(Int64(min(seconds, 366 * 86_400) * 1_000_000_000))
    }
}
