import Foundation

/// Any JSON value, kept exactly: record fields, event data and defaults pass through it, and
/// integers stay integers.
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        if case .object(let value) = self {
            // Through keys of our own type, so the API encoder's snake_case strategy can tell
            // user data (kept as written) from our own property names.
            var object = encoder.container(keyedBy: Key.self)
            for (key, item) in value { try object.encode(item, forKey: Key(key)) }
            return
        }
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object: break
        }
    }

    /// A key of user data.
    public struct Key: CodingKey {
        public let stringValue: String
        public init(_ string: String) { stringValue = string }
        public init?(stringValue: String) { self.stringValue = stringValue }
        public var intValue: Int? { nil }
        public init?(intValue: Int) { return nil }
    }

    /// Compact JSON text with sorted keys, for storage and answers (`serialized()`, below).
    public var jsonText: String { serialized() }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The name of this value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

// Serializing by hand: JSONEncoder measured at ~3 µs for a record's fields, this at ~0.3 µs.
extension JSONValue {
    /// Compact text, byte for byte what JSONEncoder (`.sortedKeys`, `.withoutEscapingSlashes`)
    /// gave before this replaced it, so text stored earlier compares and hashes the same.
    public func serialized() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .int(let value):
            if value < 0 { out.append(UInt8(ascii: "-")) }
            var magnitude = value.magnitude
            let start = out.count
            repeat {
                out.append(UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30)
                magnitude /= 10
            } while magnitude > 0
            out[start...].reverse()
        case .double(let value):
            // JSONEncoder throws on these and `jsonText` then gives "null" for the whole value;
            // parsing never produces them.
            guard value.isFinite else { return out.append(contentsOf: "null".utf8) }
            // JSONEncoder's own rule: `description`, less a trailing ".0" (1e+20 stays as is).
            var text = value.description
            if text.hasSuffix(".0") { text.removeLast(2) }
            out.append(contentsOf: text.utf8)
        case .string(let value): Self.write(string: value, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            // swift-foundation off Darwin sorts keys by their UTF-8 bytes (not String's `<`, which
            // compares normalized scalars, nor Darwin's NSString numeric/case-insensitive order).
            let entries = object.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, entry) in entries.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(string: entry.key, into: &out)
                out.append(UInt8(ascii: ":"))
                entry.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func write(string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var mark = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[mark..<index]))
                mark = index + 1
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default: out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hexDigit(byte >> 4), hexDigit(byte & 0xF)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[mark...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Lowercase, as JSONEncoder writes it.
private func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? nibble &+ 0x30 : nibble &+ 0x57 }
