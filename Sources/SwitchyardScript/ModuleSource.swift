/// User code written as a module, turned into a script that JavaScriptCore's C API (which has no
/// module loader) can evaluate. The script has exactly the saved source's bytes and line breaks,
/// except that `export` (and `export default`, `export { … }`) are overwritten with spaces or a
/// same-length declaration, so every line and column of an error is the saved source's.
/// docs/scripts.md lists the accepted forms.
public struct ModuleSource: Sendable {
    /// The script to evaluate (without the `'use strict';` prefix the engine adds on line 1).
    public let script: String
    /// Exported name (`run`, `default`, …) → the top-level binding that holds it.
    public let exports: [String: String]

    /// The binding `export default <expression>` is assigned to: `export` becomes `var   `,
    /// `default` becomes `_$dflt=`, so the lengths stay the same.
    static let defaultBinding = "_$dflt"

    public init(_ source: String) throws(ScriptSourceError) {
        var bytes = Array(source.utf8)
        var tokenizer = Tokenizer(bytes)
        let tokens = tokenizer.tokens()
        var exports: [String: String] = [:]
        var index = 0
        func add(_ name: String, _ binding: String, at token: ModuleToken) throws(ScriptSourceError) {
            guard exports[name] == nil else { throw token.error("\(name) is exported twice", in: bytes) }
            exports[name] = binding
        }
        while index < tokens.count {
            let token = tokens[index]
            defer { index += 1 }
            guard token.depth == 0, token.kind == .word else { continue }
            let previous = index > 0 ? tokens[index - 1] : nil
            if previous?.isPunct(UInt8(ascii: "."), in: bytes) == true { continue }
            let word = token.text(bytes)
            if word == "import" {
                let next = index + 1 < tokens.count ? tokens[index + 1] : nil
                let dynamic = next.map { $0.isPunct(UInt8(ascii: "("), in: bytes) || $0.isPunct(UInt8(ascii: "."), in: bytes) } ?? false
                if !dynamic {
                    throw token.error("import is not available: a script gets what it needs through its arguments (ctx)", in: bytes)
                }
                continue
            }
            guard word == "export" else { continue }
            var parser = ExportParser(tokens: tokens, bytes: bytes, index: index)
            for (name, binding) in try parser.parse() { try add(name, binding, at: token) }
            for range in parser.blanked { blank(&bytes, range) }
            for (range, text) in parser.replaced { bytes.replaceSubrange(range, with: Array(text.utf8)) }
            index = parser.index
        }
        script = String(decoding: bytes, as: UTF8.self)
        self.exports = exports
    }
}

/// A problem in the saved source found before JavaScriptCore sees it; line and column (1-based,
/// columns in UTF-16 units like JavaScriptCore's) point into the saved source.
public struct ScriptSourceError: Error, Sendable, Equatable {
    public var message: String
    public var line: Int
    public var column: Int
}

/// Spaces over a range, keeping its line breaks.
private func blank(_ bytes: inout [UInt8], _ range: Range<Int>) {
    for offset in range where bytes[offset] != 0x0A && bytes[offset] != 0x0D {
        bytes[offset] = 0x20
    }
}

/// 1-based line and column (UTF-16 units) of a byte offset.
func position(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
    var line = 1
    var lineStart = 0
    var index = 0
    while index < offset && index < bytes.count {
        if bytes[index] == 0x0A || (bytes[index] == 0x0D && (index + 1 >= bytes.count || bytes[index + 1] != 0x0A)) {
            line += 1
            lineStart = index + 1
        }
        index += 1
    }
    let prefix = String(decoding: bytes[lineStart..<min(offset, bytes.count)], as: UTF8.self)
    return (line, prefix.utf16.count + 1)
}

struct ModuleToken {
    enum Kind { case word, number, string, template, regex, punct }
    var kind: Kind
    var start: Int
    var end: Int
    /// Brackets open around the token: 0 is the top level.
    var depth: Int
    /// A line break lies between this token and the one before.
    var newlineBefore: Bool

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes[start..<end], as: UTF8.self) }

    func isPunct(_ byte: UInt8, in bytes: [UInt8]) -> Bool { kind == .punct && bytes[start] == byte }

    func isWord(_ word: String, in bytes: [UInt8]) -> Bool { kind == .word && text(bytes) == word }

    func error(_ message: String, in bytes: [UInt8]) -> ScriptSourceError {
        let (line, column) = position(of: start, in: bytes)
        return ScriptSourceError(message: message, line: line, column: column)
    }
}

/// Reads an `export …` statement at the top level: what it exports, and what to overwrite.
private struct ExportParser {
    let tokens: [ModuleToken]
    let bytes: [UInt8]
    /// At the `export` token; after `parse`, at the statement's last token read.
    var index: Int
    var blanked: [Range<Int>] = []
    var replaced: [(Range<Int>, String)] = []

    init(tokens: [ModuleToken], bytes: [UInt8], index: Int) {
        self.tokens = tokens
        self.bytes = bytes
        self.index = index
    }

    private func token(_ offset: Int) -> ModuleToken? { index + offset < tokens.count ? tokens[index + offset] : nil }

    private func unsupported(_ at: ModuleToken, _ message: String) -> ScriptSourceError { at.error(message, in: bytes) }

    mutating func parse() throws(ScriptSourceError) -> [(String, String)] {
        let export = tokens[index]
        guard let next = token(1) else { throw unsupported(export, "export of nothing") }
        if next.isWord("default", in: bytes) {
            return try parseDefault(export, next)
        }
        if next.isPunct(UInt8(ascii: "{"), in: bytes) {
            return try parseClause(export)
        }
        if next.isPunct(UInt8(ascii: "*"), in: bytes) {
            throw unsupported(export, "export * from … is not supported: there are no modules to import from")
        }
        blanked.append(export.start..<export.end)
        index += 1
        if let name = try declaredName(at: 0) { return [(name, name)] }
        let keyword = next.text(bytes)
        guard ["const", "let", "var"].contains(keyword) else {
            throw unsupported(export, "unsupported export form: export a function, class, const, let or var, or a list export { name }")
        }
        return try parseVariables()
    }

    /// `function name`, `function* name`, `async function name`, `class Name` at `offset`:
    /// the name (and the index moved to it), nil for anything else.
    private mutating func declaredName(at offset: Int) throws(ScriptSourceError) -> String? {
        var at = offset
        guard let first = token(at), first.kind == .word else { return nil }
        switch first.text(bytes) {
        case "async":
            guard let function = token(at + 1), function.isWord("function", in: bytes), !function.newlineBefore else { return nil }
            at += 1
        case "function", "class": break
        default: return nil
        }
        at += 1
        if token(at)?.isPunct(UInt8(ascii: "*"), in: bytes) == true { at += 1 }
        guard let name = token(at), name.kind == .word else { return nil }
        index += at
        return name.text(bytes)
    }

    private mutating func parseDefault(_ export: ModuleToken, _ keyword: ModuleToken) throws(ScriptSourceError) -> [(String, String)] {
        let saved = index
        index += 1
        if let name = try declaredName(at: 1) {
            blanked.append(export.start..<keyword.end)
            return [("default", name)]
        }
        index = saved + 1
        // `export default <expression>`: `var    _$dflt= <expression>`.
        replaced.append((export.start..<export.end, "var   "))
        replaced.append((keyword.start..<keyword.end, ModuleSource.defaultBinding + "="))
        return [("default", ModuleSource.defaultBinding)]
    }

    private mutating func parseClause(_ export: ModuleToken) throws(ScriptSourceError) -> [(String, String)] {
        var names: [(String, String)] = []
        index += 2
        while let current = token(0) {
            if current.isPunct(UInt8(ascii: "}"), in: bytes) { break }
            guard current.kind == .word else { throw unsupported(current, "expected a name in export { … }") }
            var exported = current.text(bytes)
            if token(1)?.isWord("as", in: bytes) == true, let alias = token(2), alias.kind == .word || alias.kind == .string {
                exported = alias.kind == .string ? String(alias.text(bytes).dropFirst().dropLast()) : alias.text(bytes)
                index += 2
            }
            names.append((exported, current.text(bytes)))
            index += 1
            if token(0)?.isPunct(UInt8(ascii: ","), in: bytes) == true { index += 1 }
        }
        guard let close = token(0) else { throw unsupported(export, "export { … } is not closed") }
        if token(1)?.isWord("from", in: bytes) == true {
            throw unsupported(export, "export … from is not supported: there are no modules to import from")
        }
        blanked.append(export.start..<close.end)
        return names
    }

    /// `const a = …, b = …`: the declared names. Stops at `;` or at a new line that starts a new
    /// statement after a complete initializer.
    private mutating func parseVariables() throws(ScriptSourceError) -> [(String, String)] {
        var names: [(String, String)] = []
        index += 1
        while true {
            guard let name = token(0) else { break }
            guard name.kind == .word else {
                throw unsupported(name, "export of a destructuring declaration is not supported: declare the names, then export { a, b }")
            }
            names.append((name.text(bytes), name.text(bytes)))
            index += 1
            var more = false
            while let current = token(0) {
                if current.depth == 0 {
                    if current.isPunct(UInt8(ascii: ";"), in: bytes) { break }
                    if current.isPunct(UInt8(ascii: ","), in: bytes) {
                        more = true
                        index += 1
                        break
                    }
                    if current.newlineBefore, startsStatement(current), let previous = token(-1), endsExpression(previous) { break }
                }
                index += 1
            }
            if !more { break }
        }
        index -= 1
        return names
    }

    private func startsStatement(_ token: ModuleToken) -> Bool {
        token.kind == .word || token.kind == .string || token.kind == .number
    }

    private func endsExpression(_ token: ModuleToken) -> Bool {
        switch token.kind {
        case .word, .number, .string, .template, .regex: return true
        case .punct:
            let byte = bytes[token.start]
            return byte == UInt8(ascii: ")") || byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}")
        }
    }
}
