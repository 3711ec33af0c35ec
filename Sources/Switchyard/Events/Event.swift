import Foundation

/// One entry of a workspace's event log: a record change (`work_order.updated`) appended in the
/// same transaction as the change, or an event a host posted itself.
public struct Event: Codable, Sendable {
    public struct Actor: Codable, Sendable, Equatable {
        public var type: String
        public var id: String?
    }

    public var id: String
    public var workspaceId: String
    public var type: String
    /// The object type key and record id of a record event.
    public var objectType: String?
    public var recordId: String?
    public var data: JSONValue
    /// For `*.updated`: the previous value of each field that changed (null where it was unset).
    public var changedFields: [String: JSONValue]?
    /// Who made the change.
    public var actor: Actor
    /// Who created the record, so a subscriber can be sent only the events of its own records.
    public var createdBy: Record.CreatedBy?
    public var occurredAt: Date
}

public struct PostEventInput: JSONObjectBody {
    public static let keys: Set<String> = ["type", "data"]
    public var type: String
    public var data: JSONValue?

    public init(json object: [String: JSONValue]) throws {
        type = try EventService.validateType(try JSONBody.required(object, "type", "a string") { $0.stringValue })
        data = object["data"].flatMap { $0 == .null ? nil : $0 }
    }

    /// What makes two posts the same request, for `Idempotency-Key`.
    public var idempotencyFingerprint: String { Idempotency.fingerprint(type, (data ?? .object([:])).jsonText) }
}

// Written by hand: JSONEncoder was 7 % of a host event's ingest and delivery (perf, release).
// Byte for byte what `JSONCoding.encodeText(event)` gives (EventTests checks it).
extension Event {
    public var json: JSONValue {
        func who(_ type: String, _ id: String?) -> JSONValue {
            var object: [String: JSONValue] = ["type": .string(type)]
            if let id { object["id"] = .string(id) }
            return .object(object)
        }
        var object: [String: JSONValue] = [
            "actor": who(actor.type, actor.id),
            "data": data,
            "id": .string(id),
            "occurred_at": .string(RFC3339.format(occurredAt)),
            "type": .string(type),
            "workspace_id": .string(workspaceId),
        ]
        if let changedFields { object["changed_fields"] = .object(changedFields) }
        if let createdBy { object["created_by"] = who(createdBy.type, createdBy.id) }
        if let objectType { object["object_type"] = .string(objectType) }
        if let recordId { object["record_id"] = .string(recordId) }
        return .object(object)
    }

    public var jsonText: String { json.jsonText }
}
