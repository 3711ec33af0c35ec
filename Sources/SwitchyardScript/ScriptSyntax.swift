import CJavaScriptCore

/// Syntax errors with a line and a column. JavaScriptCore's SyntaxError carries a line but no
/// column, so the column is found by checking prefixes of the error's line: the shortest prefix
/// that fails with the same message on the same line ends with the offending token.
enum ScriptSyntax {
    /// The error JavaScriptCore finds in `module`'s script, in the saved source's lines and columns.
    static func check(_ module: ModuleSource, in context: JSContextRef?) -> ScriptSourceError? {
        let script = ScriptPrelude.strictPrefix + module.script
        guard let (message, line) = syntaxError(script, in: context) else { return nil }
        return located(script, message: message, line: line, in: context)
    }

    /// The saved source's position of an error JavaScriptCore reported on `line` of `script`
    /// (which begins with the strict prefix).
    static func located(_ script: String, message: String, line: Int, in context: JSContextRef?) -> ScriptSourceError {
        let bytes = Array(script.utf8)
        let column = self.column(bytes, message: message, line: line, in: context)
        let prefix = ScriptPrelude.strictPrefix.utf16.count
        return ScriptSourceError(message: message, line: line, column: line == 1 ? max(1, column - prefix) : column)
    }

    /// The message and line of the first syntax error in `script`, nil when it parses.
    private static func syntaxError(_ script: String, in context: JSContextRef?) -> (String, Int)? {
        var exception: JSValueRef?
        let valid = withJSString(script) { source in
            withJSString(ScriptPrelude.userURL) { url in JSCheckScriptSyntax(context, source, url, 1, &exception) }
        }
        if valid { return nil }
        let message = stringProperty(context, exception, "message") ?? swiftString(context, exception)
        return (message, intProperty(context, exception, "line") ?? 1)
    }

    private static func column(_ bytes: [UInt8], message: String, line: Int, in context: JSContextRef?) -> Int {
        var start = 0
        var current = 1
        var index = 0
        while current < line, index < bytes.count {
            if bytes[index] == 0x0A || (bytes[index] == 0x0D && (index + 1 >= bytes.count || bytes[index + 1] != 0x0A)) {
                current += 1
                start = index + 1
            }
            index += 1
        }
        var end = start
        while end < bytes.count, bytes[end] != 0x0A, bytes[end] != 0x0D { end += 1 }
        func fails(_ length: Int) -> Bool {
            let prefix = String(decoding: bytes[0..<length], as: UTF8.self)
            guard let (found, foundLine) = syntaxError(prefix, in: context) else { return false }
            return found == message && foundLine == line
        }
        if message.hasSuffix("end of script") { return position(of: end, in: bytes).column }
        // An error only the whole script shows.
        guard fails(end) else { return firstColumn(bytes, start, end) }
        var low = start
        var high = end
        while low < high {
            var middle = (low + high) / 2
            while middle < high, bytes[middle] & 0xC0 == 0x80 { middle += 1 }
            if middle >= high { break }
            if fails(middle) { high = middle } else { low = middle + 1 }
        }
        // `high` ends the offending token: its column is where the token starts.
        var tokenStart = max(start, high - 1)
        while tokenStart > start, bytes[tokenStart] & 0xC0 == 0x80 { tokenStart -= 1 }
        if isWordByte(bytes[tokenStart]) {
            while tokenStart > start, isWordByte(bytes[tokenStart - 1]) { tokenStart -= 1 }
        }
        return position(of: tokenStart, in: bytes).column
    }

    private static func firstColumn(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int {
        var index = start
        while index < end, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
        return position(of: index, in: bytes).column
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F || byte == 0x24
            || byte >= 0x80
    }
}
