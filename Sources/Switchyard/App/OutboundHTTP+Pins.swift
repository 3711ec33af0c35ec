import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One `HTTPClient` whose connections all go to one checked address of one host (its
/// `dnsOverride`), or, for the direct pin, to the literal addresses of URLs.
///
/// `@unchecked Sendable`: `inFlight` and `retired` are only read and written under the lock of
/// the `PinTable` that made the pin.
final class Pin: @unchecked Sendable {
    let address: String?
    let client: HTTPClient
    var inFlight = 0
    var retired = false

    init(address: String?, client: HTTPClient) {
        self.address = address
        self.client = client
    }
}

/// Host → resolved, checked address → client. A request leases a pin (`inFlight` + 1) and
/// releases it when done, so a client retired because its host moved, or because it was least
/// recently used, is shut down only once no request runs on it.
final class PinTable: Sendable {
    private struct Entry {
        enum Outcome {
            case pinned(Pin)
            case refused(OutboundFailure)
        }
        var outcome: Outcome
        /// Until then used as is; after it, used while a new resolution runs, until `usableUntil`.
        var freshUntil: NIODeadline
        var usableUntil: NIODeadline
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Resolutions under way; requests for the host wait for them rather than start another.
        var resolving: [String: EventLoopFuture<Void>] = [:]
        /// Every client not yet shut down.
        var live: [ObjectIdentifier: Pin] = [:]
        var direct: Pin?
        var useCounter: UInt64 = 0
        var isShutDown = false
    }

    private enum Step {
        case use(Pin, refresh: EventLoopPromise<Void>?)
        case refuse(OutboundFailure, refresh: EventLoopPromise<Void>?)
        case wait(EventLoopFuture<Void>)
        case resolve(EventLoopPromise<Void>)
    }

    private let targetGuard: TargetGuard
    private let eventLoopGroup: any EventLoopGroup
    private let settings: OutboundHTTP.Settings
    private let resolve: @Sendable (String) throws -> [String]
    private let state = NIOLockedValueBox(State())

    init(
        guard targetGuard: TargetGuard,
        eventLoopGroup: any EventLoopGroup,
        settings: OutboundHTTP.Settings,
        resolve: @escaping @Sendable (String) throws -> [String]
    ) {
        self.targetGuard = targetGuard
        self.eventLoopGroup = eventLoopGroup
        self.settings = settings
        self.resolve = resolve
    }

    /// The client for URLs whose host is a literal address (already checked by the caller).
    func direct() throws(OutboundFailure) -> Pin {
        let pin = state.withLockedValue { state -> Pin? in
            guard !state.isShutDown else { return nil }
            let pin = state.direct ?? makePin(host: nil, address: nil, in: &state)
            state.direct = pin
            pin.inFlight += 1
            return pin
        }
        guard let pin else { throw Self.shuttingDown }
        return pin
    }

    /// The pin of `host`, resolving it first when its resolution is missing or too old.
    func lease(host: String, deadline: NIODeadline) async throws(OutboundFailure) -> Pin {
        // A resolution installs an entry that the next look finds; a third look is a safety net.
        for _ in 0..<3 {
            switch state.withLockedValue({ next(for: host, in: &$0) }) {
            case .use(let pin, let refresh):
                if let refresh { start(host: host, promise: refresh) }
                return pin
            case .refuse(let failure, let refresh):
                if let refresh { start(host: host, promise: refresh) }
                throw failure
            case .wait(let future):
                try await wait(for: future, host: host, deadline: deadline)
            case .resolve(let promise):
                start(host: host, promise: promise)
                try await wait(for: promise.futureResult, host: host, deadline: deadline)
            }
        }
        throw OutboundFailure(.resolution, "\(host) could not be resolved")
    }

    func release(_ pin: Pin) {
        let idle = state.withLockedValue { state -> Bool in
            pin.inFlight -= 1
            guard pin.retired, pin.inFlight == 0 else { return false }
            return state.live.removeValue(forKey: ObjectIdentifier(pin)) != nil
        }
        if idle { pin.client.shutdown().whenComplete { _ in } }
    }

    func shutdown() async throws {
        for pin in closeAll() { try await pin.client.shutdown() }
    }

    func shutdownUnawaited() {
        for pin in closeAll() { pin.client.shutdown().whenComplete { _ in } }
    }

    private func closeAll() -> [Pin] {
        state.withLockedValue { state in
            state.isShutDown = true
            let pins = Array(state.live.values)
            for pin in pins { pin.retired = true }
            state.live = [:]
            state.entries = [:]
            state.direct = nil
            return pins
        }
    }

    // MARK: Under the lock

    private func next(for host: String, in state: inout State) -> Step {
        guard !state.isShutDown else { return .refuse(Self.shuttingDown, refresh: nil) }
        let now = NIODeadline.now()
        state.useCounter += 1
        if var entry = state.entries[host], now < entry.usableUntil {
            entry.lastUse = state.useCounter
            state.entries[host] = entry
            var refresh: EventLoopPromise<Void>?
            if now >= entry.freshUntil && state.resolving[host] == nil {
                let promise = eventLoopGroup.any().makePromise(of: Void.self)
                state.resolving[host] = promise.futureResult
                refresh = promise
            }
            switch entry.outcome {
            case .pinned(let pin):
                pin.inFlight += 1
                return .use(pin, refresh: refresh)
            case .refused(let failure):
                return .refuse(failure, refresh: refresh)
            }
        }
        if let future = state.resolving[host] { return .wait(future) }
        let promise = eventLoopGroup.any().makePromise(of: Void.self)
        state.resolving[host] = promise.futureResult
        return .resolve(promise)
    }

    /// Records a resolution's result; answers the clients to shut down now.
    private func install(_ result: Result<[String], any Error>, host: String, in state: inout State) -> [Pin] {
        state.resolving[host] = nil
        guard !state.isShutDown else { return [] }
        let old = state.entries[host]
        var oldPin: Pin?
        if case .pinned(let pin)? = old?.outcome { oldPin = pin }
        var lifetime = settings.resolutionTTL
        let outcome: Entry.Outcome
        switch result {
        case .success(let addresses) where !addresses.isEmpty:
            if let problem = targetGuard.firstBlocked(addresses, host: host) {
                outcome = .refused(OutboundFailure(.blocked, problem.description))
            } else {
                let chosen = addresses.first { !$0.contains(":") } ?? addresses[0]
                if let oldPin, oldPin.address == chosen {
                    outcome = .pinned(oldPin)
                } else {
                    outcome = .pinned(makePin(host: host, address: chosen, in: &state))
                }
            }
        case .success:
            outcome = .refused(OutboundFailure(.resolution, "\(host) resolves to no address"))
            lifetime = min(lifetime, 5)
        case .failure(let error):
            // Short, so that a receiver whose name appears is soon reached.
            outcome = .refused(OutboundFailure(.resolution, (error as? HostResolver.Failure)?.description ?? "\(host) could not be resolved"))
            lifetime = min(lifetime, 5)
        }
        var idle: [Pin] = []
        if let oldPin, case .pinned(let pin) = outcome, pin === oldPin {
            // The same address: the same client and its warm connections.
        } else if let oldPin {
            retire(oldPin, in: &state, idle: &idle)
        }
        let now = NIODeadline.now()
        let ttl = TimeAmount.clamped(seconds: lifetime)
        state.entries[host] = Entry(outcome: outcome, freshUntil: now + ttl, usableUntil: now + ttl + ttl, lastUse: old?.lastUse ?? state.useCounter)
        while state.entries.count > max(1, settings.maximumPinnedHosts) {
            guard let (coldest, entry) = state.entries.filter({ $0.key != host }).min(by: { $0.value.lastUse < $1.value.lastUse }) else { break }
            state.entries[coldest] = nil
            if case .pinned(let pin) = entry.outcome { retire(pin, in: &state, idle: &idle) }
        }
        return idle
    }

    private func retire(_ pin: Pin, in state: inout State, idle: inout [Pin]) {
        pin.retired = true
        if pin.inFlight == 0, state.live.removeValue(forKey: ObjectIdentifier(pin)) != nil { idle.append(pin) }
    }

    private func makePin(host: String?, address: String?, in state: inout State) -> Pin {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .clamped(seconds: settings.connectTimeout)),
            connectionPool: .init(
                idleTimeout: .clamped(seconds: settings.idleConnectionTimeout),
                concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, settings.maximumConnectionsPerHost)
            ),
            decompression: .disabled
        )
        // A refused connection fails its request at once (a failed attempt the retry schedule
        // handles) instead of holding it until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        // The product exports no traces; with the default (no-op) tracer every request still
        // started and ended a span, 2 % of the CPU of a delivered webhook (bench/webhooks.sh, perf).
        configuration.tracing.tracer = nil
        if let host, let address { configuration.dnsOverride = [host: address] }
        // The second line of defence: whatever the pin, the peer of every new connection is
        // checked before a byte of the request is written to it.
        let targetGuard = targetGuard
        let checkPeer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            guard let peer = channel.remoteAddress?.ipAddress, let reason = targetGuard.check(address: peer) else {
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(BlockedPeer(address: peer, reason: reason))
        }
        configuration.http1_1ConnectionDebugInitializer = checkPeer
        configuration.http2ConnectionDebugInitializer = checkPeer
        let pin = Pin(address: address, client: HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration))
        state.live[ObjectIdentifier(pin)] = pin
        return pin
    }

    // MARK: Off the lock

    private func start(host: String, promise: EventLoopPromise<Void>) {
        let resolve = resolve
        NIOThreadPool.singleton.runIfActive(eventLoop: promise.futureResult.eventLoop) { try resolve(host) }
            .whenComplete { result in
                let idle = self.state.withLockedValue { self.install(result, host: host, in: &$0) }
                for pin in idle { pin.client.shutdown().whenComplete { _ in } }
                promise.succeed(())
            }
    }

    private func wait(for future: EventLoopFuture<Void>, host: String, deadline: NIODeadline) async throws(OutboundFailure) {
        let loop = future.eventLoop
        let waiter = loop.makePromise(of: Void.self)
        let timer = loop.scheduleTask(deadline: deadline) { waiter.fail(ChannelError.connectTimeout(.zero)) }
        future.whenComplete { _ in
            timer.cancel()
            waiter.succeed(())
        }
        do {
            try await waiter.futureResult.get()
        } catch {
            throw OutboundFailure(.timeout, "resolving \(host) took longer than the request's deadline")
        }
    }

    private static let shuttingDown = OutboundFailure(.connection, "the request was cancelled (the server is shutting down)")
}
