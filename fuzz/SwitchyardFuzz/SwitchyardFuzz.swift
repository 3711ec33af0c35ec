import Foundation
import SwitchyardFuzzChecks

/// The parser under test, chosen by SWITCHYARD_FUZZ_TARGET: `json` (the default) or `query`.
enum FuzzTarget {
    static let check: @Sendable ([UInt8]) -> [String] = {
        switch ProcessInfo.processInfo.environment["SWITCHYARD_FUZZ_TARGET"] ?? "json" {
        case "query": return QueryFuzzCheck.problems
        case "json": return JSONFuzzCheck.problems
        case let other: fatalError("SWITCHYARD_FUZZ_TARGET=\(other): expected json or query")
        }
    }()

    static func shown(_ problem: String) -> String { problem.count > 600 ? problem.prefix(600) + "…" : problem }
}

#if SWITCHYARD_LIBFUZZER
import CLibFuzzer

/// Built by scripts/fuzz.sh with -sanitize=fuzzer: libFuzzer takes the command line and calls
/// `fuzzOne` for each input. A broken property traps, so libFuzzer keeps the input as a crash.
@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
    }
}

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let problem = FuzzTarget.check(bytes).first { fatalError(FuzzTarget.shown(problem)) }
    return 0
}
#else
/// Without libFuzzer (a plain `swift build`): replays the files and folders named, e.g. a saved
/// crash input under a debug build for a full backtrace.
@main
struct Replay {
    static func main() throws {
        var failed = 0
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw CocoaError(.fileNoSuchFile) }
            let files = isFolder.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                count += 1
                let problems = FuzzTarget.check(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                for problem in problems { print("\(file): \(FuzzTarget.shown(problem))") }
                if !problems.isEmpty { failed += 1 }
            }
        }
        print("\(count - failed) passed, \(failed) failed")
        if failed > 0 { exit(1) }
    }
}
#endif
