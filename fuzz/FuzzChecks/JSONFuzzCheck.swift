import Foundation
import Switchyard

/// The properties the JSON parser and serializer must hold for any bytes at all. Shared by the
/// libFuzzer target (`make fuzz`), which traps on the first broken one so libFuzzer saves the
/// input, and by the bounded pass in SwitchyardTests, which reports them.
public enum JSONFuzzCheck {
    /// What is wrong with how `bytes` were handled; empty when every property holds.
    public static func problems(_ bytes: [UInt8]) -> [String] {
        let ours: JSONValue
        do {
            ours = try JSONValue.parse(utf8: bytes)
        } catch {
            return refusalProblems(bytes, error)
        }
        var problems: [String] = []
        // Foundation is the reference: whatever we accept, it reads as the same value.
        let theirs = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        if theirs != ours { problems.append("accepted as \(ours), Foundation's JSONDecoder read \(String(describing: theirs))") }
        if (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) == nil {
            problems.append("accepted, Foundation's JSONSerialization refused it")
        }
        return problems + roundTripProblems(ours)
    }

    /// Refusals name an offset inside the input; where Foundation reads the text anyway, the
    /// refusal must be one of the deliberate ones (JSONTextRefusalTests shows each).
    static func refusalProblems(_ bytes: [UInt8], _ error: JSONSyntaxError) -> [String] {
        guard (0...bytes.count).contains(error.offset) else { return ["refused at offset \(error.offset), outside the input: \(error)"] }
        // Both of Foundation's parsers, which are lax in different places: JSONDecoder checks a
        // number only when it is read, so it takes {"a":1,"a":06}, whose 06 a duplicate hides.
        guard (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))) != nil,
            (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil
        else { return [] }
        return isDeliberateRefusal(bytes, error) ? [] : ["refused (\(error)), Foundation accepted it"]
    }

    /// Where we are stricter than Foundation on purpose.
    static func isDeliberateRefusal(_ bytes: [UInt8], _ error: JSONSyntaxError) -> Bool {
        let reasons = ["duplicate key", "unpaired surrogate", "invalid UTF-8"]
        if reasons.contains(where: { error.reason.hasPrefix($0) }) { return true }
        // A trailing comma: the container closes where a value or key should have come.
        let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        if error.offset < bytes.count, bytes[error.offset] == UInt8(ascii: "]") || bytes[error.offset] == UInt8(ascii: "}"),
            bytes[..<error.offset].last(where: { !whitespace.contains($0) }) == UInt8(ascii: ",")
        {
            return true
        }
        // A byte order mark, which RFC 8259 says not to send.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) && error.offset == 0 { return true }
        // UTF-16 or UTF-32, which Foundation guesses from a zero byte among the first two or a
        // BOM ("\u{0}2" is a UTF-16BE "2" to it); RFC 8259 allows only UTF-8.
        return bytes.prefix(2).contains(0) || bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE])
    }

    /// serialize(parse(x)) is text we parse back to the same value, that Foundation reads the
    /// same way, that JSONEncoder would have written byte for byte, and that is a fixed point.
    static func roundTripProblems(_ value: JSONValue) -> [String] {
        let text = value.serialized()
        let again: JSONValue
        do {
            again = try JSONValue.parse(text: text)
        } catch {
            return ["serialized as \(text.debugDescription), which we refuse: \(error)"]
        }
        var problems: [String] = []
        // An integral double past 2^53 reads back as .int, as it does through Foundation.
        if !sameNumbers(again, value) { problems.append("serialized as \(text.debugDescription), read back as \(again)") }
        // Stable from the second pass on, not the first: such a double is written in its shortest
        // digits ("-9.223372036854776e+17"), which read back as the integer they spell, as
        // through Foundation, and that integer is then written whole.
        let second = again.serialized()
        if (try? JSONValue.parse(text: second).serialized()) != second {
            problems.append("serializing is not stable: \(text.debugDescription) → \(second.debugDescription)")
        }
        if (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) != again {
            problems.append("serialized as \(text.debugDescription), which Foundation reads otherwise")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let foundation = try? encoder.encode(value), String(decoding: foundation, as: UTF8.self) != text {
            problems.append(
                "serialized as \(text.debugDescription), JSONEncoder writes \(String(decoding: foundation, as: UTF8.self).debugDescription)"
            )
        }
        return problems
    }

    /// Equal, with an .int and a .double of the same number counted as equal.
    static func sameNumbers(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.int(let int), .double(let double)), (.double(let double), .int(let int)): return Double(int) == double
        case (.array(let lefts), .array(let rights)): return lefts.count == rights.count && zip(lefts, rights).allSatisfy(sameNumbers)
        case (.object(let lefts), .object(let rights)):
            return lefts.count == rights.count && lefts.allSatisfy { key, item in rights[key].map { sameNumbers(item, $0) } ?? false }
        default: return left == right
        }
    }
}
