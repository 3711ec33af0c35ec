import Foundation
import NIOCore
import Testing

@testable import Switchyard

/// The byte-level parser and serializer must agree with the Foundation path they replace
/// (JSONDecoder into JSONValue, and JSONEncoder), except where they are deliberately stricter.
@Suite("JSON text")
struct JSONTextTests {
    /// Parses `text` both ways and checks: same value, same serialized bytes, and a stable round trip.
    static func expectAgreement(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let theirs: JSONValue
        do {
            theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            Issue.record("Foundation refused the corpus entry \(text.debugDescription): \(error)", sourceLocation: sourceLocation)
            return
        }
        let ours: JSONValue
        do {
            ours = try JSONValue.parse(text: text)
        } catch {
            Issue.record("refused \(text.debugDescription): \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(ours == theirs, "parsing \(text.debugDescription)", sourceLocation: sourceLocation)
        let serialized = ours.serialized()
        #expect(serialized == theirs.foundationText, "serializing \(text.debugDescription)", sourceLocation: sourceLocation)
        // A double in [2^53, 2^63) with an integral value, written as JSONEncoder writes it
        // ("-3.5045398957955205e+18"), reads back as .int through Foundation too; so the round
        // trip is compared with Foundation's, and must be stable from the second pass on.
        let again = try? JSONValue.parse(text: serialized)
        #expect(
            again == (try? JSONDecoder().decode(JSONValue.self, from: Data(serialized.utf8))),
            "round trip of \(text.debugDescription)",
            sourceLocation: sourceLocation
        )
        #expect(
            again.map { try? JSONValue.parse(text: $0.serialized()) } == again,
            "second round trip of \(text.debugDescription)",
            sourceLocation: sourceLocation
        )
    }

    static let edgeCases: [String] = [
        "null", "true", "false", "0", "-0", "0.0", "-0.0", "0e5", "-0e-0", "1.0", "1e2", "1E2", "1e+2", "1E-2", "0.1e1",
        "5e-1", "1e-7", "123.456e2", "1.5e300", "1.7976931348623157e308", "-1.7976931348623157e308", "5e-324", "4.9e-324",
        "2.2250738585072014e-308", "1e-400", "-1e-400", "0.1", "0.30000000000000004", "1.0000000000000001",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
        "12345678901234567890", "100000000000000000000000", "123456789012345678901234567890e-10",
        "9007199254740992", "9007199254740993", "9007199254740993.0", "9007199254740993.5", "-9007199254740993.5",
        "9.007199254740993e15", "90071992547409930e-1", "9007199254740993.00000000000000000000",
        "1e18", "-1e18", "1.5e18", "1e19", "-1e19", "9223372036854775807e0", "922337203685477580.7e1",
        "9223372036854775807.0", "-9223372036854775807.0", "-9223372036854775808.0", "9223372036854775806.9",
        "0.000000000000000000000000000000000000000000000000000000000001e60",
        #""""#, #""\"\\\/\b\f\n\r\t""#, #""\u0000""#, #""a\u0000b""#, #""\u00e9\u00C9\u6f22""#, #""\ud83d\ude00""#,
        #""\uD83D\uDE00 and \udbff\udfff""#, #""\u2028\u2029\ufeff\uffff\u007f""#, "\"é漢😀\u{10FFFF}\u{2028}\u{7F}\u{FEFF}\"",
        "\"e\u{301}\"", #""\u001f\u0001\u000b""#, #""/ // \/""#,
        "[]", "{}", "[[]]", "[{}]", "{\"a\":[]}", "[[],{},[{}],{\"\":{}}]", " \t\r\n[ 1 , 2 ]\n\t\r ",
        "{ \"b\" : 1 , \"B\" : 2 , \"a10\" : 3 , \"a9\" : 4 , \"é\" : 5 , \"z\" : 6 , \"Z\" : 7 , \"_\" : 8 }",
        "{\"ä\":null,\"😀\":null,\"Ａ\":null,\"\":null,\"e\u{301}x\":1,\"ex\":2,\"f\":3,\"\\u0000\":4,\"~\":5,\"\u{7F}\":6}",
        "{\"a\":{\"b\":{\"c\":[1,2.5,\"x\",null,true,false,{\"d\":-0.5e-3}]}}}",
        "[9223372036854775807,-9223372036854775808,1e308,-1e-308,0,-0,1.25]",
    ]

    @Test("hand-written edge cases parse and serialize as Foundation does")
    func edgeCasesAgree() {
        for text in Self.edgeCases { Self.expectAgreement(text) }
    }

    @Test("a few hundred generated documents parse and serialize as Foundation does")
    func generatedDocumentsAgree() {
        var generator = DocumentGenerator(seed: 0x5EED_0F_15_0D0C)
        for _ in 0..<400 { Self.expectAgreement(generator.document()) }
    }

    @Test("damaged documents: refused with an offset inside the input, or accepted only as Foundation reads them")
    func damagedDocuments() {
        var generator = DocumentGenerator(seed: 7)
        var accepted = 0
        var refused = 0
        for _ in 0..<2000 {
            var bytes = Array(generator.document().utf8)
            for _ in 0...generator.below(3) {
                let position = generator.below(bytes.count + 1)
                switch generator.below(3) {
                case 0 where position < bytes.count: bytes.remove(at: position)
                case 1 where position < bytes.count: bytes[position] ^= UInt8(1 << generator.below(8))
                default: bytes.insert(generator.pick(Array(#"{}[],:"\-+.eE0u "#.utf8) + [0x00, 0x80, 0xC3, 0xED, 0xFF]), at: position)
                }
            }
            let shown = String(decoding: bytes, as: UTF8.self).debugDescription
            do {
                let ours = try JSONValue.parse(utf8: bytes)
                accepted += 1
                // Being stricter, we may refuse what Foundation reads, never the other way round.
                #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))) == ours, "\(shown)")
            } catch {
                refused += 1
                #expect((0...bytes.count).contains(error.offset), "\(shown): \(error)")
            }
        }
        #expect(accepted > 100 && refused > 1000, "accepted \(accepted), refused \(refused)")
    }

    @Test("generated values serialize byte for byte as JSONEncoder does")
    func generatedValuesSerialize() throws {
        var generator = DocumentGenerator(seed: 42)
        for _ in 0..<300 {
            let value = generator.value(depth: 0)
            let serialized = value.serialized()
            #expect(serialized == value.foundationText, "\(value)")
            // Integral doubles come back as .int, as through Foundation, so compare with its reading.
            let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(value.foundationText.utf8))
            #expect(try JSONValue.parse(text: serialized) == theirs, "\(serialized)")
        }
    }

    @Test("number semantics, including where JSONDecoder's Decimal fallback decides")
    func numbers() throws {
        let cases: [(String, JSONValue)] = [
            ("1.0", .int(1)), ("1e2", .int(100)), ("-0", .int(0)), ("-0.0", .int(0)), ("1e-400", .int(0)),
            ("1.0000000000000001", .int(1)), ("0.5", .double(0.5)), ("-2.5e-3", .double(-0.0025)),
            ("9223372036854775807", .int(.max)), ("-9223372036854775808", .int(.min)),
            ("9223372036854775808", .double(0x1p63)), ("12345678901234567890", .double(1.2345678901234567e19)),
            // Past 2^53 the digits written win over the rounded double, and a fraction is truncated.
            ("9007199254740993.0", .int(9_007_199_254_740_993)), ("9007199254740993.5", .int(9_007_199_254_740_993)),
            ("-9007199254740993.5", .int(-9_007_199_254_740_993)), ("1.5e18", .int(1_500_000_000_000_000_000)),
            ("9223372036854775807.0", .double(0x1p63)), ("-9223372036854775808.0", .double(-0x1p63)),
            ("1e19", .double(1e19)),
        ]
        for (text, expected) in cases {
            #expect(try JSONValue.parse(text: text) == expected, "\(text)")
        }
    }

    @Test("serialization: key order, escapes, numbers")
    func serialization() {
        let keys: JSONValue = .object([
            "b": .int(1), "B": .int(2), "a10": .int(3), "a9": .int(4), "é": .int(5), "z": .int(6), "Z": .int(7),
            "_": .int(8), "ä": .null, "😀": .null, "Ａ": .null, "": .null, "e\u{301}x": .null, "f": .null,
        ])
        #expect(
            keys.serialized()
                == "{\"\":null,\"B\":2,\"Z\":7,\"_\":8,\"a10\":3,\"a9\":4,\"b\":1,\"e\u{301}x\":null,\"f\":null,\"z\":6,\"ä\":null,\"é\":5,\"Ａ\":null,\"😀\":null}"
        )
        #expect(keys.serialized() == keys.foundationText)
        let text: JSONValue = .string("a\"\\/\n\t\r\u{8}\u{c}\u{0}\u{1}\u{1f}\u{7f}\u{2028}é😀")
        #expect(text.serialized() == "\"a\\\"\\\\/\\n\\t\\r\\b\\f\\u0000\\u0001\\u001f\u{7f}\u{2028}é😀\"")
        #expect(text.serialized() == text.foundationText)
        let doubles: [(Double, String)] = [
            (1.0, "1"), (1e20, "1e+20"), (1e-7, "1e-07"), (-0.0, "-0"), (1e15, "1000000000000000"), (1e16, "1e+16"),
            (0.1, "0.1"), (.leastNonzeroMagnitude, "5e-324"), (.greatestFiniteMagnitude, "1.7976931348623157e+308"), (.infinity, "null"),
        ]
        for (double, expected) in doubles {
            #expect(JSONValue.double(double).serialized() == expected)
            #expect(JSONValue.double(double).serialized() == JSONValue.double(double).foundationText)
        }
        let ints: JSONValue = .array([.int(.min), .int(.max), .int(0), .int(-1), .int(10)])
        #expect(ints.serialized() == "[-9223372036854775808,9223372036854775807,0,-1,10]")
        #expect(JSONValue.array([.null, .bool(true), .bool(false), .object([:]), .array([])]).serialized() == "[null,true,false,{},[]]")
    }

    @Test("entry points: bytes, slices, Data, ByteBuffer, non-contiguous collections, String")
    func entryPoints() throws {
        let text = #"{"fields": {"trade": "PLUMBING", "nte": 120, "status": "open"}}"#
        let expected: JSONValue = .object(["fields": .object(["trade": .string("PLUMBING"), "nte": .int(120), "status": .string("open")])])
        #expect(try JSONValue.parse(text: text) == expected)
        #expect(try JSONValue.parse(utf8: Array(text.utf8)) == expected)
        #expect(try JSONValue.parse(utf8: Array(("  " + text).utf8).dropFirst(2)) == expected)
        #expect(try JSONValue.parse(utf8: Data(text.utf8)) == expected)
        #expect(try JSONValue.parse(utf8: ByteBuffer(string: text)) == expected)
        #expect(try JSONValue.parse(utf8: AnyCollection(text.utf8)) == expected)
        #expect(try JSONValue.parse(utf8: text.utf8) == expected)
        let empty: [UInt8] = []
        #expect(throws: JSONSyntaxError(offset: 0, reason: "unexpected end of input")) { try JSONValue.parse(utf8: empty) }
        #expect(JSONSyntaxError(offset: 17, reason: "expected ',' or '}'").description == "invalid JSON at byte 17: expected ',' or '}'")
        do {
            _ = try JSONValue.parse(text: #"{"a": 1, "bb": 2 "c": 3}"#)
            Issue.record("accepted a missing comma")
        } catch {
            #expect("\(error)" == "invalid JSON at byte 17: expected ',' or '}'")
        }
    }
}

/// Random JSON texts from a seeded SplitMix64, written the many ways JSON allows (escapes, number
/// spellings, whitespace) so both parsers see the same unusual input.
private struct DocumentGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func whitespace() -> String { chance(80) ? "" : pick([" ", "\n", "\t", "\r\n", "  "]) }

    mutating func document() -> String { whitespace() + text(depth: 0) + whitespace() }

    mutating func text(depth: Int) -> String {
        switch below(depth >= 4 ? 6 : 9) {
        case 0: return pick(["null", "true", "false"])
        case 1, 2: return integerText()
        case 3, 4: return doubleText()
        case 5: return quoted(string())
        case 6, 7:
            var keys = Set<String>()
            let members = (0..<below(6)).compactMap { _ -> String? in
                let key = self.key()
                guard keys.insert(key).inserted else { return nil }
                return whitespace() + quoted(key) + whitespace() + ":" + whitespace() + text(depth: depth + 1) + whitespace()
            }
            return "{" + members.joined(separator: ",") + (members.isEmpty ? whitespace() : "") + "}"
        default:
            let items = (0..<below(6)).map { _ in whitespace() + text(depth: depth + 1) + whitespace() }
            return "[" + items.joined(separator: ",") + "]"
        }
    }

    mutating func integer() -> Int64 {
        switch below(5) {
        case 0: return Int64.max - Int64(below(3))
        case 1: return Int64.min + Int64(below(3))
        case 2: return Int64(bitPattern: next())
        case 3: return pick([1, -1]) * ((1 << 53) + Int64(below(5)) - 2)
        default: return Int64(below(2001)) - 1000
        }
    }

    /// Integers, also spelt with fractions and exponents, which JSONDecoder still reads as Int64.
    mutating func integerText() -> String {
        let integer = integer()
        switch below(8) {
        case 0: return "\(integer).0"
        case 1: return "\(integer)e0"
        case 2: return "\(integer)0E-1"
        case 3: return "\(integer).\(below(10))"
        case 4: return "\(integer)" + String(repeating: "9", count: below(3) + 1)  // past Int64
        default: return "\(integer)"
        }
    }

    mutating func double() -> Double {
        switch below(4) {
        case 0:
            var value: Double
            repeat { value = Double(bitPattern: next()) } while !value.isFinite
            return value
        case 1: return Double(below(1_000_000)) / pick([1, 10, 100, 1000, 3, 7]) * pick([1, -1])
        case 2: return Double(sign: chance(50) ? .minus : .plus, exponent: below(2098) - 1074, significand: 1 + Double(below(1000)) / 1000)
        default:
            return pick([0.1, 0.2, 0.3, 1e-7, 1e21, .leastNonzeroMagnitude, 2.2250738585072014e-308, .greatestFiniteMagnitude, 0x1p53, 1e300, 0.5])
        }
    }

    mutating func doubleText() -> String {
        let value = double()
        switch below(4) {
        case 0: return String(format: "%.17g", value)
        case 1: return String(format: "%.\(below(8))e", value).replacingOccurrences(of: "e+", with: pick(["e+", "E", "e"]))
        default: return "\(value)"
        }
    }

    mutating func scalar() -> Unicode.Scalar {
        switch below(10) {
        case 0: return Unicode.Scalar(UInt8(below(0x20)))
        case 1: return pick(["\"", "\\", "/", "\u{7F}"])
        case 2: return pick(["é", "ß", "Ä", "漢", "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "\u{301}", "Ａ"])
        case 3: return pick(["😀", "\u{10FFFF}", "\u{1D11E}", "\u{10000}"])
        default: return Unicode.Scalar(UInt8(0x20 + below(0x5F)))
        }
    }

    mutating func string() -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<below(12) { scalars.append(scalar()) }
        return String(scalars)
    }

    mutating func key() -> String {
        if chance(40) { return pick(["a", "A", "b", "B", "a10", "a9", "é", "e\u{301}", "Z", "_", "", "ä", "😀", "Ａ", "id", "ID", "Id"]) }
        return string()
    }

    /// Each scalar written raw or escaped, at random where JSON leaves the choice.
    mutating func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            let short: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "\u{8}": "\\b", "\u{C}": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"]
            if let escape = short[scalar], scalar.value < 0x20 ? chance(60) : true {
                out += escape
            } else if scalar.value < 0x20 || chance(20) {
                let units = Array(String(scalar).utf16)
                let format = chance(50) ? "\\u%04x" : "\\u%04X"
                out += units.map { String(format: format, $0) }.joined()
            } else if scalar == "/" && chance(50) {
                out += "\\/"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A value built directly (not parsed), so doubles such as 1.0 or -0.0 reach the serializer.
    mutating func value(depth: Int) -> JSONValue {
        switch below(depth >= 4 ? 6 : 8) {
        case 0: return pick([.null, .bool(true), .bool(false)])
        case 1, 2: return .int(integer())
        case 3: return .double(chance(20) ? pick([1.0, -0.0, 0.0, 1e20, 1e-7, 1e15, 1e16, -1e300]) : double())
        case 4, 5: return .string(string())
        case 6: return .object(Dictionary((0..<below(6)).map { _ in (key(), value(depth: depth + 1)) }, uniquingKeysWith: { first, _ in first }))
        default: return .array((0..<below(6)).map { _ in value(depth: depth + 1) })
        }
    }
}

extension JSONValue {
    /// What Foundation's JSONEncoder writes for this value, the reference `serialized()` matches.
    var foundationText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "null"
    }
}
