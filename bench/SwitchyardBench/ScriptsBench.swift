import Foundation
import Logging
import Switchyard

// switchyard-bench scripts [--seconds S] [--workers N] [--worker PATH]
//
// Isolated script runs through the ScriptPool (each run a fresh context in a worker process),
// beside the same function called in a warm context in this process (InProcessScriptRunner,
// not isolated), in the same run: latency one run at a time (p50/p99, and the overhead of
// isolation) back to back and 2 ms apart (at a low rate, when each worker has prepared its next
// context; back to back, the preparing worker competes for the cores), then runs per second
// from 16 concurrent callers. A trivial connector, and one making a ctx.http.request answered
// by the host.

private let trivialConnector = "export async function run(input, ctx) { return { id: input.id, ok: true } }"
private let httpConnector = """
    export async function run(input, ctx) {
      const answer = await ctx.http.request({ method: 'GET', url: 'https://api.example/items/' + input.id });
      return { id: input.id, status: answer.status, item: answer.json() };
    }
    """

/// Answers every request at once, as a provider that is infinitely fast.
private struct InstantHost: ScriptHost {
    func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue {
        .object(["status": .int(200), "headers": .object([:]), "body": .string(#"{"name":"item"}"#)])
    }
}

private func request(_ source: String, _ n: Int) -> ScriptRequest {
    ScriptRequest(
        source: source,
        entry: "run",
        arguments: [.json(.object(["id": .int(Int64(n))])), .context(.object(["config": .object(["baseUrl": .string("https://api.example")])]))]
    )
}

private func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

private func milliseconds(_ value: Double) -> String { String(format: "%.3f ms", value * 1000) }

/// One run at a time, isolated and in-process alternately, for `seconds`.
private func latency(_ pool: ScriptPool, _ local: InProcessScriptRunner, _ source: String, seconds: Double, gap: Int = 0) async throws {
    let host = InstantHost()
    var isolated: [Double] = []
    var inProcess: [Double] = []
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    var n = 0
    while ContinuousClock.now < deadline {
        let first = ContinuousClock.now
        let outcome = await pool.run(request(source, n), host: host)
        let second = ContinuousClock.now
        let baseline = await local.run(request(source, n), host: host)
        let third = ContinuousClock.now
        guard outcome.status == .succeeded, baseline.status == .succeeded, outcome.result == baseline.result else {
            throw BenchFailure("the runs disagree: \(outcome.status) \(String(describing: outcome.failure)) / \(baseline.status)")
        }
        isolated.append((second - first).timeInterval)
        inProcess.append((third - second).timeInterval)
        n += 1
        if gap > 0 { try await Task.sleep(for: .milliseconds(gap)) }
    }
    // The overhead of a run: its time minus the in-process run made right after it.
    let overhead = zip(isolated, inProcess).map { $0 - $1 }.sorted()
    isolated.sort()
    inProcess.sort()
    print("  one at a time, \(gap == 0 ? "back to back" : "\(gap) ms apart (each worker's next context ready)"), \(n) runs each:")
    for (name, values) in [("isolated (pool, fresh context)", isolated), ("in-process warm context", inProcess)] {
        print(
            "    \(name.padding(toLength: 32, withPad: " ", startingAt: 0)) p50 \(milliseconds(percentile(values, 0.5)))  p99 \(milliseconds(percentile(values, 0.99)))"
        )
    }
    print("    overhead of isolation            p50 \(milliseconds(percentile(overhead, 0.5)))  p99 \(milliseconds(percentile(overhead, 0.99)))")
}

/// Runs per second from `callers` concurrent callers for `seconds`.
private func throughput(_ runner: any ScriptRunner, _ source: String, callers: Int, seconds: Double) async throws -> Double {
    let host = InstantHost()
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let start = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for caller in 0..<callers {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    let outcome = await runner.run(request(source, caller * 1_000_000 + count), host: host)
                    guard outcome.status == .succeeded else { throw BenchFailure("a run failed: \(String(describing: outcome.failure))") }
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    return Double(total) / (ContinuousClock.now - start).timeInterval
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func scriptsBenchmark() async throws {
    let seconds = Double(value(after: "--seconds") ?? "") ?? 3
    let workers = Int(value(after: "--workers") ?? "") ?? 2
    let running = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let executable = value(after: "--worker") ?? URL(fileURLWithPath: running).deletingLastPathComponent().appendingPathComponent("switchyard").path
    let pool = ScriptPool(settings: ScriptPoolSettings(workers: workers, executable: executable), logger: logger)
    let local = InProcessScriptRunner()
    print("scripts: \(workers) workers (\(executable)), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(seconds) s a measurement")
    for (name, source) in [("trivial connector", trivialConnector), ("connector with one ctx.http.request", httpConnector)] {
        print("\(name):")
        for n in 0..<300 {
            _ = await pool.run(request(source, n), host: InstantHost())
            _ = await local.run(request(source, n), host: InstantHost())
        }
        try await latency(pool, local, source, seconds: seconds, gap: 0)
        try await latency(pool, local, source, seconds: seconds, gap: 2)
        let isolated = try await throughput(pool, source, callers: 16, seconds: seconds)
        let inProcess = try await throughput(local, source, callers: 16, seconds: seconds)
        print("  16 concurrent callers:")
        print("    isolated (pool)                  \(Int(isolated)) runs/s")
        print("    in-process warm context          \(Int(inProcess)) runs/s (one thread)")
    }
    await pool.shutdown()
}
