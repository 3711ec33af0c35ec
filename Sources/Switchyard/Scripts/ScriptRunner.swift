import Foundation

/// One run of user JavaScript: connector code, custom auth, OAuth callback code, a webhook
/// transformation. Each run gets a fresh context that serves no other run.
public struct ScriptRequest: Sendable {
    /// The code as the user saved it (`export async function run(input, ctx) {…}`).
    public var source: String
    /// The exported function to call (`run`, `authenticate`, `exchange`, `refresh`, `transform`).
    public var entry: String
    /// The arguments, in order.
    public var arguments: [ScriptArgument]
    /// Seconds, from the start of the run to its answer, awaits included; the run is killed past it.
    public var timeLimit: TimeInterval
    /// Host calls (`ctx.http.request`) allowed in this run; the next one rejects.
    public var maximumHostCalls: Int

    public init(source: String, entry: String, arguments: [ScriptArgument], timeLimit: TimeInterval = 10, maximumHostCalls: Int = 50) {
        self.source = source
        self.entry = entry
        self.arguments = arguments
        self.timeLimit = timeLimit
        self.maximumHostCalls = maximumHostCalls
    }
}

public enum ScriptArgument: Sendable {
    /// A plain JSON value.
    case json(JSONValue)
    /// A JSON object to which the runtime adds `http.request(options)` (answered by the run's
    /// `ScriptHost`) and `sleep(milliseconds)`: the `ctx` of a connector.
    case context(JSONValue)
}

/// What the script's host answers for it: the server side of `ctx.http.request`.
public protocol ScriptHost: Sendable {
    /// `function` is `"http.request"`; `argument` the options the script gave. The answer
    /// resolves the script's promise; a thrown `ScriptHostError` rejects it with that message.
    func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue
}

public struct ScriptHostError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct ScriptLogLine: Sendable, Equatable, Codable {
    /// `log`, `info`, `warn` or `error`.
    public var level: String
    public var message: String
    public var at: Date

    public init(level: String, message: String, at: Date) {
        self.level = level
        self.message = message
        self.at = at
    }
}

/// What was thrown, or why the run was stopped; `line`/`column` point into the saved source.
public struct ScriptFailure: Sendable, Equatable, Codable {
    /// `Error`, `TypeError`, … or the runtime's own: `TimeLimit`, `MemoryLimit`, `WorkerCrashed`, `ShapeError`.
    public var name: String
    public var message: String
    public var line: Int?
    public var column: Int?
    public var stack: String?

    public init(name: String, message: String, line: Int? = nil, column: Int? = nil, stack: String? = nil) {
        self.name = name
        self.message = message
        self.line = line
        self.column = column
        self.stack = stack
    }
}

public enum ScriptStatus: String, Sendable, Codable, CaseIterable {
    case succeeded, failed
    case timedOut = "timed_out"
    case memoryExceeded = "memory_exceeded"
    case crashed
}

public struct ScriptOutcome: Sendable {
    public var status: ScriptStatus
    /// The value the entry returned (or its promise resolved to); nil for `undefined`.
    public var result: JSONValue?
    public var failure: ScriptFailure?
    public var logs: [ScriptLogLine]
    /// Seconds from the request to the answer.
    public var duration: TimeInterval

    public init(status: ScriptStatus, result: JSONValue? = nil, failure: ScriptFailure? = nil, logs: [ScriptLogLine] = [], duration: TimeInterval) {
        self.status = status
        self.result = result
        self.failure = failure
        self.logs = logs
        self.duration = duration
    }
}

/// A syntax error found when code is saved, or an entry the code does not export.
public struct ScriptProblem: Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int?
    public var column: Int?

    public init(message: String, line: Int? = nil, column: Int? = nil) {
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        guard let line else { return message }
        return "\(message) (line \(line)\(column.map { ", column \($0)" } ?? ""))"
    }
}

/// Runs scripts in isolation. The server's is the pool of `switchyard script-worker` processes
/// (Scripts/ScriptPool.swift); callers never learn where a run happened.
public protocol ScriptRunner: Sendable {
    /// Never throws: whatever the script did, the outcome says it.
    func run(_ request: ScriptRequest, host: any ScriptHost) async -> ScriptOutcome
    /// Compiles `source`; nil when it is valid and exports every one of `entries`.
    func check(_ source: String, entries: [String]) async -> ScriptProblem?
    /// Stops whatever the runner started (the pool's worker processes); runs after it fail.
    func shutdown() async
}

extension ScriptRunner {
    public func shutdown() async {}
}
