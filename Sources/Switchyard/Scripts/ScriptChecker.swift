import Foundation
import SwitchyardScript

/// `ScriptRunner.check` in the server's own process: JavaScriptCore parses the code
/// (JSCheckScriptSyntax) without running any of it, on a queue of its own, never on a Swift
/// concurrency thread. Parsing is linear in the code's length, which is capped at 1 MB.
final class ScriptChecker: @unchecked Sendable {
    // Safe: `engine` is created and used only on `queue`, a serial queue.
    private let queue = DispatchQueue(label: "switchyard.scripts.check")
    private var engine: ScriptEngine?

    func check(_ source: String, entries: [String]) async -> ScriptProblem? {
        await withCheckedContinuation { continuation in
            queue.async {
                let engine = self.engine ?? ScriptEngine()
                self.engine = engine
                let problem = engine.check(source, entries: entries)
                continuation.resume(returning: problem.map { ScriptProblem(message: $0.message, line: $0.line, column: $0.column) })
            }
        }
    }
}
