/// Just enough of a JavaScript lexer to find top-level `export` and `import`: it skips comments,
/// strings, template literals (with nested `${ … }`) and regular expression literals, and tracks
/// bracket depth. It never fails; what it cannot make sense of JavaScriptCore reports later.
/// One pass, no recursion: a hostile source costs time linear in its length.
struct Tokenizer {
    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    /// Depths at which a template's `${` was opened; its `}` goes back into the template.
    private var templates: [Int] = []
    private var newline = false
    private var output: [ModuleToken] = []

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private static let regexAfterWords: Set<String> = [
        "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await",
    ]

    mutating func tokens() -> [ModuleToken] {
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x0A, 0x0D:
                newline = true
                index += 1
            case 0x20, 0x09, 0x0B, 0x0C:
                index += 1
            case UInt8(ascii: "/"):
                slash()
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                let start = index
                skipString(quote: byte)
                emit(.string, start)
            case UInt8(ascii: "`"):
                let start = index
                index += 1
                template(start)
            case UInt8(ascii: "{"), UInt8(ascii: "("), UInt8(ascii: "["):
                emit(.punct, index, length: 1)
                depth += 1
            case UInt8(ascii: "}"):
                if let open = templates.last, open == depth - 1 {
                    templates.removeLast()
                    depth -= 1
                    let start = index
                    index += 1
                    template(start)
                } else {
                    depth = max(0, depth - 1)
                    emit(.punct, index, length: 1)
                }
            case UInt8(ascii: ")"), UInt8(ascii: "]"):
                depth = max(0, depth - 1)
                emit(.punct, index, length: 1)
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                number()
            case UInt8(ascii: "."):
                if index + 1 < bytes.count, isDigit(bytes[index + 1]) { number() } else { emit(.punct, index, length: 1) }
            default:
                if isIdentifier(byte) {
                    let start = index
                    while index < bytes.count, isIdentifier(bytes[index]) || isDigit(bytes[index]) { index += 1 }
                    emit(.word, start)
                } else {
                    emit(.punct, index, length: 1)
                }
            }
        }
        return output
    }

    private mutating func emit(_ kind: ModuleToken.Kind, _ start: Int, length: Int? = nil) {
        if let length { index = start + length }
        output.append(ModuleToken(kind: kind, start: start, end: index, depth: depth, newlineBefore: newline))
        newline = false
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private func isIdentifier(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$")
            || byte == UInt8(ascii: "\\") || byte >= 0x80
    }

    /// A regular expression may start here (rather than a division).
    private func regexAllowed() -> Bool {
        guard let last = output.last else { return true }
        switch last.kind {
        case .number, .string, .template, .regex: return false
        case .word: return Self.regexAfterWords.contains(last.text(bytes))
        case .punct:
            let byte = bytes[last.start]
            return byte != UInt8(ascii: ")") && byte != UInt8(ascii: "]")
        }
    }

    private mutating func slash() {
        let next = index + 1 < bytes.count ? bytes[index + 1] : 0
        if next == UInt8(ascii: "/") {
            while index < bytes.count, bytes[index] != 0x0A, bytes[index] != 0x0D { index += 1 }
        } else if next == UInt8(ascii: "*") {
            index += 2
            while index < bytes.count, !(bytes[index] == UInt8(ascii: "*") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "/")) {
                if bytes[index] == 0x0A || bytes[index] == 0x0D { newline = true }
                index += 1
            }
            index = min(bytes.count, index + 2)
        } else if regexAllowed() {
            let start = index
            index += 1
            var inClass = false
            while index < bytes.count, bytes[index] != 0x0A, bytes[index] != 0x0D {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\\") {
                    index += 1
                } else if byte == UInt8(ascii: "[") {
                    inClass = true
                } else if byte == UInt8(ascii: "]") {
                    inClass = false
                } else if byte == UInt8(ascii: "/"), !inClass {
                    break
                }
            }
            while index < bytes.count, isIdentifier(bytes[index]) { index += 1 }
            emit(.regex, start)
        } else {
            emit(.punct, index, length: 1)
        }
    }

    private mutating func skipString(quote: UInt8) {
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == quote || byte == 0x0A || byte == 0x0D { return }
            if byte == UInt8(ascii: "\\") {
                // A backslash and a CR LF continue the string over the line break.
                if index + 1 < bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A { index += 1 }
                index += 1
            }
        }
        index = min(index, bytes.count)
    }

    /// Template text from `index` up to its closing backtick, or into a `${` (depth + 1).
    private mutating func template(_ start: Int) {
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if byte == 0x0A || byte == 0x0D { newline = true }
            index += 1
            if byte == UInt8(ascii: "`") { break }
            if byte == UInt8(ascii: "$"), index < bytes.count, bytes[index] == UInt8(ascii: "{") {
                index += 1
                emit(.template, start)
                templates.append(depth)
                depth += 1
                return
            }
        }
        index = min(index, bytes.count)
        emit(.template, start)
    }

    private mutating func number() {
        let start = index
        let radix =
            bytes[index] == UInt8(ascii: "0") && index + 1 < bytes.count
            && [UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "o"), UInt8(ascii: "O")].contains(
                bytes[index + 1]
            )
        while index < bytes.count {
            let byte = bytes[index]
            if isDigit(byte) || isIdentifier(byte) || byte == UInt8(ascii: ".") {
                index += 1
                if !radix, byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E"), index < bytes.count,
                    bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")
                {
                    index += 1
                }
            } else {
                break
            }
        }
        emit(.number, start)
    }
}
