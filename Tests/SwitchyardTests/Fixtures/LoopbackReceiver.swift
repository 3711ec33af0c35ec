import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 receiver on 127.0.0.1 (a random port) for outbound and webhook tests. It
/// records every request and answers as `behaviour` says, which a test may change while it runs:
///
/// ```swift
/// let receiver = try await LoopbackReceiver.start()          // 204 to everything
/// receiver.behaviour = .status(503, headers: [("retry-after", "1")])
/// receiver.respond { number in number < 3 ? .status(500) : .noContent }
/// let requests = try await receiver.waitForRequests(count: 3)
/// try await receiver.shutdown()
/// ```
final class LoopbackReceiver: Sendable {
    struct Request: Sendable {
        /// 1 for the first request this receiver got.
        let number: Int
        let method: String
        /// The request target, e.g. `/hook?x=1`.
        let path: String
        let headers: [(String, String)]
        let body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }

        var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    enum Behaviour: Sendable {
        /// A complete answer with `content-length` (none for 204 and 304).
        case respond(status: Int, headers: [(String, String)], body: [UInt8])
        /// `then`, after a pause.
        indirect case delayed(TimeInterval, then: Behaviour)
        /// Reads the request, never answers, keeps the connection open.
        case hang
        /// The status and headers at once, then the body one byte per `interval`.
        case trickle(status: Int, body: [UInt8], interval: TimeInterval)
        /// 200 with a body of `bytes` bytes, written as the client reads it, never held in memory.
        case huge(bytes: Int)
        /// Bytes that are not HTTP instead of an answer.
        case garbage
        /// The head and part of the body promised by `content-length`, then the connection closes.
        case closeMidResponse
        /// Closes the connection without answering.
        case close

        static func status(_ code: Int, headers: [(String, String)] = [], body: String = "") -> Behaviour {
            .respond(status: code, headers: headers, body: Array(body.utf8))
        }

        static let noContent = Behaviour.status(204)

        static func trickle(bytes: Int = 20, every interval: TimeInterval = 0.5) -> Behaviour {
            .trickle(status: 200, body: Array(repeating: UInt8(ascii: "."), count: bytes), interval: interval)
        }

        static let oneGigabyte = Behaviour.huge(bytes: 1 << 30)
    }

    struct TimedOut: Error, CustomStringConvertible {
        let description: String
    }

    let host: String
    let port: Int
    private let core: Core
    private let server: any Channel

    private init(host: String, port: Int, core: Core, server: any Channel) {
        self.host = host
        self.port = port
        self.core = core
        self.server = server
    }

    /// - Parameters:
    ///   - host: another loopback address (127.0.0.2 ...) to stand for a second machine.
    ///   - port: 0 for a free one.
    static func start(_ behaviour: Behaviour = .noContent, host: String = "127.0.0.1", port: Int = 0) async throws -> LoopbackReceiver {
        let core = Core(behaviour)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    core.opened(channel)
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                        name: "decoder"
                    )
                    try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder(), name: "encoder")
                    try channel.pipeline.syncOperations.addHandler(ReceiverHandler(core: core))
                }
            }
            .bind(host: host, port: port)
            .get()
        guard let port = server.localAddress?.port else { throw TimedOut(description: "the receiver has no port") }
        return LoopbackReceiver(host: host, port: port, core: core, server: server)
    }

    /// `http://127.0.0.1:<port><path>`.
    func url(_ path: String = "/hook") -> String { "http://\(host):\(port)\(path)" }

    /// What the next requests get; setting it replaces any `respond` closure.
    var behaviour: Behaviour {
        get { core.state.withLockedValue { $0.behaviour(0) } }
        set { core.state.withLockedValue { $0.behaviour = { _ in newValue } } }
    }

    /// Chooses each answer by the request's number (1 for the first request ever received).
    func respond(_ choose: @escaping @Sendable (Int) -> Behaviour) {
        core.state.withLockedValue { $0.behaviour = choose }
    }

    /// Every request received so far, first first.
    var requests: [Request] { core.state.withLockedValue { $0.requests } }

    /// Connections accepted so far (keep-alive reuse shows as fewer connections than requests).
    var connectionCount: Int { core.state.withLockedValue { $0.connectionCount } }

    /// Connections open now.
    var openConnectionCount: Int { core.state.withLockedValue { $0.connections.count } }

    /// The requests once there are at least `count`; throws when `timeout` passes first.
    @discardableResult
    func waitForRequests(count: Int, timeout: TimeInterval = 10) async throws -> [Request] {
        let end = Date().addingTimeInterval(timeout)
        while true {
            let received = requests
            if received.count >= count { return received }
            if Date() >= end { throw TimedOut(description: "received \(received.count) of \(count) requests within \(timeout) s") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Closes the listener and every connection (hanging and trickling ones included).
    func shutdown() async throws {
        try await server.close()
        for channel in core.state.withLockedValue({ Array($0.connections.values) }) {
            try? await channel.close()
        }
    }

    fileprivate final class Core: Sendable {
        struct State {
            var behaviour: @Sendable (Int) -> Behaviour
            var requests: [Request] = []
            var connections: [ObjectIdentifier: any Channel] = [:]
            var connectionCount = 0
        }

        let state: NIOLockedValueBox<State>

        init(_ behaviour: Behaviour) {
            state = NIOLockedValueBox(State(behaviour: { _ in behaviour }))
        }

        func opened(_ channel: any Channel) {
            let id = ObjectIdentifier(channel)
            state.withLockedValue {
                $0.connections[id] = channel
                $0.connectionCount += 1
            }
            channel.closeFuture.whenComplete { _ in _ = self.state.withLockedValue { $0.connections.removeValue(forKey: id) } }
        }

        /// Records a request; answers how to respond to it.
        func received(_ head: HTTPRequestHead, body: [UInt8]) -> Behaviour {
            state.withLockedValue { state in
                let number = state.requests.count + 1
                let headers = head.headers.map { ($0.name, $0.value) }
                state.requests.append(Request(number: number, method: head.method.rawValue, path: head.uri, headers: headers, body: body))
                return state.behaviour(number)
            }
        }
    }
}

/// One connection: reads requests one at a time and performs each one's behaviour.
private final class ReceiverHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Written again and again for `.huge`, so a gigabyte costs 64 KB of memory.
    private static let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)

    private let core: LoopbackReceiver.Core
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Bytes of a `.huge` body still to write.
    private var hugeRemaining = 0

    init(core: LoopbackReceiver.Core) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else { return }
            perform(core.received(head, body: body), keepAlive: head.isKeepAlive, context: context)
            self.head = nil
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && hugeRemaining > 0 { pumpHuge(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func perform(_ behaviour: LoopbackReceiver.Behaviour, keepAlive: Bool, context: ChannelHandlerContext) {
        switch behaviour {
        case .respond(let status, let headers, let body):
            writeHead(status: status, headers: headers, length: [204, 304].contains(status) ? nil : body.count, context: context)
            if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
            let done = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
            if !keepAlive { done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        case .delayed(let seconds, let then):
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1_000_000_000))) {
                guard context.channel.isActive else { return }
                self.perform(then, keepAlive: keepAlive, context: context)
            }
        case .hang:
            break
        case .trickle(let status, let body, let interval):
            writeHead(status: status, headers: [], length: body.count, context: context)
            context.flush()
            trickle(body[...], every: interval, context: context)
        case .huge(let bytes):
            writeHead(status: 200, headers: [("content-type", "application/octet-stream")], length: bytes, context: context)
            hugeRemaining = bytes
            pumpHuge(context: context)
        case .garbage:
            // Straight to the socket, past the HTTP encoder: the decoder is the first handler,
            // and a write from its context goes to the head of the pipeline.
            let raw = ByteBuffer(string: "\u{0}\u{7F}GARBAGE \u{1B}[31m not http at all\r\n\r\n")
            if let decoder = try? context.pipeline.syncOperations.context(name: "decoder") {
                decoder.writeAndFlush(NIOAny(raw), promise: nil)
            }
        case .closeMidResponse:
            writeHead(status: 200, headers: [], length: 1000, context: context)
            let done = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "partial...")))), promise: done)
            done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .close:
            context.close(promise: nil)
        }
    }

    private func writeHead(status: Int, headers: [(String, String)], length: Int?, context: ChannelHandlerContext) {
        var fields = HTTPHeaders(headers)
        if let length, !fields.contains(name: "content-length") { fields.add(name: "content-length", value: "\(length)") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    private func trickle(_ rest: ArraySlice<UInt8>, every interval: TimeInterval, context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(interval * 1_000_000_000))) {
            guard context.channel.isActive else { return }
            guard let byte = rest.first else {
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: [byte])))), promise: nil)
            self.trickle(rest.dropFirst(), every: interval, context: context)
        }
    }

    private func pumpHuge(context: ChannelHandlerContext) {
        while hugeRemaining > 0 && context.channel.isActive && context.channel.isWritable {
            let size = min(hugeRemaining, Self.chunk.readableBytes)
            let part = size == Self.chunk.readableBytes ? Self.chunk : Self.chunk.getSlice(at: 0, length: size) ?? Self.chunk
            hugeRemaining -= size
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
        }
        if hugeRemaining == 0 && context.channel.isActive { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        context.flush()
    }
}
