import ArgumentParser
import SwitchyardScript

#if canImport(Glibc)
import Glibc
#endif

/// `switchyard script-worker`: started by the server's script pool (Scripts/ScriptPool.swift),
/// never by hand. Runs user JavaScript one run at a time, speaking frames on stdin and stdout.
struct ScriptWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "script-worker",
        abstract: "Run scripts for the server's script pool (started by the server).",
        shouldDisplay: false
    )

    @Option(help: "The pool's memory limit in MB; past half of it the worker asks for garbage collection") var memoryLimitMB = 128

    func run() throws {
        Glibc.exit(ScriptWorker.serve(memoryLimitMB: memoryLimitMB))
    }
}
