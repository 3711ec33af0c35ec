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

enum EventStore {
    static func insert(_ tx: SQLTx, _ event: Event, dataJSON: String) throws {
        try tx.execute(
            """
            INSERT INTO events (id, workspace_id, type, object_type, record_id, data, changed_fields, actor_type, actor_id,
                                created_by_type, created_by_id, occurred_at, position)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \(tx.dialect.eventPosition))
            """,
            event.id,
            event.workspaceId,
            event.type,
            event.objectType,
            event.recordId,
            dataJSON,
            event.changedFields.map { JSONValue.object($0).jsonText },
            event.actor.type,
            event.actor.id,
            event.createdBy?.type,
            event.createdBy?.id,
            event.occurredAt
        )
    }

    /// In commit order after the event `after`, optionally of some types only.
    static func list(_ tx: SQLTx, workspaceID: String, after: String?, types: [String], limit: Int) throws -> [Event] {
        var sql = "SELECT * FROM events WHERE workspace_id = ?\(tx.dialect.visibleEvents)"
        var arguments: [SQLValue] = [.text(workspaceID)]
        if let after {
            guard
                let position = try tx.queryOne("SELECT position FROM events WHERE id = ? AND workspace_id = ?", after, workspaceID)?
                    .int("position")
            else {
                throw APIError.validation("`after` must be the id of an event of this workspace (the `next_after` of a page).", field: "after")
            }
            sql += " AND (position > ? OR (position = ? AND id > ?))"
            arguments += [.int(position), .int(position), .text(after)]
        }
        if !types.isEmpty {
            sql += " AND type IN (\(tx.placeholders(types.count)))"
            arguments += types.map(SQLValue.text)
        }
        sql += " ORDER BY position, id LIMIT ?"
        arguments.append(.int(Int64(limit)))
        return try tx.query(sql, arguments).map(event(from:))
    }

    static func event(from row: SQLRow) throws -> Event {
        let changed = try row.optionalString("changed_fields").map { try JSONValue.parse(text: $0).objectValue ?? [:] }
        let createdBy = row.optionalString("created_by_type").map { Record.CreatedBy(type: $0, id: row.optionalString("created_by_id")) }
        return Event(
            id: try row.string("id"),
            workspaceId: try row.string("workspace_id"),
            type: try row.string("type"),
            objectType: row.optionalString("object_type"),
            recordId: row.optionalString("record_id"),
            data: try JSONValue.parse(text: try row.string("data")),
            changedFields: changed,
            actor: Event.Actor(type: try row.string("actor_type"), id: row.optionalString("actor_id")),
            createdBy: createdBy,
            occurredAt: try row.date("occurred_at")
        )
    }
}
