import Foundation

/// A webhook endpoint: a URL of a subscriber, what it subscribes to, and how it is delivered to.
public struct Endpoint: Sendable {
    public enum Status: String, Sendable, CaseIterable {
        case active, inactive
        /// Set only by the server: a 410, or deliveries failing for too long (see DeliveryOutcome).
        case disabled
    }

    public var id: String
    public var workspaceID: String
    public var name: String?
    public var description: String?
    public var url: String
    public var status: Status
    /// The subscriptions as stored (canonical JSON array).
    public var subscriptions: JSONValue
    public var alertEmails: [String]
    public var headers: [String: String]
    /// Only the names: the values are sealed and never shown again.
    public var secretHeaderNames: [String]
    public var rateLimit: Int?
    public var fifo: Bool
    /// JavaScript `transform(webhook)` run before each delivery is signed (WebhookTransformation.swift).
    public var transformation: String?
    public var disabledAt: Date?
    public var disabledReason: String?
    public var lastError: String?
    public var createdBy: Record.CreatedBy?
    public var createdAt: Date
    public var updatedAt: Date

    /// The endpoint as the API shows it.
    public var json: JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        func time(_ date: Date?) -> JSONValue { date.map { .string(RFC3339.format($0)) } ?? .null }
        return .object([
            "id": .string(id),
            "workspace_id": .string(workspaceID),
            "name": optional(name),
            "description": optional(description),
            "url": .string(url),
            "status": .string(status.rawValue),
            "subscriptions": subscriptions,
            "alert_emails": .array(alertEmails.map(JSONValue.string)),
            "headers": .object(headers.mapValues(JSONValue.string)),
            "secret_headers": .array(secretHeaderNames.map(JSONValue.string)),
            "rate_limit": rateLimit.map { .int(Int64($0)) } ?? .null,
            "ordering": fifo ? .string("fifo") : .null,
            "transformation": optional(transformation),
            "disabled_at": time(disabledAt),
            "disabled_reason": optional(disabledReason),
            "last_error": optional(lastError),
            "created_by": createdBy.map { .object(["type": .string($0.type), "id": optional($0.id)]) } ?? .null,
            "created_at": time(createdAt),
            "updated_at": time(updatedAt),
        ])
    }
}

/// The members of a webhook body other than `subscriptions` and `url`, which need the database or
/// the network to check; shared by create (all) and update (those present).
struct EndpointFields: Sendable {
    static let keys: Set<String> = [
        "url", "subscriptions", "name", "description", "status", "alert_emails", "headers", "secret_headers", "rate_limit", "ordering",
        "transformation",
    ]

    var url: String?
    var subscriptions: JSONValue?
    /// `.some(nil)`: set to null.
    var name: String??
    var description: String??
    var status: Endpoint.Status?
    var alertEmails: [String]?
    var headers: [String: String]?
    var secretHeaders: [String: String]?
    var rateLimit: Int??
    var fifo: Bool?
    /// `.some(nil)`: removed. Compiled by the service (it needs the script runner).
    var transformation: String??

    init(json object: [String: JSONValue]) throws {
        if let value = object["url"] {
            guard let text = value.stringValue else {
                throw APIError.validation("`url` must be a string such as https://example.com/hooks.", field: "url")
            }
            url = text.trimmingCharacters(in: .whitespaces)
        }
        if let value = object["subscriptions"] {
            guard case .array(let list) = value, !list.isEmpty else {
                throw APIError.validation("`subscriptions` must be a non-empty array of subscriptions.", field: "subscriptions")
            }
            guard list.count <= 100 else { throw APIError.validation("An endpoint has at most 100 subscriptions.", field: "subscriptions") }
            subscriptions = value
        }
        name = try Self.optionalText(object, "name", maximum: 200, multiline: false)
        description = try Self.optionalText(object, "description", maximum: 2000, multiline: true)
        if let value = object["status"] {
            guard let text = value.stringValue, let status = Endpoint.Status(rawValue: text), status != .disabled else {
                throw APIError.validation(
                    "`status` must be `active` or `inactive`; `disabled` is set by the server when deliveries keep failing.",
                    field: "status"
                )
            }
            self.status = status
        }
        if let value = object["alert_emails"] {
            guard case .array(let list) = value else {
                throw APIError.validation("`alert_emails` must be an array of email addresses.", field: "alert_emails")
            }
            guard list.count <= 20 else { throw APIError.validation("`alert_emails` takes at most 20 addresses.", field: "alert_emails") }
            alertEmails = try list.enumerated().map { index, item in
                let field = "alert_emails[\(index)]"
                guard let text = item.stringValue else { throw APIError.validation("`\(field)` must be an email address.", field: field) }
                return try Validate.email(text, field: field)
            }
        }
        headers = try Self.headers(object, "headers")
        secretHeaders = try Self.headers(object, "secret_headers")
        if let headers, let secretHeaders,
            let both = headers.keys.first(where: { name in secretHeaders.keys.contains { $0.lowercased() == name.lowercased() } })
        {
            throw APIError.validation("`\(both)` is in both `headers` and `secret_headers`; send it in one of them.", field: "secret_headers.\(both)")
        }
        if let value = object["rate_limit"] {
            if value == .null {
                rateLimit = .some(nil)
            } else {
                guard case .int(let number) = value, (1...10_000).contains(number) else {
                    throw APIError.validation(
                        "`rate_limit` must be a whole number of deliveries per second from 1 to 10000, or null.",
                        field: "rate_limit"
                    )
                }
                rateLimit = Int(number)
            }
        }
        if let value = object["ordering"] {
            switch value {
            case .null: fifo = false
            case .string("fifo"): fifo = true
            default:
                throw APIError.validation("`ordering` must be \"fifo\" (one delivery at a time, in log order) or null.", field: "ordering")
            }
        }
        if let value = object["transformation"] {
            switch value {
            case .null: transformation = .some(nil)
            case .string(let code) where code.utf8.count <= WebhookTransformation.maximumCodeBytes:
                transformation = code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? .some(nil) : .some(code)
            default:
                throw APIError.validation(
                    "`transformation` must be JavaScript exporting `transform(webhook)`, at most 64 KB, or null.",
                    field: "transformation"
                )
            }
        }
    }

    private static func optionalText(_ object: [String: JSONValue], _ key: String, maximum: Int, multiline: Bool) throws -> String?? {
        guard let value = object[key] else { return nil }
        if value == .null { return .some(nil) }
        guard let text = value.stringValue else { throw APIError.validation("`\(key)` must be a string or null.", field: key) }
        return .some(try Validate.name(text, field: key, maximum: maximum, multiline: multiline))
    }

    /// Header names are HTTP tokens; values single-line. The headers a delivery sets itself cannot
    /// be overridden, so a signature is always the server's.
    static let reservedHeaders: Set<String> = [
        "content-type", "content-length", "host", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
        "transfer-encoding", "connection",
    ]

    private static func headers(_ object: [String: JSONValue], _ key: String) throws -> [String: String]? {
        guard let value = object[key] else { return nil }
        if value == .null { return [:] }
        guard case .object(let map) = value else {
            throw APIError.validation("`\(key)` must be an object of header names to values.", field: key)
        }
        guard map.count <= 20 else { throw APIError.validation("`\(key)` takes at most 20 headers.", field: key) }
        let token = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)
        var seen = Set<String>()
        for (name, item) in map {
            let field = "\(key).\(name)"
            guard !name.isEmpty, name.count <= 100, name.unicodeScalars.allSatisfy(token.contains) else {
                throw APIError.validation("`\(name)` is not a valid header name (letters, digits and !#$%&'*+-.^_`|~).", field: field)
            }
            guard !reservedHeaders.contains(name.lowercased()) else {
                throw APIError.validation("`\(name)` is set by every delivery itself and cannot be overridden.", field: field)
            }
            guard seen.insert(name.lowercased()).inserted else {
                throw APIError.validation("`\(name)` is given twice (header names are case-insensitive).", field: field)
            }
            guard let text = item.stringValue, text.count <= 4096,
                !text.unicodeScalars.contains(where: { ($0.value < 32 && $0 != "\t") || $0.value == 127 })
            else {
                throw APIError.validation("`\(field)` must be a single-line string of at most 4096 characters.", field: field)
            }
        }
        return map.mapValues { $0.stringValue ?? "" }
    }
}

public struct CreateEndpointInput: JSONObjectBody {
    public static let keys = EndpointFields.keys
    var fields: EndpointFields
    var url: String
    var subscriptions: JSONValue
    let fingerprint: String

    public init(json object: [String: JSONValue]) throws {
        fields = try EndpointFields(json: object)
        guard let url = fields.url else { throw APIError.validation("`url` is required.", field: "url") }
        guard let subscriptions = fields.subscriptions else {
            throw APIError.validation("`subscriptions` is required: say which events the endpoint receives.", field: "subscriptions")
        }
        self.url = url
        self.subscriptions = subscriptions
        fingerprint = Idempotency.fingerprint(JSONValue.object(object).jsonText)
    }

    public var idempotencyFingerprint: String { fingerprint }

    // Only `init(json:)` is used (JSONBody.decode); Decodable is what RequestBody asks for.
    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}

public struct UpdateEndpointInput: JSONObjectBody {
    public static let keys = EndpointFields.keys
    var fields: EndpointFields

    public init(json object: [String: JSONValue]) throws {
        fields = try EndpointFields(json: object)
    }

    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}
