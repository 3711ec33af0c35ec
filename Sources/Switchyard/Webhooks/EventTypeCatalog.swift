import Foundation

/// One event type a subscription can name: a record change of an object type, with a JSON Schema
/// of its `data`, or a host event type posted so far (no schema: its data is what the host sent).
public struct EventTypeInfo: Sendable, Equatable {
    public var type: String
    public var objectType: String?
    public var description: String
    public var schema: JSONValue?

    /// `object_type` and `schema` are always present, as null for a host event type.
    public var json: JSONValue {
        .object([
            "type": .string(type),
            "object_type": objectType.map(JSONValue.string) ?? .null,
            "description": .string(description),
            "schema": schema ?? .null,
        ])
    }
}

/// What events a workspace has, for subscribers (`GET …/event-types`) and for checking webhook
/// subscriptions against the workspace's object types.
public struct EventTypeCatalog: Sendable {
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let objectTypes: ObjectTypeService
    let events: EventService

    /// Three per object type (by key: created, updated, deleted), then the host event types by name.
    public func list(caller: Caller, workspaceID: String) async throws -> [EventTypeInfo] {
        try await authenticator.read(caller) { [self] tx, principal in
            if case .app(let app) = principal, !app.permissions.contains("events:read"), !app.permissions.contains("webhooks:manage") {
                throw APIError.forbidden("The app \(app.name) may not read the event type catalog: it lacks `events:read` or `webhooks:manage`.")
            }
            _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
            return try list(tx, workspaceID: workspaceID)
        }
    }

    /// The catalog in the caller's transaction (which has checked the caller may reach the workspace).
    public func list(_ tx: SQLTx, workspaceID: String) throws -> [EventTypeInfo] {
        let types = try objectTypes.objectTypes(tx, workspaceID: workspaceID)
        var catalog = types.flatMap(Self.recordEventTypes)
        let recordTypes = Set(catalog.map(\.type))
        // A host type posted before an object type took its name is that type's record event now.
        for host in try events.hostEventTypes(tx, workspaceID: workspaceID) where !recordTypes.contains(host.type) {
            catalog.append(
                EventTypeInfo(
                    type: host.type,
                    objectType: nil,
                    description:
                        "A host event, posted with POST …/events (first on \(RFC3339.format(host.firstPostedAt))); `data` is what the host sent.",
                    schema: nil
                )
            )
        }
        return catalog
    }

    /// Checks subscriptions read from a request (`SubscriptionList.parse`) against the workspace's
    /// object types, in the caller's transaction; answers them in their stored form.
    public func validate(
        _ tx: SQLTx,
        _ subscriptions: SubscriptionList,
        workspaceID: String,
        path: String = "subscriptions"
    ) throws
        -> SubscriptionList
    {
        // Only subscriptions with an object type need the types; most lists name few.
        guard subscriptions.subscriptions.contains(where: { $0.objectType != nil }) else { return subscriptions }
        let types = try objectTypes.objectTypes(tx, workspaceID: workspaceID)
        return try subscriptions.validated(against: Dictionary(types.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first }), path: path)
    }

    static func recordEventTypes(_ type: ObjectType) -> [EventTypeInfo] {
        let schema = EventSchema.record(type)
        let what = "A `\(type.key)` record (\(type.name))"
        return [
            EventTypeInfo(
                type: "\(type.key).created",
                objectType: type.key,
                description: "\(what) was created; `data` is the new record.",
                schema: schema
            ),
            EventTypeInfo(
                type: "\(type.key).updated",
                objectType: type.key,
                description:
                    "\(what) was changed; `data` is the record after the change, and the event's `changed_fields` holds the previous value of each field that changed.",
                schema: schema
            ),
            EventTypeInfo(
                type: "\(type.key).deleted",
                objectType: type.key,
                description: "\(what) was deleted (alone, or with its type); `data` is the record as it was.",
                schema: schema
            ),
        ]
    }
}

/// JSON Schemas (draft 2020-12) of record events' `data`: the record as the API answers it, its
/// `fields` described by the type's data fields.
enum EventSchema {
    static let dialect = "https://json-schema.org/draft/2020-12/schema"
    static let recordID = "^rec_[0-9A-HJKMNP-TV-Z]{26}$"

    static func string(_ format: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("string")]
        if let format { schema["format"] = .string(format) }
        return .object(schema)
    }

    static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

    static func record(_ type: ObjectType) -> JSONValue {
        let creator: JSONValue = .object([
            "type": .string("object"),
            "properties": .object(["type": .object(["enum": strings(Subscription.creatorTypes + ["system"])]), "id": string()]),
            "required": strings(["type"]),
        ])
        var fields: [String: JSONValue] = [
            "type": .string("object"),
            "properties": .object(Dictionary(type.fields.map { ($0.key, field($0)) }, uniquingKeysWith: { first, _ in first })),
        ]
        let required = type.fields.filter(\.required).map(\.key)
        if !required.isEmpty { fields["required"] = strings(required) }
        return .object([
            "$schema": .string(dialect),
            "title": .string(type.name),
            "description": .string("A `\(type.key)` record, as the API answers it."),
            "type": .string("object"),
            "properties": .object([
                "id": .object(["type": .string("string"), "pattern": .string(recordID)]),
                "workspace_id": string(),
                "type": .object(["const": .string(type.key)]),
                "version": .object(["type": .string("integer"), "minimum": .int(1)]),
                "created_at": string("date-time"),
                "updated_at": string("date-time"),
                "created_by": creator,
                "fields": .object(fields),
            ]),
            "required": strings(["id", "workspace_id", "type", "version", "created_at", "updated_at", "created_by", "fields"]),
        ])
    }

    /// A data field's values (a field without a value is left out of `fields`, never null).
    static func field(_ field: DataField) -> JSONValue {
        var schema: [String: JSONValue]
        switch field.type {
        case .text: schema = ["type": .string("string")]
        case .number: schema = ["type": .string("number")]
        case .integer: schema = ["type": .string("integer")]
        case .boolean: schema = ["type": .string("boolean")]
        case .date: schema = ["type": .string("string"), "format": .string("date")]
        case .datetime: schema = ["type": .string("string"), "format": .string("date-time")]
        case .enum: schema = ["type": .string("string"), "enum": strings(field.options ?? [])]
        case .email: schema = ["type": .string("string"), "format": .string("email")]
        case .url: schema = ["type": .string("string"), "format": .string("uri")]
        case .reference:
            schema = [
                "type": .string("string"), "pattern": .string(recordID),
                "description": .string("The id of a `\(field.reference ?? "")` record."),
            ]
        case .json: schema = ["description": .string("Any JSON value.")]
        }
        schema["title"] = .string(field.label)
        if let value = field.defaultValue { schema["default"] = value }
        return .object(schema)
    }
}
