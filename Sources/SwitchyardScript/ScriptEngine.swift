import CJavaScriptCore

#if canImport(Glibc)
import Glibc
#endif

/// What the engine tells its owner while a run goes on. Every method is called on the engine's
/// thread, inside a call the owner made (`start`, `answer`).
public protocol ScriptEngineDelegate: AnyObject {
    /// A `console` line; `level` indexes `ScriptFrame.logLevels`.
    func scriptLog(level: UInt8, message: String, at microseconds: Int64)
    /// A host function call (`http.request`, `sleep`) waiting for `ScriptEngine.answer(call:…)`.
    func scriptCall(id: UInt32, function: String, argument: String)
    /// The run's end: the result's JSON text ("" for undefined), or a failure's JSON object.
    func scriptDone(succeeded: Bool, json: String)
}

/// One run as the engine takes it: JSON texts in, JSON texts out.
public struct ScriptJob: Sendable {
    public var source: String
    public var entry: String
    /// The arguments, a JSON array text.
    public var arguments: String
    /// One character an argument: `j` a plain value, `c` a context (gets `http` and `sleep`).
    public var kinds: String
    public var timeLimit: Double
    public var maximumHostCalls: Int

    public init(source: String, entry: String, arguments: String, kinds: String, timeLimit: Double, maximumHostCalls: Int) {
        self.source = source
        self.entry = entry
        self.arguments = arguments
        self.kinds = kinds
        self.timeLimit = timeLimit
        self.maximumHostCalls = maximumHostCalls
    }
}

/// JavaScriptCore with the host's prelude: a fresh context for every run (prepared ahead of
/// demand by `prepare()`), never one context for two runs — except the warm context the
/// in-process benchmark baseline asks for. Not thread-safe: one thread at a time, and every
/// JavaScriptCore call of a context is made through here.
public final class ScriptEngine {
    public weak var delegate: (any ScriptEngineDelegate)?
    public static let maximumSourceLength = 1 << 20

    let group: JSContextGroupRef
    private var spare: PreparedContext?
    private var current: Run?
    private var warm: (source: String, entry: String, prepared: PreparedContext, function: JSObjectRef)?
    private var checkContext: JSGlobalContextRef?
    private var nextCall: UInt32 = 1
    /// Rewritten modules by source: the same connector runs again and again.
    private var modules: [String: ModuleSource] = [:]
    private static let cachedModules = 64

    public init() {
        group = JSContextGroupCreate()
    }

    deinit {
        if let current { finishCleanup(current) }
        spare?.release()
        if let warm {
            JSValueUnprotect(warm.prepared.context, warm.function)
            warm.prepared.release()
        }
        if let checkContext { JSGlobalContextRelease(checkContext) }
        JSContextGroupRelease(group)
    }

    public var isRunning: Bool { current != nil }

    /// JavaScriptCore stopped a run at its time limit. Its VM is not to be trusted after that (a
    /// termination inside a microtask can leave it broken): the worker reports the run, then exits.
    public private(set) var wasTerminated = false

    /// Makes the next run's context now, so the run does not wait for it.
    public func prepare() {
        if spare == nil { spare = PreparedContext(engine: self) }
    }

    /// Asks JavaScriptCore to collect garbage soon (the contexts of finished runs are garbage).
    public func collectGarbage() {
        prepare()
        if let spare { JSGarbageCollect(spare.context) }
    }

    /// Starts a run; it ends with `delegate.scriptDone`, perhaps before this returns.
    public func start(_ job: ScriptJob, warmContext: Bool = false) {
        precondition(current == nil, "one run at a time")
        if warmContext, let warm, warm.source == job.source, warm.entry == job.entry {
            let run = Run(prepared: warm.prepared, job: job, warm: true)
            current = run
            invoke(run, warm.function)
            return
        }
        let prepared = spare ?? PreparedContext(engine: self)
        spare = nil
        let run = Run(prepared: prepared, job: job, warm: warmContext)
        current = run
        guard job.source.utf8.count <= Self.maximumSourceLength else {
            return fail(run, failureJSON(name: "SyntaxError", message: "the code is longer than \(Self.maximumSourceLength) bytes"))
        }
        let module: ModuleSource
        if let cached = modules[job.source] {
            module = cached
        } else {
            do {
                module = try ModuleSource(job.source)
            } catch {
                return fail(run, failureJSON(name: "SyntaxError", message: error.message, line: error.line, column: error.column))
            }
            // Small ones only: the cache counts against the worker's memory limit.
            if job.source.utf8.count <= 64 << 10 {
                if modules.count >= Self.cachedModules { modules.removeAll(keepingCapacity: true) }
                modules[job.source] = module
            }
        }
        let context = prepared.context
        let script = ScriptPrelude.strictPrefix + module.script
        var exception: JSValueRef?
        limitTime(run)
        _ = evaluate(context, script, url: ScriptPrelude.userURL, exception: &exception)
        if wasTerminated { return fail(run, Self.timeLimitJSON) }
        if let exception {
            if isTermination(exception, run) { return fail(run, Self.timeLimitJSON) }
            if stringProperty(context, exception, "name") == "SyntaxError", stack(context, exception) == nil {
                let message = stringProperty(context, exception, "message") ?? "syntax error"
                let located = ScriptSyntax.located(script, message: message, line: intProperty(context, exception, "line") ?? 1, in: context)
                return fail(run, failureJSON(name: "SyntaxError", message: located.message, line: located.line, column: located.column))
            }
            return fail(run, describe(run, exception))
        }
        guard let binding = module.exports[job.entry] else {
            return fail(run, failureJSON(name: "EntryError", message: Self.notExported(job.entry)))
        }
        let value = evaluate(context, binding, url: ScriptPrelude.url, exception: &exception)
        guard exception == nil, let value, JSValueIsObject(context, value), let function = JSValueToObject(context, value, nil),
            JSObjectIsFunction(context, function)
        else {
            return fail(run, failureJSON(name: "EntryError", message: "\(job.entry) is exported but is not a function"))
        }
        if warmContext {
            if let old = warm {
                JSValueUnprotect(old.prepared.context, old.function)
                old.prepared.release()
            }
            JSValueProtect(context, function)
            warm = (job.source, job.entry, prepared, function)
        }
        invoke(run, function)
    }

    /// The host's answer to call `id`: `resolved` with a JSON text, or rejected with a message.
    public func answer(call id: UInt32, resolved: Bool, text: String) {
        guard let run = current, let functions = run.pending.removeValue(forKey: id) else { return }
        let context = run.prepared.context
        defer {
            JSValueUnprotect(context, functions.resolve)
            JSValueUnprotect(context, functions.reject)
        }
        var value: JSValueRef? = withJSString(text) { resolved ? JSValueMakeFromJSONString(context, $0) : JSValueMakeString(context, $0) }
        var settle = resolved ? functions.resolve : functions.reject
        if value == nil {
            value = withJSString("the host's answer is not JSON") { JSValueMakeString(context, $0) }
            settle = functions.reject
        }
        var exception: JSValueRef?
        limitTime(run)
        _ = call(context, settle, [value], exception: &exception)
        settled(run, exception)
    }

    /// A problem with `source` found without running it: what JavaScriptCore would not parse, an
    /// export form the engine does not accept, or an entry it does not export.
    public func check(_ source: String, entries: [String]) -> (message: String, line: Int?, column: Int?)? {
        guard source.utf8.count <= Self.maximumSourceLength else { return ("the code is longer than \(Self.maximumSourceLength) bytes", nil, nil) }
        let module: ModuleSource
        do {
            module = try ModuleSource(source)
        } catch {
            return (error.message, error.line, error.column)
        }
        if checkContext == nil { checkContext = JSGlobalContextCreateInGroup(group, nil) }
        if let error = ScriptSyntax.check(module, in: checkContext) { return (error.message, error.line, error.column) }
        for entry in entries where module.exports[entry] == nil { return (Self.notExported(entry), nil, nil) }
        return nil
    }

    static func notExported(_ entry: String) -> String {
        entry == "default"
            ? "the code has no default export"
            : "the code does not export \(entry): write export async function \(entry)(…) { … }"
    }

    static let timeLimitJSON = failureJSON(name: "TimeLimit", message: "the run took longer than its time limit")

    // MARK: - Inside a run

    private func invoke(_ run: Run, _ function: JSObjectRef) {
        let context = run.prepared.context
        guard let values = withJSString(run.job.arguments, { JSValueMakeFromJSONString(context, $0) }) else {
            return fail(run, failureJSON(name: "Error", message: "the arguments are not a JSON array"))
        }
        let kinds = withJSString(run.job.kinds) { JSValueMakeString(context, $0) }
        var exception: JSValueRef?
        limitTime(run)
        _ = call(context, run.prepared.start, [function, values, kinds], exception: &exception)
        settled(run, exception)
    }

    /// After every entry into JavaScript: ends the run when nothing can settle it any more.
    private func settled(_ run: Run, _ exception: JSValueRef?) {
        if wasTerminated {
            finish(run, succeeded: false, json: Self.timeLimitJSON)
        } else if !run.finished {
            if let exception {
                finish(run, succeeded: false, json: isTermination(exception, run) ? Self.timeLimitJSON : describe(run, exception))
            } else if run.pending.isEmpty {
                let message = "the run's promise can never settle: it awaits something that is not the host's answer to a call"
                finish(run, succeeded: false, json: failureJSON(name: "NeverSettled", message: message))
            }
        }
        if run.finished { finishCleanup(run) }
    }

    private func fail(_ run: Run, _ json: String) {
        finish(run, succeeded: false, json: json)
        finishCleanup(run)
    }

    fileprivate func finish(_ run: Run, succeeded: Bool, json: String) {
        guard !run.finished else { return }
        run.finished = true
        delegate?.scriptDone(succeeded: succeeded, json: json)
    }

    private func finishCleanup(_ run: Run) {
        let context = run.prepared.context
        for functions in run.pending.values {
            JSValueUnprotect(context, functions.resolve)
            JSValueUnprotect(context, functions.reject)
        }
        run.pending = [:]
        if !run.warm { run.prepared.release() }
        if current === run { current = nil }
    }

    private func describe(_ run: Run, _ exception: JSValueRef) -> String {
        var thrown: JSValueRef?
        let described = call(run.prepared.context, run.prepared.describe, [exception], exception: &thrown)
        guard thrown == nil, let described, JSValueIsString(run.prepared.context, described) else {
            return failureJSON(name: "Error", message: swiftString(run.prepared.context, exception))
        }
        return swiftString(run.prepared.context, described)
    }

    private func stack(_ context: JSContextRef?, _ exception: JSValueRef) -> String? { stringProperty(context, exception, "stack") }

    private func isTermination(_ exception: JSValueRef, _ run: Run) -> Bool {
        monotonicNanoseconds() >= run.deadline || swiftString(run.prepared.context, exception) == "JavaScript execution terminated."
    }

    /// Synchronous JavaScript stops at the run's deadline (awaits are the server's to stop).
    private func limitTime(_ run: Run) {
        let remaining = Double(Int64(run.deadline) - Int64(monotonicNanoseconds())) / 1e9
        let engine = Unmanaged.passUnretained(self).toOpaque()
        JSContextGroupSetExecutionTimeLimit(group, max(0.001, remaining), terminate, engine)
    }

    // MARK: - Host functions

    func hostCall(_ context: JSContextRef?, _ arguments: [JSValueRef?]) -> JSValueRef? {
        var resolve: JSObjectRef?
        var reject: JSObjectRef?
        var exception: JSValueRef?
        guard let promise = JSObjectMakeDeferredPromise(context, &resolve, &reject, &exception), let resolve, let reject else {
            return JSValueMakeUndefined(context)
        }
        func rejectNow(_ message: String) -> JSValueRef? {
            var ignored: JSValueRef?
            _ = call(context, reject, [withJSString(message) { JSValueMakeString(context, $0) }], exception: &ignored)
            return promise
        }
        guard let run = current, JSContextGetGlobalContext(context) == run.prepared.context else { return rejectNow("this run has ended") }
        let function = swiftString(context, arguments.first ?? nil)
        if function != "sleep" {
            run.calls += 1
            if run.calls > run.job.maximumHostCalls {
                return rejectNow("too many host calls: a run may make \(run.job.maximumHostCalls)")
            }
        }
        var argument = "null"
        if arguments.count > 1, let value = arguments[1] {
            var thrown: JSValueRef?
            if let json = JSValueCreateJSONString(context, value, 0, &thrown) {
                argument = swiftString(json)
                JSStringRelease(json)
            } else if let thrown {
                return rejectNow("the request is not JSON: \(swiftString(context, thrown))")
            }
        }
        let id = nextCall
        nextCall &+= 1
        JSValueProtect(context, resolve)
        JSValueProtect(context, reject)
        run.pending[id] = (resolve, reject)
        delegate?.scriptCall(id: id, function: function, argument: argument)
        return promise
    }

    func log(_ context: JSContextRef?, _ arguments: [JSValueRef?]) {
        guard arguments.count >= 2, let run = current, JSContextGetGlobalContext(context) == run.prepared.context else { return }
        let level = UInt8(clamping: Int(JSValueToNumber(context, arguments[0], nil).isFinite ? JSValueToNumber(context, arguments[0], nil) : 0))
        delegate?.scriptLog(level: min(level, 3), message: swiftString(context, arguments[1]), at: realtimeMicroseconds())
    }

    func finished(_ context: JSContextRef?, _ arguments: [JSValueRef?]) {
        guard arguments.count >= 2, let run = current, JSContextGetGlobalContext(context) == run.prepared.context else { return }
        let succeeded = JSValueToBoolean(context, arguments[0])
        // JavaScriptCore's termination at the time limit can reach an async function's promise
        // as a rejection: a failure past the deadline is the time limit's.
        if wasTerminated || (!succeeded && monotonicNanoseconds() >= run.deadline) {
            return finish(run, succeeded: false, json: Self.timeLimitJSON)
        }
        finish(run, succeeded: succeeded, json: swiftString(context, arguments[1]))
    }

    fileprivate func terminating() { wasTerminated = true }

    static func owner(of context: JSContextRef?) -> ScriptEngine? {
        guard let global = JSContextGetGlobalObject(context), let pointer = JSObjectGetPrivate(global) else { return nil }
        return Unmanaged<ScriptEngine>.fromOpaque(pointer).takeUnretainedValue()
    }
}

/// JavaScriptCore's question at the time limit: stop, and remember that it did.
private let terminate: JSShouldTerminateCallback = { _, engine in
    if let engine { Unmanaged<ScriptEngine>.fromOpaque(engine).takeUnretainedValue().terminating() }
    return true
}

private final class Run {
    let prepared: PreparedContext
    let job: ScriptJob
    let warm: Bool
    let deadline: UInt64
    var pending: [UInt32: (resolve: JSObjectRef, reject: JSObjectRef)] = [:]
    var calls = 0
    var finished = false

    init(prepared: PreparedContext, job: ScriptJob, warm: Bool) {
        self.prepared = prepared
        self.job = job
        self.warm = warm
        deadline = monotonicNanoseconds() + UInt64(max(0, job.timeLimit) * 1e9)
    }
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func realtimeMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}
