import Foundation
import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Per-request state: what credentials the caller presented (set by the route group's
/// `AuthenticationMiddleware`) and from where.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var credentials: Credentials?
    /// Set by the app middleware for calls with an app access token: which app it turned out to be.
    public var appCall: AppCallNote?
    /// Hummingbird's `id`, formatted once: every answer carries it (`X-Request-Id`), and `id`
    /// formats it anew on each use.
    public private(set) var requestID = ""
    private let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        requestID = id
    }

    /// The client's address when a trusted proxy forwarded the request (`ProblemMiddleware`).
    var forwardedIP: String?

    /// The client's address: from a trusted proxy's `X-Forwarded-For`, else the TCP peer's,
    /// formatted only when an activity entry or a throttle needs it.
    public var remoteIP: String? { forwardedIP ?? remoteAddress?.ipAddress }

    public var responseEncoder: JSONEncoder { JSONCoding.encoder }
    public var requestDecoder: JSONDecoder { JSONCoding.decoder }

    /// Who did it and from where, for activity entries; anonymous until a principal is known.
    public func audit(_ principal: Principal? = nil) -> AuditContext {
        let audit = AuditContext(actorType: "anonymous", actorID: nil, actorLabel: nil, appID: nil, ip: remoteIP, requestID: requestID)
        return principal?.audit(from: audit) ?? audit
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

    /// The same origin, with `user` as the actor: someone acting through a mailed link, signed in
    /// by nothing else.
    public func byUser(_ user: User) -> AuditContext {
        var audit = self
        audit.actorType = "user"
        audit.actorID = user.id
        audit.actorLabel = user.email
        return audit
    }

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
        let year = Int(parts.tm_year) + 1900
        let paddedYear = year < 10 ? "000\(year)" : year < 100 ? "00\(year)" : year < 1000 ? "0\(year)" : "\(year)"
        return
            "\(paddedYear)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }

    /// Strict RFC 3339 (`2026-01-31T09:30:00Z`, `…00.5+02:00`, `t`/`z` accepted), years 1–9999 in the
    /// proleptic Gregorian calendar; an impossible date such as February 30 is nil, never rolled over.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var value = 0
            for byte in b[from..<(from + count)] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58,
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
            (1...9999).contains(year), (1...12).contains(month), (1...daysIn(month, year)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var milliseconds = 0
        if b[index] == 46 {
            index += 1
            var digits = 0
            while index < b.count, b[index] >= 48, b[index] <= 57 {
                if digits < 3 { milliseconds = milliseconds * 10 + Int(b[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { milliseconds *= 10 } }
        }
        guard index < b.count else { return nil }
        var offset = 0
        if b[index] == 90 || b[index] == 122 {
            index += 1
        } else if b[index] == 43 || b[index] == 45, let hours = number(index + 1, 2), index + 3 < b.count, b[index + 3] == 58,
            let minutes = number(index + 4, 2), hours < 24, minutes < 60
        {
            offset = (hours * 60 + minutes) * 60 * (b[index] == 45 ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        let seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(millisecondsSince1970: Int64(seconds) * 1000 + Int64(milliseconds))
    }

    static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension Int64 {
    /// Division rounding toward negative infinity, so times before 1970 format correctly.
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
