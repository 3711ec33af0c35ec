import Foundation
import Hummingbird
import NIOCore

/// A request body the API accepts: its JSON keys, so that a misspelt or unknown field is refused
/// rather than silently ignored.
public protocol RequestBody: Decodable, Sendable {
    static var keys: Set<String> { get }
}

/// A body built straight from the parsed JSON object instead of through JSONDecoder, which
/// measured at ~10 µs for a record write's small body: the hot bodies (records, events).
public protocol JSONObjectBody: RequestBody {
    /// `object`'s keys are already checked against `keys`.
    init(json object: [String: JSONValue]) throws
}

extension Request {
    /// Reads and decodes a JSON object body strictly: malformed JSON is a 400, a body over `limit`
    /// a 413, and an unknown field, wrong type or missing field a 422 naming the field.
    public mutating func decodeBody<T: RequestBody>(_ type: T.Type, limit: Int) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit)
        }
        return try JSONBody.decode(type, from: buffer)
    }
}

extension Response {
    /// An answer whose JSON is written already (hand-rendered, or stored for an Idempotency-Key).
    static func json(status: Int, body: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

public enum JSONBody {
    public static func decode<T: RequestBody>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        let object = try object(of: type, from: buffer)
        if let direct = T.self as? any JSONObjectBody.Type, let body = try direct.init(json: object) as? T {
            return body
        }
        do {
            return try JSONCoding.decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw map(error)
        }
    }

    /// The body parsed strictly (RFC 8259; duplicate keys refused), as an object holding no NUL
    /// character and no key outside `T.keys`.
    static func object<T: RequestBody>(of type: T.Type, from buffer: ByteBuffer) throws -> [String: JSONValue] {
        if buffer.readableBytes == 0 { throw APIError.malformed("The request body is empty; send a JSON object.") }
        let value: JSONValue
        do {
            value = try JSONValue.parse(utf8: buffer)
        } catch {
            throw APIError.malformed("The request body is not valid JSON: \(error.description).")
        }
        guard case .object(let object) = value else {
            throw APIError.validation("The request body must be a JSON object.")
        }
        if let path = nulPath(value, path: "") {
            throw APIError.validation("`\(path)` contains a NUL character (\\u0000), which text cannot hold.", field: path)
        }
        if let unknown = object.keys.filter({ !T.keys.contains($0) }).sorted().first {
            throw APIError.validation(
                "Unknown field `\(unknown)`. Known fields: \(T.keys.sorted().joined(separator: ", ")).",
                field: unknown
            )
        }
        return object
    }

    /// The path of the first string (or key) holding U+0000, if any.
    static func nulPath(_ value: JSONValue, path: String) -> String? {
        switch value {
        case .string(let text):
            return text.utf8.contains(0) ? (path.isEmpty ? "body" : path) : nil
        case .object(let object):
            for (key, item) in object {
                let itemPath = path.isEmpty ? key : "\(path).\(key)"
                if key.utf8.contains(0) { return itemPath }
                if let found = nulPath(item, path: itemPath) { return found }
            }
            return nil
        case .array(let array):
            for (index, item) in array.enumerated() {
                if let found = nulPath(item, path: "\(path)[\(index)]") { return found }
            }
            return nil
        default:
            return nil
        }
    }

    /// `object[key]` through `extract`, with the 422s JSONDecoder's errors map to: required when
    /// missing or null, and the expected kind when of another type.
    public static func required<T>(
        _ object: [String: JSONValue],
        _ key: String,
        _ kind: String,
        _ extract: (JSONValue) -> T?
    ) throws -> T {
        guard let value = object[key] else { throw APIError.validation("`\(key)` is required.", field: key) }
        guard value != .null else { throw APIError.validation("`\(key)` must be \(kind), not null.", field: key) }
        guard let extracted = extract(value) else { throw APIError.validation("`\(key)` must be \(kind).", field: key) }
        return extracted
    }

    /// For nested objects of a body: refuses a key outside `known`, naming its full path.
    public static func refuseUnknownKeys(_ decoder: Decoder, known: Set<String>) throws {
        let keys = try decoder.container(keyedBy: JSONValue.Key.self).allKeys
        if let unknown = keys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath + [JSONValue.Key(unknown)],
                    debugDescription: "unknown field; known fields: \(known.sorted().joined(separator: ", ")).",
                    underlyingError: nil
                )
            )
        }
    }

    static func map(_ error: DecodingError) -> APIError {
        switch error {
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            return .validation("`\(field)` must be \(describe(type)).", field: field)
        case .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            return .validation("`\(field)` must be \(describe(type)), not null.", field: field)
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .validation("`\(field)` is required.", field: field)
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            return .validation("`\(field)`: \(context.debugDescription)", field: field.isEmpty ? nil : field)
        @unknown default:
            return .validation("The request body does not have the expected shape.")
        }
    }

    /// The field path as the client wrote it (snake_case, `a.b[0]`).
    static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                if !out.isEmpty { out += "." }
                out += snakeCase(key.stringValue)
            }
        }
        return out
    }

    /// `createdAt` → `created_at`, ASCII only (our own property names).
    static func snakeCase(_ name: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count + 4)
        for byte in name.utf8 {
            if byte >= 65 && byte <= 90 {
                out.append(95)
                out.append(byte + 32)
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Date.Type: return "an RFC 3339 time"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "of type \(name)"
        }
    }
}

/// An enum of the API: decoding an unknown value names the values it accepts.
public protocol APIEnum: CaseIterable, Codable, RawRepresentable where RawValue == String {}

extension APIEnum {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "must be one of \(Self.allCases.map(\.rawValue).joined(separator: ", ")); \"\(raw.prefix(60))\" is not"
            )
        }
        self = value
    }
}
