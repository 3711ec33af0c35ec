import CJavaScriptCore

/// A JavaScriptCore string from a Swift one: from its UTF-8 directly, or through UTF-16 when it
/// holds a NUL character (which would end a C string).
func makeJSString(_ value: String) -> JSStringRef? {
    var value = value
    if !value.withUTF8({ $0.contains(0) }) { return value.withCString { JSStringCreateWithUTF8CString($0) } }
    let units = Array(value.utf16)
    return units.withUnsafeBufferPointer { JSStringCreateWithCharacters($0.baseAddress, $0.count) }
}

/// Evaluates a script kept as a JavaScriptCore string.
func evaluate(_ context: JSContextRef?, _ script: JSStringRef?, url: String, exception: inout JSValueRef?) -> JSValueRef? {
    withJSString(url) { sourceURL in JSEvaluateScript(context, script, nil, sourceURL, 1, &exception) }
}

/// Runs `body` with a JavaScriptCore string that is released afterwards.
func withJSString<T>(_ value: String, _ body: (JSStringRef?) -> T) -> T {
    let string = makeJSString(value)
    defer { if let string { JSStringRelease(string) } }
    return body(string)
}

func swiftString(_ string: JSStringRef?) -> String {
    guard let string, let characters = JSStringGetCharactersPtr(string) else { return "" }
    return String(decoding: UnsafeBufferPointer(start: characters, count: JSStringGetLength(string)), as: UTF16.self)
}

/// `String(value)` in JavaScript; "" when that throws.
func swiftString(_ context: JSContextRef?, _ value: JSValueRef?) -> String {
    guard let value else { return "" }
    guard let string = JSValueToStringCopy(context, value, nil) else { return "" }
    defer { JSStringRelease(string) }
    return swiftString(string)
}

func property(_ context: JSContextRef?, _ object: JSValueRef?, _ name: String) -> JSValueRef? {
    guard let object, JSValueIsObject(context, object) else { return nil }
    return withJSString(name) { JSObjectGetProperty(context, JSValueToObject(context, object, nil), $0, nil) }
}

func stringProperty(_ context: JSContextRef?, _ object: JSValueRef?, _ name: String) -> String? {
    guard let value = property(context, object, name), JSValueIsString(context, value) else { return nil }
    return swiftString(context, value)
}

func intProperty(_ context: JSContextRef?, _ object: JSValueRef?, _ name: String) -> Int? {
    guard let value = property(context, object, name), JSValueIsNumber(context, value) else { return nil }
    let number = JSValueToNumber(context, value, nil)
    return number.isFinite ? Int(number) : nil
}

/// Evaluates `script`; the exception, if one was thrown, in `exception`.
func evaluate(_ context: JSContextRef?, _ script: String, url: String, exception: inout JSValueRef?) -> JSValueRef? {
    withJSString(script) { source in
        withJSString(url) { sourceURL in JSEvaluateScript(context, source, nil, sourceURL, 1, &exception) }
    }
}

/// Calls `function` with no `this`.
func call(_ context: JSContextRef?, _ function: JSObjectRef?, _ arguments: [JSValueRef?], exception: inout JSValueRef?) -> JSValueRef? {
    arguments.withUnsafeBufferPointer { buffer in
        JSObjectCallAsFunction(context, function, nil, buffer.count, buffer.baseAddress, &exception)
    }
}
