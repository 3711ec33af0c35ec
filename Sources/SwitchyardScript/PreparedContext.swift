import CJavaScriptCore

#if canImport(Glibc)
import Glibc
#endif

/// A fresh context with the prelude run: `console` in place, the prelude's `start` and `describe`
/// kept (protected) for the engine. Its global object's private data points at the engine, which
/// is how the host functions (plain C callbacks) find it.
final class PreparedContext {
    let context: JSGlobalContextRef
    let start: JSObjectRef
    let describe: JSObjectRef
    private var released = false

    // Safe: created once (Swift's lazy static initialisation is thread-safe) and only read after.
    nonisolated(unsafe) private static let globalClass: JSClassRef? = {
        var definition = kJSClassDefinitionEmpty
        definition.className = UnsafePointer(strdup("Global"))
        return JSClassCreate(&definition)
    }()

    // Safe: made once, never changed; JavaScriptCore strings are immutable and thread-safe.
    nonisolated(unsafe) private static let prelude = makeJSString(ScriptPrelude.source)

    init(engine: ScriptEngine) {
        context = JSGlobalContextCreateInGroup(engine.group, Self.globalClass)
        JSObjectSetPrivate(JSContextGetGlobalObject(context), Unmanaged.passUnretained(engine).toOpaque())
        var exception: JSValueRef?
        let factory = evaluate(context, Self.prelude, url: ScriptPrelude.url, exception: &exception)
        let functions = [
            Self.function(context, "host", hostCallback),
            Self.function(context, "log", logCallback),
            Self.function(context, "finish", finishCallback),
        ]
        let made = call(context, JSValueToObject(context, factory, nil), functions, exception: &exception)
        guard exception == nil, let start = Self.object(context, made, "start"), let describe = Self.object(context, made, "describe") else {
            // The prelude is ours: failing to run it is a broken build, not a user's error.
            fatalError("the script prelude did not run: \(swiftString(context, exception))")
        }
        JSValueProtect(context, start)
        JSValueProtect(context, describe)
        self.start = start
        self.describe = describe
    }

    func release() {
        guard !released else { return }
        released = true
        JSValueUnprotect(context, start)
        JSValueUnprotect(context, describe)
        JSObjectSetPrivate(JSContextGetGlobalObject(context), nil)
        JSGlobalContextRelease(context)
    }

    private static func function(_ context: JSContextRef?, _ name: String, _ callback: JSObjectCallAsFunctionCallback) -> JSValueRef? {
        withJSString(name) { JSObjectMakeFunctionWithCallback(context, $0, callback) }
    }

    private static func object(_ context: JSContextRef?, _ value: JSValueRef?, _ name: String) -> JSObjectRef? {
        guard let member = property(context, value, name), JSValueIsObject(context, member) else { return nil }
        return JSValueToObject(context, member, nil)
    }
}

private func argumentList(_ count: Int, _ arguments: UnsafePointer<JSValueRef?>?) -> [JSValueRef?] {
    guard let arguments, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: arguments, count: count))
}

private let hostCallback: JSObjectCallAsFunctionCallback = { context, _, _, count, arguments, _ in
    guard let engine = ScriptEngine.owner(of: context) else { return JSValueMakeUndefined(context) }
    return engine.hostCall(context, argumentList(count, arguments))
}

private let logCallback: JSObjectCallAsFunctionCallback = { context, _, _, count, arguments, _ in
    ScriptEngine.owner(of: context)?.log(context, argumentList(count, arguments))
    return JSValueMakeUndefined(context)
}

private let finishCallback: JSObjectCallAsFunctionCallback = { context, _, _, count, arguments, _ in
    ScriptEngine.owner(of: context)?.finished(context, argumentList(count, arguments))
    return JSValueMakeUndefined(context)
}
