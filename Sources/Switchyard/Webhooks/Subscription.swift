import Foundation

/// What an endpoint wants to receive: the events of one object type (`object_type` with `created`,
/// `updated`, `deleted`), or full event type names (`invoice.paid`, `work_order.updated`, `*`),
/// narrowed by the record's field values after the change (`filters`), the fields an update
/// changed (`changed`) and the record's creator (`created_by`).
public struct Subscription: Sendable, Equatable {
    /// An actor records carry as their creator (`Record.CreatedBy`); without `id`, any of that type.
    public struct Creator: Sendable, Equatable {
        public var type: String
        public var id: String?

        public init(type: String, id: String? = nil) {
            self.type = type
            self.id = id
        }
    }

    public var name: String?
    public var objectType: String?
    /// Verbs (`created`, `updated`, `deleted`) with `objectType`; full event types or `["*"]` without.
    public var events: [String]
    /// Field key → the values any of which matches; every key must match. Values are in the
    /// record's stored form once validated (UTC times, lower-case emails, whole integers).
    public var filters: [String: [JSONValue]]
    /// Only `updated` events that changed one of these fields (created and deleted events of the
    /// subscription are not narrowed by it).
    public var changed: [String]
    public var createdBy: Creator?

    public init(
        name: String? = nil,
        objectType: String? = nil,
        events: [String],
        filters: [String: [JSONValue]] = [:],
        changed: [String] = [],
        createdBy: Creator? = nil
    ) {
        self.name = name
        self.objectType = objectType
        self.events = events
        self.filters = filters
        self.changed = changed
        self.createdBy = createdBy
    }

    /// The verbs a subscription with an `object_type` names.
    public static let verbs: [String] = ["created", "updated", "deleted"]
    /// The actor types a record's `created_by` can hold and a subscription can name.
    public static let creatorTypes: [String] = ["user", "api_token", "app", "integration"]
    static let keys: Set<String> = ["name", "object_type", "events", "filters", "changed", "created_by"]

    /// The full event types this subscription names (`work_order.updated`), `*` for every event.
    public var eventTypes: [String] {
        guard let objectType else { return events }
        return events.map { "\(objectType).\($0)" }
    }

    /// The canonical JSON: members without a value left out, keys sorted when serialized.
    public var json: JSONValue {
        var object: [String: JSONValue] = ["events": .array(events.map(JSONValue.string))]
        if let name { object["name"] = .string(name) }
        if let objectType { object["object_type"] = .string(objectType) }
        if !filters.isEmpty { object["filters"] = .object(filters.mapValues(JSONValue.array)) }
        if !changed.isEmpty { object["changed"] = .array(changed.map(JSONValue.string)) }
        if let createdBy {
            var creator: [String: JSONValue] = ["type": .string(createdBy.type)]
            if let id = createdBy.id { creator["id"] = .string(id) }
            object["created_by"] = .object(creator)
        }
        return .object(object)
    }
}

/// An endpoint's subscriptions: it gets one delivery per event however many of them match.
public struct SubscriptionList: Sendable, Equatable {
    public var subscriptions: [Subscription]

    /// An endpoint has at most this many subscriptions.
    public static let maximumCount = 100
    /// A filter lists at most this many values per field.
    public static let maximumFilterValues = 100

    public init(_ subscriptions: [Subscription]) {
        self.subscriptions = subscriptions
    }

    /// The canonical JSON array, as answers show it and `webhook_endpoints.subscriptions` stores it.
    public var json: JSONValue { .array(subscriptions.map(\.json)) }
    public var jsonText: String { json.jsonText }

    /// The list as stored (`jsonText`), trusted: no check is repeated, so a subscription naming a
    /// field removed since still loads (and matches no record, which no longer has the field).
    public init(storedText: String) throws {
        guard case .array(let items) = try JSONValue.parse(text: storedText) else {
            throw StorageError.missingColumn("subscriptions (stored text is not a JSON array)")
        }
        subscriptions = items.map { item in
            let object = item.objectValue ?? [:]
            let strings: (String) -> [String] = { key in
                guard case .array(let values) = object[key] else { return [] }
                return values.compactMap(\.stringValue)
            }
            var filters: [String: [JSONValue]] = [:]
            for (key, value) in object["filters"]?.objectValue ?? [:] {
                if case .array(let values) = value { filters[key] = values }
            }
            let creator = object["created_by"]?.objectValue.flatMap { creator in
                creator["type"]?.stringValue.map { Subscription.Creator(type: $0, id: creator["id"]?.stringValue) }
            }
            return Subscription(
                name: object["name"]?.stringValue,
                objectType: object["object_type"]?.stringValue,
                events: strings("events"),
                filters: filters,
                changed: strings("changed"),
                createdBy: creator
            )
        }
    }

    /// The matcher the delivery fan-out runs for every event: build it once per endpoint.
    public func compiled() -> CompiledSubscriptions { CompiledSubscriptions(self) }
}
