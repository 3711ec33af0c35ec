import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Turns the event log into deliveries and sends them, continuously: fan-out reads the log in
/// commit order past its cursor and writes one delivery per matching endpoint (leased to this
/// process, so it sends them at once, with no claim); retries, FIFO turns and what a killed process
/// left are claimed when due. Each result is recorded as soon as it is known (group-committed with
/// the others on SQLite), so after a crash only the attempts in flight are made again.
///
/// Not a `WorkerService`: that runs a batch and waits for its slowest job, and one hanging receiver
/// would hold back every other endpoint's deliveries behind it.
public final class DeliveryWorker: Service, Sendable {
    let database: Database
    let clock: any WallClock
    let events: EventService
    let sender: DeliverySender
    let targets: DeliveryTargets
    let signal: EventSignal
    let logger: Logger
    /// How long a delivery is held by the process sending it: longer than an attempt can take.
    let lease: TimeInterval
    let pollInterval: Duration
    let fanOutBatch = 500
    let maximumInFlight = 1024
    private let state = NIOLockedValueBox(State())

    struct State {
        var inFlight = 0
        var earliestDue: Date?
        var lastClaim = Date.distantPast
    }

    init(
        database: Database,
        clock: any WallClock,
        events: EventService,
        sender: DeliverySender,
        targets: DeliveryTargets,
        signal: EventSignal,
        logger: Logger,
        pollInterval: Duration = .seconds(1)
    ) {
        self.database = database
        self.clock = clock
        self.events = events
        self.sender = sender
        self.targets = targets
        self.signal = signal
        self.logger = logger
        // The timeout bounds an attempt, body included; a killed process's deliveries come back
        // this long after it died (45 s with the default timeout).
        self.lease = sender.settings.timeout + 30
        self.pollInterval = pollInterval
    }

    /// Fans out everything new, claims everything due, and sends it all, waiting for the results.
    /// Tests call this (after moving their clock) instead of running the service.
    @discardableResult
    public func runDue() async throws -> Int {
        var total = 0
        while true {
            var jobs = try await fanOut()
            jobs += try await claimDue()
            if jobs.isEmpty { return total }
            total += jobs.count
            await withDiscardingTaskGroup { group in
                for job in jobs { group.addTask { await self.sender.deliver(job) } }
            }
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Self.stopping {
                    await self.recordPending()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
                }
            }
            var recheck = false
            while !Self.stopping {
                var jobs: [DeliveryJob] = []
                do {
                    if state.withLockedValue({ $0.inFlight }) < maximumInFlight {
                        jobs = try await fanOut()
                        if shouldClaim() { jobs += try await claimDue() }
                    }
                } catch {
                    logger.warning("webhook delivery: \(error)")
                }
                for job in jobs {
                    state.withLockedValue { $0.inFlight += 1 }
                    group.addTask {
                        if let next = await self.sender.deliver(job) { self.note(due: next) }
                        self.state.withLockedValue { $0.inFlight -= 1 }
                        self.signal.signal()
                    }
                }
                if !jobs.isEmpty {
                    recheck = true
                    continue
                }
                // On PostgreSQL an event is signalled before its transaction commits: look once
                // more shortly after a wake that found nothing, before the long wait.
                let wait: Duration = recheck ? .milliseconds(20) : waitUntilDue()
                recheck = false
                await signal.wait(for: wait)
                if signal.consume() { recheck = true }
            }
        }
    }

    private static var stopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    private func note(due: Date) {
        state.withLockedValue { state in
            if state.earliestDue.map({ due < $0 }) ?? true { state.earliestDue = due }
        }
    }

    private func shouldClaim() -> Bool {
        let now = clock.now
        return state.withLockedValue { state in
            guard state.earliestDue.map({ $0 <= now }) ?? false || now.timeIntervalSince(state.lastClaim) >= pollInterval.timeInterval else {
                return false
            }
            state.lastClaim = now
            state.earliestDue = nil
            return true
        }
    }

    private func waitUntilDue() -> Duration {
        let now = clock.now
        guard let due = state.withLockedValue({ $0.earliestDue }) else { return pollInterval }
        let wait = Duration.milliseconds(max(1, Int64(due.timeIntervalSince(now) * 1000)))
        return min(wait, pollInterval)
    }

    /// One batch of the log past the cursor, as deliveries; those due are returned, leased.
    func fanOut() async throws -> [DeliveryJob] {
        let now = clock.now
        let leasedUntil = now.addingTimeInterval(lease)
        let batch = fanOutBatch
        let targets = targets
        let events = events
        return try await database.write { tx -> [DeliveryJob] in
            guard let cursor = try FanOutStore.lockCursor(tx) else { return [] }
            let rows = try events.log(tx, after: cursor, limit: batch)
            guard let last = rows.last else { return [] }
            let workspaceIDs = Array(Set(rows.map(\.event.workspaceId)))
            var endpoints: [String: [DeliveryTarget]] = [:]
            for row in try EndpointStore.receiving(tx, workspaceIDs: workspaceIDs) {
                endpoints[row.endpoint.workspaceID, default: []].append(try targets.target(for: row))
            }
            var deliveries: [Delivery] = []
            var jobs: [DeliveryJob] = []
            var fifoBusy: [String: Bool] = [:]
            for row in rows {
                let event = row.event
                for target in endpoints[event.workspaceId] ?? [] where event.occurredAt >= target.createdAt && target.matcher.matches(event) {
                    var delivery = Delivery(
                        id: ID.make("dlv", at: now),
                        endpointID: target.id,
                        workspaceID: event.workspaceId,
                        eventID: event.id,
                        eventType: event.type,
                        eventPosition: row.position,
                        status: .pending,
                        attempts: 0,
                        roundAttempts: 0,
                        nextAttemptAt: now,
                        lastStatus: nil,
                        lastError: nil,
                        createdAt: now,
                        updatedAt: now,
                        finishedAt: nil
                    )
                    if target.status == .disabled {
                        delivery.status = .failed
                        delivery.nextAttemptAt = nil
                        delivery.lastError = "The endpoint was disabled when the event arrived; recover sends it once it is active again."
                        delivery.finishedAt = now
                    } else if target.fifo {
                        let busy = try fifoBusy[target.id] ?? FanOutStore.fifoBusy(tx, endpointID: target.id)
                        if busy { delivery.nextAttemptAt = nil }
                        fifoBusy[target.id] = true
                    }
                    deliveries.append(delivery)
                    if delivery.status == .pending, delivery.nextAttemptAt != nil {
                        jobs.append(DeliveryJob(delivery: delivery, target: target, event: event))
                    }
                }
            }
            try DeliveryStore.insert(tx, deliveries, leasedUntil: leasedUntil)
            try FanOutStore.moveCursor(tx, to: (last.position, last.event.id))
            return jobs
        }
    }

    /// Due deliveries (retries, FIFO turns, manual retries, and what a killed process held).
    func claimDue() async throws -> [DeliveryJob] {
        let now = clock.now
        let leasedUntil = now.addingTimeInterval(lease)
        let targets = targets
        let events = events
        return try await database.write { tx -> [DeliveryJob] in
            let claimed = try DeliveryStore.claim(tx, now: now, leasedUntil: leasedUntil, limit: 500)
            guard !claimed.isEmpty else { return [] }
            let found = try events.events(tx, ids: Array(Set(claimed.map(\.eventID))))
            var endpoints: [String: DeliveryTarget] = [:]
            for id in Set(claimed.map(\.endpointID)) {
                if let row = try EndpointStore.row(tx, id: id) { endpoints[id] = try targets.target(for: row) }
            }
            var jobs: [DeliveryJob] = []
            for delivery in claimed {
                guard let target = endpoints[delivery.endpointID] else { continue }
                guard let event = found[delivery.eventID] else {
                    _ = try DeliveryStore.record(
                        tx,
                        id: delivery.id,
                        status: .failed,
                        nextAttemptAt: nil,
                        httpStatus: nil,
                        error: "The event is no longer in the log.",
                        now: now
                    )
                    continue
                }
                jobs.append(DeliveryJob(delivery: delivery, target: target, event: event))
            }
            return jobs
        }
    }

    /// The number of pending deliveries, for `/metrics`.
    func recordPending() async {
        if let count = try? await database.read({ tx in try DeliveryStore.pendingCount(tx) }) {
            Gauge(label: "switchyard_webhook_deliveries_pending").record(count)
        }
    }
}

/// Wakes the delivery worker when an event is appended in this process, so a delivery does not
/// wait for the poll. Signals coalesce: one wake serves every event before it.
public final class EventSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (token: Int, continuation: CheckedContinuation<Void, Never>)?
        var tokens = 0
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    public func signal() {
        state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.pending = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }?.resume()
    }

    /// Whether a signal came since the last call, clearing it.
    func consume() -> Bool {
        state.withLockedValue { state in
            defer { state.pending = false }
            return state.pending
        }
    }

    /// Returns at the next signal (at once if one is pending) or after `timeout`. One waiter at a
    /// time: the worker's loop.
    func wait(for timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let token = state.withLockedValue { state -> Int? in
                if state.pending { return nil }
                state.tokens += 1
                state.waiter?.continuation.resume()
                state.waiter = (state.tokens, continuation)
                return state.tokens
            }
            guard let token else { return continuation.resume() }
            Task {
                try? await Task.sleep(for: timeout)
                self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                    guard let waiter = state.waiter, waiter.token == token else { return nil }
                    state.waiter = nil
                    return waiter.continuation
                }?.resume()
            }
        }
    }
}
