import CJavaScriptCore

#if canImport(Glibc)
import Glibc
#endif

/// The `switchyard script-worker` process: runs scripts sent on stdin one at a time, answering
/// on stdout (ScriptFrames.swift). Single-threaded: it blocks reading stdin only between JavaScript
/// calls, and while idle it prepares the next run's context. The server kills it at a run's time
/// or memory limit; it exits by itself when stdin closes or its parent dies.
public enum ScriptWorker {
    /// The exit status after JavaScriptCore stopped a run at its time limit (reported first).
    public static let stoppedAtTimeLimit: Int32 = 75

    /// Serves until stdin ends; the exit status.
    public static func serve(memoryLimitMB: Int) -> Int32 {
        _ = switchyard_die_with_parent()
        signal(SIGPIPE, SIG_IGN)
        let loop = WorkerLoop(collectAbove: max(16, memoryLimitMB / 2) << 20)
        return loop.serve()
    }
}

private final class WorkerLoop: ScriptEngineDelegate {
    private let engine = ScriptEngine()
    private let collectAbove: Int
    private var input: [UInt8] = []
    private var consumed = 0
    private var ended = false

    init(collectAbove: Int) {
        self.collectAbove = collectAbove
        engine.delegate = self
    }

    func serve() -> Int32 {
        engine.prepare()
        var ready = FrameWriter(type: ScriptFrame.ready)
        send(ready.finished())
        while let (type, payload) = nextFrame() {
            var reader = FrameReader(payload)
            do {
                switch type {
                case ScriptFrame.run:
                    let timeLimit = Double(try reader.u32()) / 1000
                    let calls = Int(try reader.u32())
                    let entry = try reader.string()
                    let kinds = try reader.string()
                    let source = try reader.string()
                    let job = ScriptJob(
                        source: source,
                        entry: entry,
                        arguments: reader.rest(),
                        kinds: kinds,
                        timeLimit: timeLimit,
                        maximumHostCalls: calls
                    )
                    if !engine.isRunning { engine.start(job) }
                case ScriptFrame.answer:
                    let id = try reader.u32()
                    let resolved = try reader.u8() == 1
                    engine.answer(call: id, resolved: resolved, text: reader.rest())
                default:
                    break
                }
            } catch {
                return 3
            }
            if engine.wasTerminated { return ScriptWorker.stoppedAtTimeLimit }
            if !engine.isRunning { idle() }
        }
        return 0
    }

    /// Between runs: a hint to collect garbage when the process has grown (JSGarbageCollect only
    /// reports an abandoned object graph), then the next context.
    private func idle() {
        if residentBytes() > collectAbove { engine.collectGarbage() }
        engine.prepare()
    }

    private func residentBytes() -> Int {
        let file = open("/proc/self/statm", O_RDONLY)
        guard file >= 0 else { return 0 }
        defer { close(file) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = read(file, &buffer, buffer.count)
        guard count > 0 else { return 0 }
        let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    // MARK: - Frames

    private func nextFrame() -> (UInt8, ArraySlice<UInt8>)? {
        while true {
            let available = input.count - consumed
            if available >= 5 {
                var length = 0
                for shift in 0..<4 { length |= Int(input[consumed + shift]) << (8 * shift) }
                guard length >= 1, length <= ScriptFrame.maximumLength else { return nil }
                if available >= 4 + length {
                    let type = input[consumed + 4]
                    let payload = input[(consumed + 5)..<(consumed + 4 + length)]
                    consumed += 4 + length
                    return (type, payload)
                }
            }
            if ended { return nil }
            if consumed > 0 && consumed == input.count {
                input.removeAll(keepingCapacity: true)
                consumed = 0
            } else if consumed > 1 << 20 {
                input.removeSubrange(0..<consumed)
                consumed = 0
            }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let count = read(0, &chunk, chunk.count)
            if count > 0 {
                input.append(contentsOf: chunk[0..<count])
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                ended = true
            }
        }
    }

    private func send(_ frame: [UInt8]) {
        var offset = 0
        while offset < frame.count {
            let written = frame[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                // The server is gone.
                exit(0)
            }
        }
    }

    // MARK: - ScriptEngineDelegate

    func scriptLog(level: UInt8, message: String, at microseconds: Int64) {
        var frame = FrameWriter(type: ScriptFrame.log, capacity: message.utf8.count + 9)
        frame.u8(level)
        frame.i64(microseconds)
        frame.rest(message)
        send(frame.finished())
    }

    func scriptCall(id: UInt32, function: String, argument: String) {
        var frame = FrameWriter(type: ScriptFrame.call, capacity: argument.utf8.count + function.utf8.count + 8)
        frame.u32(id)
        frame.string(function)
        frame.rest(argument)
        send(frame.finished())
    }

    func scriptDone(succeeded: Bool, json: String) {
        var frame = FrameWriter(type: ScriptFrame.done, capacity: json.utf8.count + 1)
        frame.u8(succeeded ? 1 : 0)
        frame.rest(json)
        send(frame.finished())
    }
}
