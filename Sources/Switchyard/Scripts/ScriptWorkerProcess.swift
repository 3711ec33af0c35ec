import Foundation
import NIOCore
import NIOPosix
import SwitchyardScript

/// One run in a worker, from `begin` to its outcome.
final class ScriptPoolRun: @unchecked Sendable {
    // Safe: created by `ScriptPool.run` and from then on read and changed only on its worker's
    // event loop (the host-call tasks hop back there before touching it).
    let frame: ByteBuffer
    let host: any ScriptHost
    let timeLimit: TimeInterval
    let started: ContinuousClock.Instant
    let continuation: CheckedContinuation<ScriptOutcome, Never>
    var logs: [ScriptLogLine] = []
    var timer: Scheduled<Void>?
    var watchdog: RepeatedTask?
    var calls: [Task<Void, Never>] = []

    init(
        frame: ByteBuffer,
        host: any ScriptHost,
        timeLimit: TimeInterval,
        started: ContinuousClock.Instant,
        continuation: CheckedContinuation<ScriptOutcome, Never>
    ) {
        self.frame = frame
        self.host = host
        self.timeLimit = timeLimit
        self.started = started
        self.continuation = continuation
    }

    func outcome(_ status: ScriptStatus, result: JSONValue? = nil, failure: ScriptFailure? = nil) -> ScriptOutcome {
        ScriptOutcome(status: status, result: result, failure: failure, logs: logs, duration: (ContinuousClock.now - started).timeInterval)
    }
}

/// A `switchyard script-worker` process seen from the server: its pipes as a NIO channel, its
/// run, its limits. Lives on one event loop of the pool's.
final class ScriptWorkerProcess: @unchecked Sendable {
    // Safe: `pid` and `eventLoop` never change; everything else is read and changed only on
    // `eventLoop` (the channel's handlers, scheduled tasks, and hops made with `execute`).
    let pid: pid_t
    let eventLoop: any EventLoop
    private let memoryLimit: Int
    private weak var pool: ScriptPool?
    private var channel: (any Channel)?
    private var ready = false
    private var current: ScriptPoolRun?
    private var killed: KillReason?
    private var exitStatus: Int32?
    /// The largest resident size the watchdog saw (not wait4's ru_maxrss: a spawned child
    /// inherits its parent's high-water mark, which is the server's).
    private var peakResident = 0
    private var closed = false
    private var dead = false
    private var retiring = false
    /// Counted by the pool (set on the loop when the pool takes it): only then does its death concern the pool.
    var registered = false
    var isDead: Bool { dead }

    enum KillReason {
        case timeLimit, memory, protocolError, shutdown
    }

    /// How much later than the run's time limit the server kills: the worker stops synchronous
    /// JavaScript itself at the limit (and lives on); awaits only a kill stops.
    static let killGrace: TimeAmount = .milliseconds(200)
    static let watchInterval: TimeAmount = .milliseconds(5)
    /// A worker not ready by then is broken (it takes ~0.1 s; far more only on a machine in trouble).
    static let startLimit: TimeAmount = .seconds(30)

    private init(pid: pid_t, eventLoop: any EventLoop, memoryLimit: Int, pool: ScriptPool) {
        self.pid = pid
        self.eventLoop = eventLoop
        self.memoryLimit = memoryLimit
        self.pool = pool
    }

    /// Starts the process (on `loop`'s thread, which it dies with) and its channel.
    static func spawn(settings: ScriptPoolSettings, on loop: any EventLoop, pool: ScriptPool) -> EventLoopFuture<ScriptWorkerProcess> {
        let spawned: SpawnedWorker
        do {
            spawned = try SpawnedWorker.start(settings.executable, ["script-worker", "--memory-limit-mb", "\(settings.memoryLimitMB)"])
        } catch {
            return loop.makeFailedFuture(error)
        }
        let worker = ScriptWorkerProcess(pid: spawned.pid, eventLoop: loop, memoryLimit: settings.memoryLimitMB << 20, pool: pool)
        pool.processBegan()
        worker.watchExit()
        return NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ScriptWorkerFrames.Decoder()))
                    try channel.pipeline.syncOperations.addHandler(ScriptWorkerHandler(worker))
                }
            }
            .takingOwnershipOfDescriptors(input: spawned.output, output: spawned.input)
            .map { channel in
                worker.attach(channel)
                return worker
            }
            .flatMapErrorThrowing { error in
                worker.kill(.protocolError)
                throw error
            }
    }

    private func attach(_ channel: any Channel) {
        self.channel = channel
        eventLoop.scheduleTask(in: Self.startLimit) {
            if !self.ready { self.kill(.protocolError) }
        }
        channel.closeFuture.whenComplete { _ in
            self.closed = true
            if self.exitStatus == nil {
                // A worker that closed its stdout lives on only by mistake.
                self.eventLoop.scheduleTask(in: .seconds(1)) { self.kill(.protocolError) }
            } else {
                self.finish()
            }
        }
    }

    /// Waits for the process to end on a thread of its own (waitid blocks) without reaping it,
    /// then reaps it on the loop: until `exitStatus` is set there, the pid cannot be reused, so
    /// `kill` never reaches another process.
    private func watchExit() {
        let pid = pid
        let thread = Thread {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            self.eventLoop.execute { self.exited() }
        }
        thread.name = "script-worker-\(pid)"
        thread.start()
    }

    private func exited() {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exitStatus = status
        if closed || channel == nil {
            finish()
        } else if let channel {
            // Whatever the worker wrote is read first (its logs); the pipe's end closes the channel.
            eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        }
    }

    func kill(_ reason: KillReason) {
        guard exitStatus == nil, killed == nil else { return }
        killed = reason
        _ = Glibc.kill(pid, SIGKILL)
    }

    // MARK: - Runs

    func begin(_ run: ScriptPoolRun) {
        guard !dead, current == nil, let channel else {
            run.continuation.resume(
                returning: run.outcome(.crashed, failure: ScriptFailure(name: "WorkerCrashed", message: "the script worker died"))
            )
            return
        }
        current = run
        channel.writeAndFlush(run.frame, promise: nil)
        // A worker still starting does not spend the run's time: the limits start when it is ready.
        if ready { arm(run) }
    }

    private func arm(_ run: ScriptPoolRun) {
        run.timer = eventLoop.scheduleTask(in: .nanoseconds(Int64(run.timeLimit * 1e9)) + Self.killGrace) {
            if self.current === run { self.kill(.timeLimit) }
        }
        run.watchdog = eventLoop.scheduleRepeatedTask(initialDelay: Self.watchInterval, delay: Self.watchInterval) { _ in
            guard self.current === run else { return }
            let resident = self.residentBytes()
            self.peakResident = max(self.peakResident, resident)
            if resident > self.memoryLimit { self.kill(.memory) }
        }
    }

    func received(_ frame: ScriptWorkerFrames.Frame) {
        var payload = frame.payload
        switch frame.type {
        case ScriptFrame.ready:
            ready = true
            if let run = current { arm(run) }
        case ScriptFrame.log:
            guard let run = current, let line = ScriptWorkerFrames.logLine(&payload) else { return }
            if run.logs.count <= ScriptWorkerFrames.maximumLogLines { run.logs.append(line) }
        case ScriptFrame.call:
            guard let run = current, let (id, function, argument) = ScriptWorkerFrames.call(&payload) else { return }
            call(run, id, function, argument)
        case ScriptFrame.done:
            guard let run = current, let succeeded = payload.readInteger(as: UInt8.self) else { return }
            let text = payload.readString(length: payload.readableBytes) ?? ""
            let outcome = ScriptWorkerFrames.outcome(run, succeeded: succeeded == 1, json: text)
            // JavaScriptCore stopped the run at its limit: the worker exits (its VM is not to be
            // trusted after that), so it takes no other run.
            if outcome.status == .timedOut {
                retiring = true
                kill(.timeLimit)
            }
            complete(run, outcome)
        default:
            kill(.protocolError)
        }
    }

    private func call(_ run: ScriptPoolRun, _ id: UInt32, _ function: String, _ argument: String) {
        if function == "sleep" {
            let milliseconds = min(max(Double(argument) ?? 0, 0), run.timeLimit * 1000)
            eventLoop.scheduleTask(in: .microseconds(Int64(milliseconds * 1000))) {
                if self.current === run { self.answer(id, resolved: true, "null") }
            }
            return
        }
        let host = run.host
        let value = (try? JSONValue.parse(text: argument)) ?? .null
        run.calls.append(
            Task {
                let answer = await ScriptWorkerFrames.ask(host, function, value)
                self.eventLoop.execute {
                    if self.current === run { self.answer(id, resolved: answer.resolved, answer.text) }
                }
            }
        )
    }

    private func answer(_ id: UInt32, resolved: Bool, _ text: String) {
        guard let channel else { return }
        channel.writeAndFlush(ScriptWorkerFrames.answer(id, resolved: resolved, text), promise: nil)
    }

    private func complete(_ run: ScriptPoolRun, _ outcome: ScriptOutcome) {
        guard current === run else { return }
        current = nil
        run.timer?.cancel()
        run.watchdog?.cancel()
        for call in run.calls { call.cancel() }
        if !dead, !retiring { pool?.release(self) }
        run.continuation.resume(returning: outcome)
    }

    /// Exited and its pipe read to the end: the run (if any) gets its outcome, the pool a replacement.
    private func finish() {
        guard !dead, let status = exitStatus else { return }
        dead = true
        defer { pool?.processEnded() }
        let signal = status & 0x7F
        let reason: String
        switch killed {
        case .timeLimit: reason = "time limit"
        case .memory: reason = "memory limit"
        case .protocolError: reason = "protocol error"
        case .shutdown: reason = "shutdown"
        case nil where signal == 0 && (status >> 8) & 0xFF == ScriptWorker.stoppedAtTimeLimit: reason = "time limit"
        case nil: reason = signal == 0 ? "exit status \((status >> 8) & 0xFF)" : "signal \(signal)"
        }
        // The pool first, so whoever reads the outcome sees the replacement under way.
        if registered { pool?.died(self, reason: reason, wasReady: ready, peakResident: peakResident) }
        if let run = current {
            let limit = run.timeLimit
            switch killed {
            case .timeLimit:
                complete(
                    run,
                    run.outcome(
                        .timedOut,
                        failure: ScriptFailure(name: "TimeLimit", message: "the run was stopped at its time limit of \(limit.formatted) s")
                    )
                )
            case .memory:
                complete(run, run.outcome(.memoryExceeded, failure: memoryFailure))
            case nil where signal != 0 && peakResident >= memoryLimit * 9 / 10:
                complete(run, run.outcome(.memoryExceeded, failure: memoryFailure))
            case .shutdown:
                complete(run, run.outcome(.crashed, failure: ScriptFailure(name: "WorkerCrashed", message: "the server is stopping")))
            default:
                complete(run, run.outcome(.crashed, failure: ScriptFailure(name: "WorkerCrashed", message: "the script worker died (\(reason))")))
            }
        }
    }

    private var memoryFailure: ScriptFailure {
        ScriptFailure(name: "MemoryLimit", message: "the run was stopped at the memory limit of \(memoryLimit >> 20) MB")
    }

    /// The process's resident memory, from /proc/PID/statm (a read of kernel memory, no disk).
    private func residentBytes() -> Int {
        let file = open("/proc/\(pid)/statm", O_RDONLY)
        guard file >= 0 else { return 0 }
        defer { close(file) }
        var buffer = (0..<64).map { _ in UInt8(0) }
        let count = read(file, &buffer, buffer.count)
        guard count > 0 else { return 0 }
        let fields = buffer[0..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

private final class ScriptWorkerHandler: ChannelInboundHandler {
    typealias InboundIn = ScriptWorkerFrames.Frame
    private let worker: ScriptWorkerProcess

    init(_ worker: ScriptWorkerProcess) { self.worker = worker }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        worker.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        worker.kill(.protocolError)
        context.close(promise: nil)
    }
}

extension TimeInterval {
    /// `10`, `0.5`: a limit as people write it.
    fileprivate var formatted: String { self == rounded() ? String(Int(self)) : String(self) }
}
