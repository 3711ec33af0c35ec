import Foundation
import Testing

@testable import Switchyard

/// What the parser refuses, and where it says the text went wrong: the strictness Foundation
/// lacks (duplicate keys, trailing commas), invalid UTF-8 and surrogates, and hostile nesting.
@Suite("JSON text refusals")
struct JSONTextRefusalTests {
    static func expectRefusal(_ bytes: [UInt8], at offset: Int, _ reason: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let shown = String(decoding: bytes, as: UTF8.self).debugDescription
        do {
            let value = try JSONValue.parse(utf8: bytes)
            Issue.record("accepted \(shown) as \(value)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.offset == offset, "\(shown): \(error)", sourceLocation: sourceLocation)
            if let reason { #expect(error.reason == reason, "\(shown): \(error)", sourceLocation: sourceLocation) }
        }
    }

    static func expectRefusal(_ text: String, at offset: Int, _ reason: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        expectRefusal(Array(text.utf8), at: offset, reason, sourceLocation: sourceLocation)
    }

    @Test("grammar violations are refused with the offset where the text went wrong")
    func grammar() {
        Self.expectRefusal("01", at: 0, "leading zeros are not allowed")
        Self.expectRefusal("-01", at: 1)
        Self.expectRefusal("00", at: 0)
        Self.expectRefusal("+1", at: 0, "expected a value")
        Self.expectRefusal(".5", at: 0)
        Self.expectRefusal("1.", at: 2, "unexpected end of input")
        Self.expectRefusal("1.e5", at: 2, "expected a digit")
        Self.expectRefusal("1e", at: 2)
        Self.expectRefusal("1e+", at: 3)
        Self.expectRefusal("[1e-]", at: 4, "expected a digit")
        Self.expectRefusal("-", at: 1)
        Self.expectRefusal("-a", at: 1)
        Self.expectRefusal("NaN", at: 0)
        Self.expectRefusal("Infinity", at: 0)
        Self.expectRefusal("-Infinity", at: 1)
        Self.expectRefusal("0x10", at: 1, "unexpected text after the value")
        Self.expectRefusal("[1,]", at: 3, "expected a value")
        Self.expectRefusal(#"{"a":1,}"#, at: 7, "expected a string key")
        Self.expectRefusal("[,1]", at: 1)
        Self.expectRefusal("[1 2]", at: 3, "expected ',' or ']'")
        Self.expectRefusal(#"{"a" 1}"#, at: 5, "expected ':'")
        Self.expectRefusal(#"{"a":1 "b":2}"#, at: 7, "expected ',' or '}'")
        Self.expectRefusal("{a:1}", at: 1)
        Self.expectRefusal("// c\n1", at: 0)
        Self.expectRefusal("/* c */ 1", at: 0)
        Self.expectRefusal("1 // c", at: 2)
        Self.expectRefusal("1 2", at: 2)
        Self.expectRefusal("", at: 0, "unexpected end of input")
        Self.expectRefusal("   ", at: 3, "unexpected end of input")
        Self.expectRefusal("'a'", at: 0)
        Self.expectRefusal("\"a\tb\"", at: 2, "unescaped control character in a string")
        Self.expectRefusal("\"\u{1}\"", at: 1)
        Self.expectRefusal("\"a\nb\"", at: 2)
        Self.expectRefusal(#""\x""#, at: 1, "invalid escape")
        Self.expectRefusal(#""\u12""#, at: 5, "expected four hex digits after \\u")
        Self.expectRefusal(#""\u12G4""#, at: 5)
        Self.expectRefusal(#""abc"#, at: 0, "unterminated string")
        Self.expectRefusal(#"["a\"]"#, at: 1)
        Self.expectRefusal("\"\\", at: 2)
        Self.expectRefusal("[1", at: 2, "unexpected end of input")
        Self.expectRefusal(#"{"a""#, at: 4)
        Self.expectRefusal(#"{"a":}"#, at: 5, "expected a value")
        Self.expectRefusal("tru", at: 0)
        Self.expectRefusal("True", at: 0)
        Self.expectRefusal("nul", at: 0)
        Self.expectRefusal("truex", at: 4)
        Self.expectRefusal("[1]]", at: 3)
        Self.expectRefusal(#"{"a":1}}"#, at: 7)
        Self.expectRefusal("\u{FEFF}1", at: 0)
        Self.expectRefusal("\u{C}1", at: 0)
        Self.expectRefusal("\u{A0}1", at: 0)
        Self.expectRefusal("1e400", at: 0, "number out of range")
        Self.expectRefusal("-1e400", at: 0, "number out of range")
        Self.expectRefusal("[0, 1E999]", at: 4, "number out of range")
        Self.expectRefusal(String(repeating: "9", count: 400), at: 0, "number out of range")
    }

    @Test("escapes of unpaired surrogates are refused")
    func loneSurrogates() throws {
        Self.expectRefusal(#""\ud800""#, at: 1, "unpaired surrogate in \\u escape")
        Self.expectRefusal(#""\udc00""#, at: 1)
        Self.expectRefusal(#""\uDFFF\uD800""#, at: 1)
        Self.expectRefusal(#""\ud800\u0041""#, at: 1)
        Self.expectRefusal(#""\ud800\ud800""#, at: 1)
        Self.expectRefusal(#""\ud800x""#, at: 1)
        Self.expectRefusal(#""ab\udbff\n""#, at: 3)
        Self.expectRefusal(#"{"\ud800":1}"#, at: 2)
        #expect(try JSONValue.parse(text: #""\ud800\udc00""#) == .string("\u{10000}"))
    }

    @Test("invalid UTF-8 is refused, in strings and keys as anywhere")
    func invalidUTF8() throws {
        Self.expectRefusal([0x22, 0xFF, 0x22], at: 1, "invalid UTF-8")
        Self.expectRefusal([0x22, 0xC0, 0xAF, 0x22], at: 1)  // overlong "/"
        Self.expectRefusal([0x22, 0xC1, 0xBF, 0x22], at: 1)
        Self.expectRefusal([0x22, 0xE0, 0x80, 0xAF, 0x22], at: 1)  // overlong, 3 bytes
        Self.expectRefusal([0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22], at: 1)  // overlong, 4 bytes
        Self.expectRefusal([0x22, 0xED, 0xA0, 0x80, 0x22], at: 1)  // an encoded surrogate
        Self.expectRefusal([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], at: 1)  // past U+10FFFF
        Self.expectRefusal([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], at: 1)
        Self.expectRefusal([0x22, 0xE2, 0x82, 0x22], at: 1)  // truncated
        Self.expectRefusal([0x22, 0x61, 0x80, 0x22], at: 2)  // lone continuation byte
        Self.expectRefusal([0x22, 0xF0, 0x9F, 0x98], at: 1)  // truncated by the end of input
        Self.expectRefusal([0x22, 0x5C, 0x6E, 0xFE, 0x22], at: 3, "invalid UTF-8")  // after an escape
        Self.expectRefusal([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], at: 2)
        Self.expectRefusal([0x80], at: 0)
        Self.expectRefusal([0x5B, 0x31, 0x2C, 0xC3, 0xA9, 0x5D], at: 3)
        let valid: [UInt8] = [0x22, 0xC3, 0xA9, 0xE6, 0xBC, 0xA2, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x8F, 0xBF, 0xBF, 0xEF, 0xBF, 0xBF, 0x22]
        #expect(try JSONValue.parse(utf8: valid) == .string("é漢😀\u{10FFFF}\u{FFFF}"))
    }

    @Test("duplicate keys are refused, Foundation would silently keep the first")
    func duplicateKeys() throws {
        Self.expectRefusal(#"{"a":1,"a":2}"#, at: 7, #"duplicate key "a""#)
        Self.expectRefusal(#"{"a":1,"b":{"c":1,"c":2}}"#, at: 18, #"duplicate key "c""#)
        Self.expectRefusal(#"{"a":1,"\u0061":2}"#, at: 7)
        // Keys Swift's String calls equal (canonically equivalent) cannot both be held by [String: JSONValue].
        Self.expectRefusal("{\"\u{E9}\":1,\"e\u{301}\":2}", at: 8)
        let long = String(repeating: "k", count: 100)
        do {
            _ = try JSONValue.parse(text: "{\"\(long)\":1,\"\(long)\":2}")
            Issue.record("accepted a duplicate long key")
        } catch {
            #expect(error.reason == "duplicate key \"\(String(repeating: "k", count: 64))…\"")
        }
        #expect(try JSONValue.parse(text: #"[{"a":1},{"a":2}]"#) == .array([.object(["a": .int(1)]), .object(["a": .int(2)])]))
    }

    // Found by fuzzing: both are Foundation's leniency, not ours, and stay refused.
    @Test("UTF-16 and UTF-32 text, which JSONDecoder detects and reads, is refused: JSON is UTF-8")
    func otherEncodings() {
        Self.expectRefusal([0x00, 0x32], at: 0, "expected a value")  // "2" in UTF-16BE
        Self.expectRefusal([0x32, 0x00], at: 1, "unexpected text after the value")  // "2" in UTF-16LE
        Self.expectRefusal([0xFF, 0xFE, 0x32, 0x00], at: 0)
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data([0x00, 0x32]))) == .int(2))
    }

    @Test("a bad number is refused even where a duplicate key hides it from JSONDecoder")
    func numberBehindDuplicateKey() {
        Self.expectRefusal(#"{"a":1,"a":06}"#, at: 11, "leading zeros are not allowed")
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(#"{"a":1,"a":06}"#.utf8))) != nil)
    }

    @Test("nesting: 512 levels accepted, 513 refused, 100 000 refused without crashing")
    func nesting() throws {
        func arrays(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        func objects(_ depth: Int) -> String { String(repeating: #"{"a":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1) }
        let deepest = try JSONValue.parse(text: arrays(512))
        #expect(deepest.serialized() == arrays(512))
        #expect(try JSONValue.parse(text: objects(512)).serialized() == objects(512))
        // Foundation draws the same line when decoding; its encoder stops one level short, at 511.
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(arrays(512).utf8))) == deepest)
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(arrays(513).utf8))) == nil)
        Self.expectRefusal(arrays(513), at: 512, "nesting deeper than 512 arrays and objects")
        Self.expectRefusal(objects(513), at: 512 * 5)
        Self.expectRefusal(String(repeating: "[", count: 512) + "{}" + String(repeating: "]", count: 512), at: 512)
        Self.expectRefusal(String(repeating: "[", count: 100_000), at: 512)
        Self.expectRefusal(String(repeating: #"{"a":["#, count: 50_000), at: 256 * 6)
    }
}
