import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How the server's script workers run: how many, which executable, the limits of a run.
public struct ScriptPoolSettings: Sendable {
    /// Worker processes at most; each runs one script at a time.
    public var workers: Int
    /// The program started as `<executable> script-worker`: the running binary in `serve`.
    public var executable: String
    /// The longest a run may take (a request may ask for less).
    public var timeLimit: TimeInterval
    /// A worker whose resident memory passes this is killed with its run (`memory_exceeded`).
    public var memoryLimitMB: Int

    public init(workers: Int = 2, executable: String = "/proc/self/exe", timeLimit: TimeInterval = 10, memoryLimitMB: Int = 128) {
        self.workers = workers
        self.executable = executable
        self.timeLimit = timeLimit
        self.memoryLimitMB = memoryLimitMB
    }
}

/// The server's `ScriptRunner`: a pool of `switchyard script-worker` processes, started on first
/// use (a pool that never runs a script starts nothing), one run per worker at a time, runs
/// queued in order when every worker is busy. A worker past a run's time limit or the memory
/// limit is killed (SIGKILL) with its run, and a worker that dies is replaced; other runs go on.
/// The workers' pipes are served by an event loop of the pool's own, so no Swift concurrency
/// thread ever waits on a worker. `check` parses in this process (ScriptChecker), running nothing.
public final class ScriptPool: ScriptRunner {
    public let settings: ScriptPoolSettings
    let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let checker = ScriptChecker()

    private struct State {
        var group: MultiThreadedEventLoopGroup?
        var stopped = false
        /// Started and not yet dead, by identity.
        var workers: [ObjectIdentifier: ScriptWorkerProcess] = [:]
        /// Workers being started (counted against `settings.workers` with `workers`).
        var starting = 0
        var idle: [ScriptWorkerProcess] = []
        var waiting: [CheckedContinuation<Lease, Never>] = []
        var replaced = 0
        /// Worker processes spawned and not yet finished, whether the pool took them or not: each
        /// still hops onto its loop when it is reaped, so the group outlives them all.
        var processes = 0
    }

    enum Lease {
        case worker(ScriptWorkerProcess)
        case unavailable(String)
    }

    public init(settings: ScriptPoolSettings, logger: Logger) {
        var settings = settings
        settings.workers = max(1, settings.workers)
        self.settings = settings
        self.logger = logger
    }

    deinit {
        // A pool dropped without shutdown() (tests) still leaves no process or thread behind.
        let (group, workers) = state.withLockedValue { state in
            state.stopped = true
            return (state.group, Array(state.workers.values))
        }
        for worker in workers { worker.eventLoop.execute { worker.kill(.shutdown) } }
        group?.shutdownGracefully { _ in }
    }

    public func run(_ request: ScriptRequest, host: any ScriptHost) async -> ScriptOutcome {
        let started = ContinuousClock.now
        let timeLimit = max(0.001, min(request.timeLimit, settings.timeLimit))
        let frame = ScriptWorkerFrames.run(request, timeLimit: timeLimit)
        switch await acquire() {
        case .unavailable(let message):
            return ScriptOutcome(
                status: .crashed,
                failure: ScriptFailure(name: "WorkerCrashed", message: message),
                duration: (ContinuousClock.now - started).timeInterval
            )
        case .worker(let worker):
            return await withCheckedContinuation { continuation in
                let run = ScriptPoolRun(
                    frame: frame,
                    host: host,
                    timeLimit: timeLimit,
                    started: started,
                    continuation: continuation
                )
                worker.eventLoop.execute { worker.begin(run) }
            }
        }
    }

    public func check(_ source: String, entries: [String]) async -> ScriptProblem? {
        await checker.check(source, entries: entries)
    }

    /// Kills every worker; runs under way end `crashed`, runs still queued too.
    public func shutdown() async {
        let (group, workers, waiting) = state.withLockedValue { state in
            state.stopped = true
            defer { state.waiting = [] }
            return (state.group, Array(state.workers.values), state.waiting)
        }
        for continuation in waiting { continuation.resume(returning: .unavailable("the server is stopping")) }
        for worker in workers { worker.eventLoop.execute { worker.kill(.shutdown) } }
        let deadline = ContinuousClock.now + .seconds(5)
        while state.withLockedValue({ $0.processes > 0 || $0.starting > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        guard state.withLockedValue({ $0.processes == 0 && $0.starting == 0 }) else {
            // A worker reaped after its loop shut down would schedule on a dead loop, which NIO
            // traps on (the crash at the end of `switchyard-bench scripts`): the group is left to
            // the process's exit instead.
            logger.warning("script workers still winding down at shutdown; their event loop is left running")
            return
        }
        try? await group?.shutdownGracefully()
        state.withLockedValue { $0.group = nil }
    }

    /// A worker process exists (called once it is spawned, before anything is scheduled for it).
    func processBegan() { state.withLockedValue { $0.processes += 1 } }

    /// A worker process was reaped and has finished; nothing of it runs on its loop any more.
    func processEnded() { state.withLockedValue { $0.processes -= 1 } }

    /// Workers started and alive, for tests and health logs.
    public var liveWorkers: Int { state.withLockedValue { $0.workers.count } }
    /// The process ids of the live workers (tests kill one to see the pool recover).
    var workerPIDs: [pid_t] { state.withLockedValue { $0.workers.values.map(\.pid) } }
    /// Workers that died and were replaced (or will be, on demand) since the pool started.
    public var replacedWorkers: Int { state.withLockedValue { $0.replaced } }

    // MARK: - Workers in and out

    private func acquire() async -> Lease {
        await withCheckedContinuation { continuation in
            let action: (() -> Void)? = state.withLockedValue { state in
                if state.stopped { return { continuation.resume(returning: .unavailable("the server is stopping")) } }
                // The longest idle first: it has had the most time to prepare its next context.
                if !state.idle.isEmpty {
                    let worker = state.idle.removeFirst()
                    return { continuation.resume(returning: .worker(worker)) }
                }
                state.waiting.append(continuation)
                guard state.workers.count + state.starting < settings.workers else { return nil }
                state.starting += 1
                let group = state.group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
                state.group = group
                return { self.start(on: group.next()) }
            }
            action?()
        }
    }

    /// Starts a worker on `loop`, the thread it then belongs to (and the parent it dies with).
    private func start(on loop: any EventLoop) {
        let settings = settings
        loop.execute {
            ScriptWorkerProcess.spawn(settings: settings, on: loop, pool: self).whenComplete { result in
                switch result {
                case .success(let worker) where worker.isDead: self.failedToStart("the script worker exited at once")
                case .success(let worker):
                    worker.registered = true
                    self.started(worker)
                case .failure(let error): self.failedToStart("the script worker could not start: \(error)")
                }
            }
        }
    }

    private func started(_ worker: ScriptWorkerProcess) {
        let keep = state.withLockedValue { state in
            state.starting -= 1
            guard !state.stopped else { return false }
            state.workers[ObjectIdentifier(worker)] = worker
            return true
        }
        if keep { release(worker) } else { worker.eventLoop.execute { worker.kill(.shutdown) } }
    }

    private func failedToStart(_ message: String) {
        logger.error("script worker did not start", metadata: ["error": "\(message)", "executable": "\(settings.executable)"])
        let (failed, retry) = state.withLockedValue { state -> (CheckedContinuation<Lease, Never>?, (any EventLoop)?) in
            state.starting -= 1
            let failed = state.waiting.isEmpty ? nil : state.waiting.removeFirst()
            guard !state.stopped, !state.waiting.isEmpty, state.workers.count + state.starting < settings.workers, let group = state.group else {
                return (failed, nil)
            }
            state.starting += 1
            return (failed, group.next())
        }
        failed?.resume(returning: .unavailable(message))
        if let retry { start(on: retry) }
    }

    /// A worker free for the next run: the longest-waiting run gets it.
    func release(_ worker: ScriptWorkerProcess) {
        let next = state.withLockedValue { state -> CheckedContinuation<Lease, Never>? in
            guard !state.stopped, state.workers[ObjectIdentifier(worker)] != nil else { return nil }
            if !state.waiting.isEmpty { return state.waiting.removeFirst() }
            state.idle.append(worker)
            return nil
        }
        next?.resume(returning: .worker(worker))
    }

    /// A worker died (its run, if any, already answered): replaced at once when it had started
    /// well or runs are waiting; a worker that dies before it is ready is replaced only on demand.
    func died(_ worker: ScriptWorkerProcess, reason: String, wasReady: Bool, peakResident: Int) {
        let (loop, health) = state.withLockedValue { state -> ((any EventLoop)?, Logger.Metadata) in
            state.workers[ObjectIdentifier(worker)] = nil
            state.idle.removeAll { $0 === worker }
            guard !state.stopped else { return (nil, [:]) }
            state.replaced += 1
            var loop: (any EventLoop)?
            if wasReady || !state.waiting.isEmpty, state.workers.count + state.starting < settings.workers, let group = state.group {
                state.starting += 1
                loop = group.next()
            }
            let health: Logger.Metadata = [
                "pid": "\(worker.pid)", "reason": "\(reason)", "peak_rss_mb": "\(peakResident >> 20)", "live_workers": "\(state.workers.count)",
                "starting": "\(state.starting)", "queued_runs": "\(state.waiting.count)", "replaced_total": "\(state.replaced)",
            ]
            return (loop, health)
        }
        guard !health.isEmpty else { return }
        logger.warning("script worker replaced", metadata: health)
        if let loop { start(on: loop) }
    }
}
