import Foundation

/// One grant of an app, ServiceChannel's permission table made general: `work_order:read`,
/// `work_order:create`, `work_order:delete`, `work_order:update` (any field),
/// `work_order:update:status` (that field only), `work_order:update:status=completed` (that
/// field, to that value only), and the grants of no object type: `events:read`,
/// `webhooks:manage`, `connections:run`.
public struct Permission: Hashable, Sendable, CustomStringConvertible {
    public enum Action: Hashable, Sendable {
        case read, create, delete
        /// `field` nil: any field; `value` nil: any value of it.
        case update(field: String?, value: String?)
    }

    public enum Kind: Hashable, Sendable {
        case object(type: String, action: Action)
        case eventsRead, webhooksManage, connectionsRun
    }

    public let kind: Kind
    public let description: String

    public static let global = ["events:read", "webhooks:manage", "connections:run"]

    /// Parses a permission's text; nil when it is not one (an unknown permission).
    public init?(_ text: String) {
        switch text {
        case "events:read": kind = .eventsRead
        case "webhooks:manage": kind = .webhooksManage
        case "connections:run": kind = .connectionsRun
        default:
            let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, Self.isKey(parts[0]) else { return nil }
            switch (parts[1], parts.count) {
            case ("read", 2): kind = .object(type: parts[0], action: .read)
            case ("create", 2): kind = .object(type: parts[0], action: .create)
            case ("delete", 2): kind = .object(type: parts[0], action: .delete)
            case ("update", 2): kind = .object(type: parts[0], action: .update(field: nil, value: nil))
            case ("update", 3):
                let target = parts[2]
                if let equals = target.firstIndex(of: "=") {
                    let field = String(target[..<equals])
                    let value = String(target[target.index(after: equals)...])
                    guard Self.isKey(field), !value.isEmpty else { return nil }
                    kind = .object(type: parts[0], action: .update(field: field, value: value))
                } else {
                    guard Self.isKey(target) else { return nil }
                    kind = .object(type: parts[0], action: .update(field: target, value: nil))
                }
            default: return nil
            }
        }
        description = text
    }

    /// The object type it is about, if any.
    public var objectType: String? {
        if case .object(let type, _) = kind { return type }
        return nil
    }

    /// Whether a `read` app may hold it.
    public var isRead: Bool {
        switch kind {
        case .object(_, .read), .eventsRead: true
        default: false
        }
    }

    static func isKey(_ text: String) -> Bool {
        guard let first = text.utf8.first, (97...122).contains(first), text.utf8.count <= 64 else { return false }
        return text.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    /// How a field's value is spelled in `type:update:field=value`: a string as it is, anything
    /// else as its JSON.
    public static func valueText(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.jsonText
    }
}

/// The permissions an app call holds, asked by the services that serve it.
public struct Grants: Sendable {
    public let names: Set<String>

    public init(_ names: Set<String>) {
        self.names = names
    }

    public func allows(_ name: String) -> Bool { names.contains(name) }

    /// The permission an update of `field` to `value` lacks, or nil when one of `type:update`,
    /// `type:update:field` or `type:update:field=value` is held.
    public func missingUpdate(type: String, field: String, value: JSONValue) -> String? {
        let exact = "\(type):update:\(field)=\(Permission.valueText(value))"
        if names.contains("\(type):update") || names.contains("\(type):update:\(field)") || names.contains(exact) { return nil }
        return "\(type):update:\(field)"
    }
}
