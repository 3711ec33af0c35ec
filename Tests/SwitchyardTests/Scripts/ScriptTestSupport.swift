import Foundation
import Logging
import Testing

@testable import Switchyard

/// Script pools over the real worker: the `switchyard` executable built next to the test bundle
/// (`swift build --build-tests` builds it), or SWITCHYARD_SCRIPT_WORKER.
enum ScriptTesting {
    static let workerExecutable: String = {
        if let path = ProcessInfo.processInfo.environment["SWITCHYARD_SCRIPT_WORKER"], !path.isEmpty { return path }
        let running = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: running).deletingLastPathComponent().appendingPathComponent("switchyard").path
    }()

    static let logger = Logger(label: "script-tests")

    /// A pool for `body`, shut down afterwards.
    static func withPool<T>(
        workers: Int = 2,
        timeLimit: TimeInterval = 10,
        memoryLimitMB: Int = 128,
        _ body: (ScriptPool) async throws -> T
    ) async throws -> T {
        let pool = ScriptPool(
            settings: ScriptPoolSettings(workers: workers, executable: workerExecutable, timeLimit: timeLimit, memoryLimitMB: memoryLimitMB),
            logger: logger
        )
        do {
            let result = try await body(pool)
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    static func request(
        _ source: String,
        entry: String = "run",
        input: JSONValue = .object([:]),
        context: JSONValue = .object([:]),
        timeLimit: TimeInterval = 10,
        maximumHostCalls: Int = 50
    ) -> ScriptRequest {
        ScriptRequest(
            source: source,
            entry: entry,
            arguments: [.json(input), .context(context)],
            timeLimit: timeLimit,
            maximumHostCalls: maximumHostCalls
        )
    }
}

/// Answers `http.request` with the request it got (as the JSON body), or rejects when the URL's
/// host is `fail.example`; records every call.
final class EchoHost: ScriptHost, @unchecked Sendable {
    // Safe: `recorded` is only touched under `lock`.
    private let lock = NSLock()
    private var recorded: [JSONValue] = []

    var calls: [JSONValue] { lock.withLock { recorded } }

    func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue {
        lock.withLock { recorded.append(argument) }
        guard function == "http.request" else { throw ScriptHostError("no such host function: \(function)") }
        if case .string(let url) = argument.objectValue?["url"] ?? .null, url.contains("fail.example") {
            throw ScriptHostError("connection refused by fail.example")
        }
        return .object([
            "status": .int(201),
            "headers": .object(["content-type": .string("application/json")]),
            "body": .string(argument.jsonText),
        ])
    }
}

extension ScriptOutcome {
    var described: String {
        "status \(status.rawValue), result \(result?.jsonText ?? "nil"), failure \(failure.map { "\($0.name): \($0.message) @\($0.line ?? -1):\($0.column ?? -1)" } ?? "nil"), logs \(logs.map(\.message))"
    }
}
