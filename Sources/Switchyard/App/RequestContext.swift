import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import NIOCore

/// Per-request state: who is calling (set by `AuthenticationMiddleware`) and from where.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var credentials: Credentials?
    public let remoteIP: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
    }

    public var responseEncoder: JSONEncoder { JSONCoding.encoder }
    public var requestDecoder: JSONDecoder { JSONCoding.decoder }

    /// Who did it and from where, for activity entries.
    public func audit(_ principal: Principal?) -> AuditContext {
        AuditContext(
            actorType: principal?.actorType ?? "anonymous",
            actorID: principal?.actorID,
            actorLabel: principal?.email,
            appID: nil,
            ip: remoteIP,
            requestID: id)
    }
}

/// The actor, origin and request of a change, carried from routes to services and into the
/// activity log.
public struct AuditContext: Sendable {
    public var actorType: String
    public var actorID: String?
    public var actorLabel: String?
    public var appID: String?
    public var ip: String?
    public var requestID: String?

    public static func system(_ label: String) -> AuditContext {
        AuditContext(actorType: "system", actorID: nil, actorLabel: label, appID: nil, ip: nil, requestID: nil)
    }
}

public enum JSONCoding {
    /// `value` as the API writes it, for answers stored and replayed (idempotency).
    public static func encodeText<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Made once: building an encoder per answer showed in profiles. JSONEncoder is safe to
    /// share between threads once configured.
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // snake_case for our own property names; keys of user data (`JSONValue.Key`) as written.
        // Most keys have no capital letter and return at once, before any cast.
        encoder.keyEncodingStrategy = .custom { path in
            guard let key = path.last else { return JSONValue.Key("") }
            let name = key.stringValue
            guard name.utf8.contains(where: { $0 >= 65 && $0 <= 90 }), type(of: key) != JSONValue.Key.self else { return key }
            return JSONValue.Key(JSONBody.snakeCase(name))
        }
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        // No key strategy: it would rename keys inside user data too. Inputs with multi-word keys
        // spell them out in CodingKeys.
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an RFC 3339 time such as 2026-01-31T12:00:00Z")
            }
            return date
        }
        return decoder
    }()
}

/// RFC 3339 UTC times with milliseconds, the API's one time format.
public enum RFC3339 {
    /// `2026-01-31T09:30:00.123Z`, by hand: the FormatStyle route cost more than a whole answer.
    public static func format(_ date: Date) -> String {
        let milliseconds = date.millisecondsSince1970
        var seconds = time_t(milliseconds.floorDiv(1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let fraction = Int(milliseconds - milliseconds.floorDiv(1000) * 1000)
        let millis = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)) {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }
}

extension Int64 {
    /// Division rounding toward negative infinity, so times before 1970 format correctly.
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
