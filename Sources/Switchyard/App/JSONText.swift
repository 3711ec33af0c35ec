import NIOCore

/// Why a text is not the JSON we accept, and where it stopped being so.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Zero-based byte offset into the input.
    public let offset: Int
    public let reason: String

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Foundation's decoder draws the line at the same depth, so no body it took is refused for
    /// depth; the limit also bounds how deep later recursive code (==, serializing) must go.
    public static let maximumNestingDepth = 512

    /// Parses exactly one strict RFC 8259 value (see `JSONParser` for what is refused).
    public static func parse(utf8 bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSONValue {
        try bytes.withMemoryRebound(to: UInt8.self, parsed).get()
    }

    public static func parse(utf8 bytes: some Collection<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        try (bytes.withContiguousStorageIfAvailable(parsed) ?? Array(bytes).withUnsafeBufferPointer(parsed)).get()
    }

    public static func parse(utf8 buffer: ByteBuffer) throws(JSONSyntaxError) -> JSONValue {
        try buffer.withUnsafeReadableBytes { $0.withMemoryRebound(to: UInt8.self, parsed) }.get()
    }

    public static func parse(text: String) throws(JSONSyntaxError) -> JSONValue {
        var text = text
        return try text.withUTF8(parsed).get()
    }

    /// A Result, because the buffer-lending methods only rethrow untyped errors.
    private static func parsed(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONSyntaxError> {
        Result { () throws(JSONSyntaxError) -> JSONValue in
            var parser = JSONParser(bytes: bytes)
            return try parser.document()
        }
    }
}

/// A strict RFC 8259 parser over raw bytes. Besides the grammar it refuses invalid UTF-8, unpaired
/// surrogate escapes, duplicate keys and nesting deeper than `JSONValue.maximumNestingDepth`.
/// Containers are kept on an explicit stack rather than the call stack, so depth costs heap, not
/// stack, whatever thread parses.
struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// Reused for strings with escapes, the only ones that cannot be sliced out of the input.
    var scratch: [UInt8] = []

    private struct Container {
        let isObject: Bool
        var array: [JSONValue] = []
        var object: [String: JSONValue] = [:]
        var key = ""
        var keyOffset = 0
    }

    private func fail(_ offset: Int, _ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset, reason: offset >= bytes.count ? "unexpected end of input" : reason)
    }

    private func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func document() throws(JSONSyntaxError) -> JSONValue {
        var stack: [Container] = []
        var value: JSONValue
        skipWhitespace()
        nextValue: while true {
            guard index < bytes.count else { throw fail(index, "expected a value") }
            switch bytes[index] {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                guard stack.count < JSONValue.maximumNestingDepth else {
                    throw fail(index, "nesting deeper than \(JSONValue.maximumNestingDepth) arrays and objects")
                }
                let isObject = bytes[index] == UInt8(ascii: "{")
                index += 1
                skipWhitespace()
                if peek(isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    index += 1
                    value = isObject ? .object([:]) : .array([])
                } else {
                    var container = Container(isObject: isObject)
                    if isObject { try key(into: &container) }
                    stack.append(container)
                    continue nextValue
                }
            case UInt8(ascii: "\""): value = .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                value = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): value = try number()
            default: throw fail(index, "expected a value")
            }
            // Hand the value to its container, closing every container that ends right after it.
            while true {
                skipWhitespace()
                let top = stack.count - 1
                guard top >= 0 else {
                    guard index == bytes.count else { throw fail(index, "unexpected text after the value") }
                    return value
                }
                if stack[top].isObject {
                    let name = stack[top].key
                    if stack[top].object.updateValue(value, forKey: name) != nil {
                        let shown = name.count > 64 ? String(name.prefix(64)) + "…" : name
                        throw fail(stack[top].keyOffset, "duplicate key \"\(shown)\"")
                    }
                    if peek(UInt8(ascii: ",")) {
                        index += 1
                        skipWhitespace()
                        try key(into: &stack[top])
                        continue nextValue
                    }
                    guard peek(UInt8(ascii: "}")) else { throw fail(index, "expected ',' or '}'") }
                    value = .object(stack.removeLast().object)
                } else {
                    stack[top].array.append(value)
                    if peek(UInt8(ascii: ",")) {
                        index += 1
                        skipWhitespace()
                        continue nextValue
                    }
                    guard peek(UInt8(ascii: "]")) else { throw fail(index, "expected ',' or ']'") }
                    value = .array(stack.removeLast().array)
                }
                index += 1
            }
        }
    }

    private mutating func key(into container: inout Container) throws(JSONSyntaxError) {
        guard peek(UInt8(ascii: "\"")) else { throw fail(index, "expected a string key") }
        container.keyOffset = index
        container.key = try string()
        skipWhitespace()
        guard peek(UInt8(ascii: ":")) else { throw fail(index, "expected ':'") }
        index += 1
        skipWhitespace()
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count, (0..<count).allSatisfy({ bytes[index + $0] == word.utf8Start[$0] }) else {
            throw fail(index, "expected a value")
        }
        index += count
    }

    // MARK: Strings

    private mutating func string() throws(JSONSyntaxError) -> String {
        let open = index
        index += 1
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                defer { index += 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { return try escapedString(from: start) }
            try skipCharacter(byte)
        }
        throw fail(open, "unterminated string")
    }

    /// The slow path, from the first backslash on: the text is rebuilt in `scratch`.
    private mutating func escapedString(from start: Int) throws(JSONSyntaxError) -> String {
        scratch.removeAll(keepingCapacity: true)
        var mark = start
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[mark..<index]))
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            guard byte == UInt8(ascii: "\\") else {
                try skipCharacter(byte)
                continue
            }
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[mark..<index]))
            let escape = index
            guard index + 1 < bytes.count else { throw fail(bytes.count, "") }
            index += 2
            switch bytes[escape + 1] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(bytes[escape + 1])
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xDC00...0xDFFF).contains(scalar) { throw fail(escape, "unpaired surrogate in \\u escape") }
                if (0xD800...0xDBFF).contains(scalar) {
                    guard peek(UInt8(ascii: "\\")), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail(escape, "unpaired surrogate in \\u escape")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail(escape, "unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                // A lone low surrogate is the one value left that is no scalar.
                guard let decoded = Unicode.Scalar(scalar) else { throw fail(escape, "unpaired surrogate in \\u escape") }
                UTF8.encode(decoded) { scratch.append($0) }
            default: throw fail(escape, "invalid escape")
            }
            mark = index
        }
        throw fail(start - 1, "unterminated string")
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw fail(index, "") }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - 0x30
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - 0x57
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - 0x37
            default: throw fail(index, "expected four hex digits after \\u")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Steps over one unescaped character, refusing control characters and invalid UTF-8
    /// (overlong forms, surrogates, beyond U+10FFFF, truncated sequences).
    private mutating func skipCharacter(_ byte: UInt8) throws(JSONSyntaxError) {
        if byte >= 0x20 && byte < 0x80 {
            index += 1
            return
        }
        if byte < 0x20 { throw fail(index, "unescaped control character in a string") }
        var length = 4
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch byte {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0: low = 0x90
        case 0xF1...0xF3: break
        case 0xF4: high = 0x8F
        default: throw JSONSyntaxError(offset: index, reason: "invalid UTF-8")
        }
        guard bytes.count - index >= length, (low...high).contains(bytes[index + 1]),
            bytes[(index + 2)..<(index + length)].allSatisfy({ $0 & 0xC0 == 0x80 })
        else {
            throw JSONSyntaxError(offset: index, reason: "invalid UTF-8")
        }
        index += length
    }

    // MARK: Numbers

    /// 1e0…1e22: each is exact in a Double, and so is ten times the one before.
    private static let powersOfTen: [Double] = {
        var powers: [Double] = [1]
        while powers.count < 23 { powers.append(powers[powers.count - 1] * 10) }
        return powers
    }()

    private mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        let negative = peek(UInt8(ascii: "-"))
        if negative { index += 1 }
        let integerStart = index
        // All digits, integer and fraction, as one mantissa while it fits: the fast paths need it.
        var mantissa: UInt64 = 0
        var overflow = false
        func digits(_ parser: inout JSONParser) throws(JSONSyntaxError) -> Int {
            let first = parser.index
            while parser.index < parser.bytes.count, case let digit = parser.bytes[parser.index] &- 0x30, digit < 10 {
                let (times10, o1) = mantissa.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
                mantissa = sum
                overflow = overflow || o1 || o2
                parser.index += 1
            }
            guard parser.index > first else { throw parser.fail(parser.index, "expected a digit") }
            return parser.index - first
        }
        let integerDigits = try digits(&self)
        if integerDigits > 1 && bytes[integerStart] == UInt8(ascii: "0") {
            throw fail(integerStart, "leading zeros are not allowed")
        }
        var fractionDigits = 0
        var exponent = 0
        if peek(UInt8(ascii: ".")) {
            index += 1
            fractionDigits = try digits(&self)
        }
        let hasExponent = peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E"))
        if hasExponent {
            index += 1
            let negativeExponent = peek(UInt8(ascii: "-"))
            if negativeExponent || peek(UInt8(ascii: "+")) { index += 1 }
            let exponentStart = index
            while index < bytes.count, case let digit = bytes[index] &- 0x30, digit < 10 {
                exponent = min(exponent * 10 + Int(digit), 1_000_000_000)  // saturating: ±1e9 is already inf or 0
                index += 1
            }
            guard index > exponentStart else { throw fail(index, "expected a digit") }
            if negativeExponent { exponent = -exponent }
        }
        if fractionDigits == 0 && !hasExponent && !overflow {
            if !negative, mantissa <= UInt64(Int64.max) { return .int(Int64(mantissa)) }
            if negative, mantissa <= Int64.min.magnitude { return .int(Int64(bitPattern: 0 &- mantissa)) }
        }
        let double: Double
        let scale = exponent - fractionDigits
        if !overflow, mantissa < 1 << 53, abs(scale) <= 22 {
            // Both operands exact, so one correctly rounded operation (Clinger's fast path).
            let magnitude = scale < 0 ? Double(mantissa) / Self.powersOfTen[-scale] : Double(mantissa) * Self.powersOfTen[scale]
            double = negative ? -magnitude : magnitude
        } else {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let parsed = Double(text) else { throw fail(start, "number out of range") }
            double = parsed
        }
        guard double.isFinite else { throw fail(start, "number out of range") }
        // Integral values become .int the way JSONDecoder decides it for JSONValue's
        // `decode(Int64.self)`: below 2^53 from the double itself; from 2^53 on through its
        // Decimal fallback, which keeps digits the double lost but truncates any fraction, and
        // gives up (leaving a double) when the significant digits pass UInt64 or the magnitude
        // passes Int64.max, even for -2^63.
        guard double.rounded(.towardZero) == double, double >= -0x1p63, double < 0x1p63 else { return .double(double) }
        if double.magnitude < 0x1p53 { return .int(Int64(double)) }
        guard let exact = decimalFallback(integerStart, integerDigits, fractionDigits, scale), exact <= UInt64(Int64.max) else {
            return .double(double)
        }
        return .int(negative ? -Int64(exact) : Int64(exact))
    }

    /// Foundation's Decimal route to an integer: significant digits without trailing zeros as a
    /// UInt64 mantissa, then scaled by the exponent, truncating.
    private func decimalFallback(_ start: Int, _ integerDigits: Int, _ fractionDigits: Int, _ scale: Int) -> UInt64? {
        var digits = Array(bytes[start..<(start + integerDigits)]) + bytes[(start + integerDigits)...].dropFirst().prefix(fractionDigits)
        var scale = scale
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            scale += 1
        }
        var value: UInt64 = 0
        for digit in digits {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit - 0x30))
            if o1 || o2 { return nil }
            value = sum
        }
        for _ in 0..<min(max(-scale, 0), 20) { value /= 10 }
        for _ in 0..<max(scale, 0) {
            let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            value = times10
        }
        return value
    }
}
