import Foundation
import SwitchyardScript

/// The same engine as the workers, in this process, calling the entry again in one warm context:
/// NOT isolated (runs of the same code share globals, and nothing but JavaScriptCore's limit on
/// synchronous loops stops a run). Only the script benchmark's baseline uses it.
public final class InProcessScriptRunner: ScriptRunner, @unchecked Sendable {
    // Safe: every mutable property is used only on `queue`, a serial queue.
    private let queue = DispatchQueue(label: "switchyard.scripts.in-process")
    private var engine: ScriptEngine?
    private var waiting: [Pending] = []
    private var current: Pending?

    private final class Pending: ScriptEngineDelegate, @unchecked Sendable {
        // Safe: used only on the runner's queue.
        let request: ScriptRequest
        let host: any ScriptHost
        let started = ContinuousClock.now
        let continuation: CheckedContinuation<ScriptOutcome, Never>
        weak var runner: InProcessScriptRunner?
        var logs: [ScriptLogLine] = []

        init(request: ScriptRequest, host: any ScriptHost, continuation: CheckedContinuation<ScriptOutcome, Never>) {
            self.request = request
            self.host = host
            self.continuation = continuation
        }

        func scriptLog(level: UInt8, message: String, at microseconds: Int64) {
            logs.append(
                ScriptLogLine(
                    level: ScriptFrame.logLevels[Int(min(level, 3))],
                    message: message,
                    at: Date(timeIntervalSince1970: Double(microseconds) / 1e6)
                )
            )
        }

        func scriptCall(id: UInt32, function: String, argument: String) {
            guard let runner else { return }
            if function == "sleep" {
                runner.queue.asyncAfter(deadline: .now() + (Double(argument) ?? 0) / 1000) { runner.answer(self, id, true, "null") }
                return
            }
            let host = host
            let value = (try? JSONValue.parse(text: argument)) ?? .null
            Task {
                let answer = await ScriptWorkerFrames.ask(host, function, value)
                runner.queue.async { runner.answer(self, id, answer.resolved, answer.text) }
            }
        }

        func scriptDone(succeeded: Bool, json: String) {
            let (status, result, failure) = ScriptOutcomes.parse(succeeded: succeeded, json: json, timeLimit: request.timeLimit)
            let outcome = ScriptOutcome(
                status: status,
                result: result,
                failure: failure,
                logs: logs,
                duration: (ContinuousClock.now - started).timeInterval
            )
            continuation.resume(returning: outcome)
            runner?.queue.async { self.runner?.finished(self) }
        }
    }

    public init() {}

    public func run(_ request: ScriptRequest, host: any ScriptHost) async -> ScriptOutcome {
        await withCheckedContinuation { continuation in
            let pending = Pending(request: request, host: host, continuation: continuation)
            pending.runner = self
            queue.async {
                self.waiting.append(pending)
                self.startNext()
            }
        }
    }

    public func check(_ source: String, entries: [String]) async -> ScriptProblem? {
        await withCheckedContinuation { continuation in
            queue.async {
                let problem = self.engineOnQueue().check(source, entries: entries)
                continuation.resume(returning: problem.map { ScriptProblem(message: $0.message, line: $0.line, column: $0.column) })
            }
        }
    }

    private func engineOnQueue() -> ScriptEngine {
        if let engine { return engine }
        let made = ScriptEngine()
        engine = made
        return made
    }

    private func startNext() {
        guard current == nil, !waiting.isEmpty else { return }
        let next = waiting.removeFirst()
        current = next
        let engine = engineOnQueue()
        engine.delegate = next
        let request = next.request
        engine.start(ScriptWorkerFrames.job(request, timeLimit: request.timeLimit), warmContext: true)
    }

    private func answer(_ pending: Pending, _ id: UInt32, _ resolved: Bool, _ text: String) {
        guard current === pending else { return }
        engine?.answer(call: id, resolved: resolved, text: text)
    }

    private func finished(_ pending: Pending) {
        if current === pending { current = nil }
        startNext()
    }
}
