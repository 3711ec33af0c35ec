import Foundation
import Testing

@testable import Switchyard

/// Scripts that never end, eat memory or take their worker down: each is stopped and reported,
/// its logs so far kept, its worker replaced, and the pool's other runs go on meanwhile.
@Suite(.serialized) struct ScriptLimitTests {
    static let quick = "export async function run(input, ctx) { await ctx.sleep(5); return input.n }"

    /// A hostile script's first line: tells the test (through its host) that it is running.
    static let started = "await ctx.http.request({ url: 'https://api.example/started' });"

    /// Runs `hostile` on a pool whose workers are up, and once it is running, quick runs beside it.
    /// The quick runs must all succeed, the first of them before the hostile one is stopped.
    private func hostileBesideQuickRuns(_ pool: ScriptPool, _ hostile: ScriptRequest) async throws -> (ScriptOutcome, [ScriptOutcome], Date, Date) {
        async let first = pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(0)])), host: EchoHost())
        async let second = pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(0)])), host: EchoHost())
        _ = await (first, second)
        let host = EchoHost()
        async let stopped: (ScriptOutcome, Date) = {
            let outcome = await pool.run(hostile, host: host)
            return (outcome, Date())
        }()
        try await waitUntil { !host.calls.isEmpty }
        var quick: [ScriptOutcome] = []
        var firstDone = Date.distantFuture
        for n in 0..<5 {
            quick.append(await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(Int64(n))])), host: EchoHost()))
            if n == 0 { firstDone = Date() }
        }
        let (outcome, stoppedAt) = await stopped
        return (outcome, quick, firstDone, stoppedAt)
    }

    @Test func anEndlessAwaitChainIsKilledAtItsTimeLimit() async throws {
        let source = """
            export async function run(input, ctx) {
              \(Self.started)
              console.log('before the loop');
              while (true) { await null; }
            }
            """
        try await ScriptTesting.withPool(workers: 2) { pool in
            let (outcome, quick, quickDone, stoppedAt) = try await hostileBesideQuickRuns(pool, ScriptTesting.request(source, timeLimit: 3))
            #expect(outcome.status == .timedOut, "\(outcome.described)")
            #expect(outcome.failure?.name == "TimeLimit")
            #expect(outcome.duration >= 3)
            #expect(outcome.logs.map(\.message) == ["before the loop"])
            #expect(quick.allSatisfy { $0.status == .succeeded }, "\(quick.map(\.described))")
            #expect(quickDone < stoppedAt)
            #expect(pool.replacedWorkers == 1)
            let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(42)])), host: EchoHost())
            #expect(after.result == .int(42))
            try await waitUntil { pool.liveWorkers == 2 }
        }
    }

    @Test func aSynchronousLoopIsStoppedAtItsTimeLimit() async throws {
        let source = """
            export async function run(input, ctx) {
              \(Self.started)
              console.warn('spinning');
              let n = 0;
              while (true) { n++; }
            }
            """
        try await ScriptTesting.withPool(workers: 2) { pool in
            let (outcome, quick, quickDone, stoppedAt) = try await hostileBesideQuickRuns(pool, ScriptTesting.request(source, timeLimit: 3))
            #expect(outcome.status == .timedOut, "\(outcome.described)")
            #expect(outcome.duration >= 3)
            #expect(outcome.logs.map(\.message) == ["spinning"])
            #expect(quick.allSatisfy { $0.status == .succeeded })
            #expect(quickDone < stoppedAt)
            let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(1)])), host: EchoHost())
            #expect(after.result == .int(1))
        }
    }

    /// JavaScriptCore's stop inside a microtask (a loop after an await) once left its VM broken
    /// (reported as NeverSettled, and the next run aborted the worker): the run is the time
    /// limit's, and the worker that ran it is replaced before the next run.
    @Test(arguments: [
        "export function run() { while (true) {} }",
        "export async function run(input, ctx) { await null; while (true) {} }",
        "export async function run(input, ctx) { await ctx.sleep(1); while (true) {} }",
    ])
    func theWorkerAfterAStoppedLoopIsFresh(source: String) async throws {
        try await ScriptTesting.withPool(workers: 1) { pool in
            let stopped = await pool.run(ScriptTesting.request(source, timeLimit: 0.5), host: EchoHost())
            #expect(stopped.status == .timedOut, "\(stopped.described)")
            for n in 0..<3 {
                let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(Int64(n))])), host: EchoHost())
                #expect(after.result == .int(Int64(n)), "\(after.described)")
            }
        }
    }

    /// Scripts that turn the language against the runtime fail (or succeed) alone: the next run
    /// on the same worker gets a fresh context and the right answer.
    @Test func hostileScriptsSpoilOnlyTheirOwnRun() async throws {
        let hostile = [
            "export function run() { function f() { return f() + 1 } return f() }",
            "export function run() { return new Array(2 ** 32 - 1).fill(0).length }",
            "export function run() { return 'x'.repeat(2 ** 31) }",
            "export function run() { Promise.prototype.then = function () {}; return 1 }",
            "export async function run() { JSON.stringify = () => '{}'; Object.prototype.toJSON = () => { throw new Error('no') }; return { a: 1 } }",
            "export function run() { Object.defineProperty(globalThis, 'console', { value: null }); return Symbol('s') }",
            "export function run() { throw { toString() { throw new Error('nested') } } }",
            "export function run() { const p = new Proxy({}, { get() { throw new Error('trap') } }); return p }",
            "export async function run(input, ctx) { ctx.http = null; Error.prototype.name = 1; throw new Error('x') }",
            "export function run() { return eval('1 +') }",
        ]
        try await ScriptTesting.withPool(workers: 1) { pool in
            for (n, source) in hostile.enumerated() {
                let outcome = await pool.run(ScriptTesting.request(source, timeLimit: 5), host: EchoHost())
                #expect(outcome.status != .crashed, "\(source): \(outcome.described)")
                let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(Int64(n))])), host: EchoHost())
                #expect(after.result == .int(Int64(n)), "after \(source): \(after.described)")
            }
        }
    }

    @Test func shutdownAnswersRunningRunsAndReapsEveryWorker() async throws {
        let pool = ScriptPool(
            settings: ScriptPoolSettings(workers: 2, executable: ScriptTesting.workerExecutable, timeLimit: 30),
            logger: ScriptTesting.logger
        )
        let runs = (0..<2).map { _ in
            Task { await pool.run(ScriptTesting.request("export function run() { while (true) {} }", timeLimit: 30), host: EchoHost()) }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while pool.liveWorkers < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(300))
        let pids = pool.workerPIDs
        #expect(pids.count == 2)
        await pool.shutdown()
        for run in runs {
            let outcome = await run.value
            #expect(outcome.status == .crashed)
            #expect(outcome.failure?.message == "the server is stopping", "\(outcome.described)")
        }
        // Reaped, not only killed: the pid names no process any more.
        for pid in pids { #expect(kill(pid, 0) == -1 && errno == ESRCH, "worker \(pid) is still there") }
    }

    @Test func theServersLimitCapsTheRequests() async throws {
        try await ScriptTesting.withPool(workers: 1, timeLimit: 0.5) { pool in
            let outcome = await pool.run(
                ScriptTesting.request("export async function run(i, ctx) { while (true) await ctx.sleep(10) }", timeLimit: 60),
                host: EchoHost()
            )
            #expect(outcome.status == .timedOut)
            #expect(outcome.failure?.message.contains("0.5 s") == true, "\(outcome.described)")
        }
    }

    @Test(arguments: [
        "const hoard = []; while (true) { hoard.push(new Array(100000).fill(hoard.length)); }",
        "const hoard = []; while (true) { hoard.push(new Uint8Array(16 << 20).fill(7)); }",
        "const hoard = []; for (let i = 0; ; i++) { hoard.push('x'.repeat(1 << 20) + i); }",
    ])
    func aMemoryBombIsKilledAtTheMemoryLimit(bomb: String) async throws {
        let source = """
            export async function run(input, ctx) {
              \(Self.started)
              console.log('allocating');
              \(bomb)
            }
            """
        try await ScriptTesting.withPool(workers: 2, memoryLimitMB: 128) { pool in
            let (outcome, quick, quickDone, stoppedAt) = try await hostileBesideQuickRuns(pool, ScriptTesting.request(source, timeLimit: 20))
            #expect(outcome.status == .memoryExceeded, "\(outcome.described)")
            #expect(outcome.failure?.name == "MemoryLimit")
            #expect(outcome.logs.map(\.message) == ["allocating"])
            #expect(quick.allSatisfy { $0.status == .succeeded })
            _ = (quickDone, stoppedAt)
            #expect(pool.replacedWorkers == 1)
            let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(2)])), host: EchoHost())
            #expect(after.result == .int(2))
        }
    }

    @Test func aWorkerKilledFromOutsideIsReportedAndReplaced() async throws {
        let host = StallingHost()
        try await ScriptTesting.withPool(workers: 1) { pool in
            async let outcome = pool.run(
                ScriptTesting.request("export async function run(i, ctx) { console.log('waiting'); await ctx.http.request({ url: 'x' }) }"),
                host: host
            )
            try await waitUntil { host.called }
            let pid = try #require(pool.workerPIDs.first)
            kill(pid, SIGKILL)
            let crashed = await outcome
            #expect(crashed.status == .crashed, "\(crashed.described)")
            #expect(crashed.failure?.name == "WorkerCrashed")
            #expect(crashed.failure?.message.contains("signal 9") == true)
            #expect(crashed.logs.map(\.message) == ["waiting"])
            let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(3)])), host: EchoHost())
            #expect(after.result == .int(3))
            #expect(pool.workerPIDs != [pid])
        }
    }

    @Test func aWorkerThatCannotStartFailsTheRunNotTheServer() async throws {
        let pool = ScriptPool(settings: ScriptPoolSettings(workers: 2, executable: "/nonexistent/switchyard"), logger: ScriptTesting.logger)
        let outcomes = await withTaskGroup(of: ScriptOutcome.self) { group in
            for _ in 0..<3 { group.addTask { await pool.run(ScriptTesting.request(Self.quick), host: EchoHost()) } }
            var all: [ScriptOutcome] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.count == 3)
        #expect(outcomes.allSatisfy { $0.status == .crashed })
        await pool.shutdown()
    }

    @Test func aTestBundleIsNeverStartedAsAWorker() async {
        let pool = ScriptPool(settings: ScriptPoolSettings(workers: 1, executable: "/proc/self/exe"), logger: ScriptTesting.logger)
        let outcome = await pool.run(ScriptTesting.request(Self.quick), host: EchoHost())
        #expect(outcome.status == .crashed)
        #expect(outcome.failure?.message.contains("scriptWorkerExecutable") == true, "\(outcome.described)")
        await pool.shutdown()
    }

    /// Takes a call and never answers it (the run is cancelled first).
    final class StallingHost: ScriptHost, @unchecked Sendable {
        // Safe: `wasCalled` is only touched under `lock`.
        private let lock = NSLock()
        private var wasCalled = false
        var called: Bool { lock.withLock { wasCalled } }

        func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue {
            lock.withLock { wasCalled = true }
            try? await Task.sleep(for: .seconds(30))
            return .null
        }
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(30)
        while !condition() {
            guard Date() < deadline else {
                Issue.record("condition not met within 30 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
