import Foundation
import Testing

@testable import Switchyard

/// Scripts that never end, eat memory or take their worker down: each is stopped and reported,
/// its logs so far kept, its worker replaced, and the pool's other runs go on meanwhile.
@Suite struct ScriptLimitTests {
    static let quick = "export async function run(input, ctx) { await ctx.sleep(5); return input.n }"

    /// Runs `hostile` beside a stream of quick runs on the same pool; the quick ones must all have
    /// finished, succeeded, before the hostile one is stopped.
    private func hostileBesideQuickRuns(_ pool: ScriptPool, _ hostile: ScriptRequest) async -> (ScriptOutcome, [ScriptOutcome], Date, Date) {
        async let stopped: (ScriptOutcome, Date) = {
            let outcome = await pool.run(hostile, host: EchoHost())
            return (outcome, Date())
        }()
        // Let the hostile run take its worker first.
        try? await Task.sleep(for: .milliseconds(150))
        var quick: [ScriptOutcome] = []
        for n in 0..<10 {
            quick.append(await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(Int64(n))])), host: EchoHost()))
        }
        let quickDone = Date()
        let (outcome, stoppedAt) = await stopped
        return (outcome, quick, quickDone, stoppedAt)
    }

    @Test func anEndlessAwaitChainIsKilledAtItsTimeLimit() async throws {
        let source = """
            export async function run() {
              console.log('before the loop');
              while (true) { await null; }
            }
            """
        try await ScriptTesting.withPool(workers: 2) { pool in
            let (outcome, quick, quickDone, stoppedAt) = await hostileBesideQuickRuns(pool, ScriptTesting.request(source, timeLimit: 3))
            #expect(outcome.status == .timedOut, "\(outcome.described)")
            #expect(outcome.failure?.name == "TimeLimit")
            #expect(outcome.duration >= 3 && outcome.duration < 10)
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
            export function run() {
              console.warn('spinning');
              let n = 0;
              while (true) { n++; }
            }
            """
        try await ScriptTesting.withPool(workers: 2) { pool in
            let (outcome, quick, quickDone, stoppedAt) = await hostileBesideQuickRuns(pool, ScriptTesting.request(source, timeLimit: 3))
            #expect(outcome.status == .timedOut, "\(outcome.described)")
            #expect(outcome.duration >= 3 && outcome.duration < 10)
            #expect(outcome.logs.map(\.message) == ["spinning"])
            #expect(quick.allSatisfy { $0.status == .succeeded })
            #expect(quickDone < stoppedAt)
            let after = await pool.run(ScriptTesting.request(Self.quick, input: .object(["n": .int(1)])), host: EchoHost())
            #expect(after.result == .int(1))
        }
    }

    @Test func theServersLimitCapsTheRequests() async throws {
        try await ScriptTesting.withPool(workers: 1, timeLimit: 0.5) { pool in
            let outcome = await pool.run(
                ScriptTesting.request("export async function run(i, ctx) { while (true) await ctx.sleep(10) }", timeLimit: 60),
                host: EchoHost()
            )
            #expect(outcome.status == .timedOut)
            #expect(outcome.duration < 3)
        }
    }

    @Test func aMemoryBombIsKilledAtTheMemoryLimit() async throws {
        let source = """
            export async function run() {
              console.log('allocating');
              const hoard = [];
              while (true) { hoard.push(new Array(100000).fill(hoard.length)); }
            }
            """
        try await ScriptTesting.withPool(workers: 2, memoryLimitMB: 128) { pool in
            let (outcome, quick, quickDone, stoppedAt) = await hostileBesideQuickRuns(pool, ScriptTesting.request(source, timeLimit: 20))
            #expect(outcome.status == .memoryExceeded, "\(outcome.described)")
            #expect(outcome.failure?.name == "MemoryLimit")
            #expect(outcome.logs.map(\.message) == ["allocating"])
            #expect(quick.allSatisfy { $0.status == .succeeded })
            #expect(quickDone < stoppedAt || outcome.duration < 1)
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
