import Foundation

// Reading subscriptions from a request body, in two steps: `parse` checks their shape (what needs
// no database), `validated(against:)` checks them against the workspace's object types inside the
// caller's transaction. Every refusal names its JSON path (`subscriptions[0].filters.trade[1]`).

extension SubscriptionList {
    /// The request's `subscriptions` member (`path` names it in errors): a non-empty array of
    /// subscription objects, each of the right shape. Field names and values are checked later,
    /// against the object types (`validated(against:)`).
    public static func parse(_ value: JSONValue?, path: String = "subscriptions") throws -> SubscriptionList {
        guard let value, value != .null else { throw APIError.validation("`\(path)` is required.", field: path) }
        guard case .array(let items) = value else {
            throw APIError.validation("`\(path)` must be an array of subscriptions, not \(value.typeName).", field: path)
        }
        guard !items.isEmpty else {
            throw APIError.validation(
                "`\(path)` must hold at least one subscription, such as {\"object_type\": \"work_order\", \"events\": [\"updated\"]}.",
                field: path
            )
        }
        guard items.count <= maximumCount else {
            throw APIError.validation("`\(path)` holds at most \(maximumCount) subscriptions, not \(items.count).", field: path)
        }
        return SubscriptionList(try items.enumerated().map { index, item in try Subscription.parse(item, path: "\(path)[\(index)]") })
    }

    /// The list checked against the workspace's object types (by key): each `object_type` exists,
    /// filters and `changed` name its fields, and filter values suit their field (an enum's among
    /// its options). Filter values come back in their stored form, so they compare with records.
    public func validated(against types: [String: ObjectType], path: String = "subscriptions") throws -> SubscriptionList {
        SubscriptionList(try subscriptions.enumerated().map { index, item in try item.validated(against: types, path: "\(path)[\(index)]") })
    }
}

extension Subscription {
    static func parse(_ value: JSONValue, path: String) throws -> Subscription {
        guard case .object(let object) = value else {
            throw APIError.validation(
                "`\(path)` must be an object such as {\"object_type\": \"work_order\", \"events\": [\"updated\"]}.",
                field: path
            )
        }
        if let unknown = object.keys.filter({ !keys.contains($0) }).sorted().first {
            throw APIError.validation(
                "Unknown field `\(unknown.prefix(100))` in a subscription. Known fields: \(keys.sorted().joined(separator: ", ")).",
                field: "\(path).\(unknown.prefix(100))"
            )
        }
        func member(_ key: String) -> JSONValue? { object[key].flatMap { $0 == .null ? nil : $0 } }
        func string(_ key: String) throws -> String? {
            guard let value = member(key) else { return nil }
            guard let text = value.stringValue else { throw APIError.validation("`\(path).\(key)` must be a string.", field: "\(path).\(key)") }
            return text
        }

        let name = try string("name").map { try Validate.name($0, field: "\(path).name") }
        let objectType = try string("object_type").map { try ObjectTypeService.validateKey($0, field: "\(path).object_type") }
        let events = try parseEvents(member("events"), objectType: objectType, path: "\(path).events")
        let filters = try parseFilters(member("filters"), objectType: objectType, path: "\(path).filters")
        let changed = try parseChanged(member("changed"), objectType: objectType, events: events, path: "\(path).changed")
        let createdBy = try parseCreator(member("created_by"), path: "\(path).created_by")
        return Subscription(name: name, objectType: objectType, events: events, filters: filters, changed: changed, createdBy: createdBy)
    }

    /// A non-empty array of distinct strings, each read by `item`.
    static func strings(_ value: JSONValue?, path: String, example: String, _ item: (String, String) throws -> String) throws -> [String] {
        guard let value else { throw APIError.validation("`\(path)` is required, such as \(example).", field: path) }
        guard case .array(let values) = value, !values.isEmpty else {
            throw APIError.validation("`\(path)` must be a non-empty array of strings, such as \(example).", field: path)
        }
        var seen: Set<String> = []
        return try values.enumerated().map { index, value in
            let itemPath = "\(path)[\(index)]"
            guard let text = value.stringValue else {
                throw APIError.validation("`\(itemPath)` must be a string, not \(value.typeName).", field: itemPath)
            }
            let checked = try item(text, itemPath)
            guard seen.insert(checked).inserted else {
                throw APIError.validation("`\(itemPath)`: `\(checked)` is listed twice.", field: itemPath)
            }
            return checked
        }
    }

    static func parseEvents(_ value: JSONValue?, objectType: String?, path: String) throws -> [String] {
        if let objectType {
            return try strings(value, path: path, example: "[\"created\", \"updated\"]") { text, itemPath in
                guard verbs.contains(text) else {
                    throw APIError.validation(
                        "`\(itemPath)` must be created, updated or deleted (the events of `\(objectType)` records), not \"\(text.prefix(100))\"; "
                            + "to name full event types such as invoice.paid, leave out `object_type`.",
                        field: itemPath
                    )
                }
                return text
            }
        }
        let events = try strings(value, path: path, example: "[\"invoice.paid\", \"work_order.updated\"] or [\"*\"]") { text, itemPath in
            if text == "*" { return text }
            do {
                return try EventService.validateType(text)
            } catch {
                throw APIError.validation(
                    "`\(itemPath)` must be a full event type such as `invoice.paid` or `work_order.updated` (dotted lower-case words: a-z, 0-9, _), "
                        + "or \"*\" for every event; \"\(text.prefix(100))\" is not.",
                    field: itemPath
                )
            }
        }
        if events.count > 1, let star = events.firstIndex(of: "*") {
            throw APIError.validation("`\(path)[\(star)]`: \"*\" names every event, so it stands alone: [\"*\"].", field: "\(path)[\(star)]")
        }
        return events
    }

    static func requireObjectType(_ objectType: String?, path: String, what: String) throws {
        guard objectType == nil else { return }
        throw APIError.validation(
            "`\(path)` needs `object_type`: \(what) only the record events of one object type, so name it "
                + "(with `events` such as [\"updated\"]).",
            field: path
        )
    }

    /// Field keys → non-empty arrays of distinct scalar values; their fit to the field is checked later.
    static func parseFilters(_ value: JSONValue?, objectType: String?, path: String) throws -> [String: [JSONValue]] {
        guard let value else { return [:] }
        try requireObjectType(objectType, path: path, what: "filters match the fields of")
        guard case .object(let object) = value else {
            throw APIError.validation(
                "`\(path)` must be an object of field keys and value lists, such as {\"status\": [\"completed\"]}.",
                field: path
            )
        }
        var filters: [String: [JSONValue]] = [:]
        for key in object.keys.sorted() {
            let keyPath = "\(path).\(key.prefix(100))"
            guard case .array(let values) = object[key], !values.isEmpty else {
                throw APIError.validation("`\(keyPath)` must be a non-empty array of the values to match, such as [\"completed\"].", field: keyPath)
            }
            guard values.count <= SubscriptionList.maximumFilterValues else {
                throw APIError.validation(
                    "`\(keyPath)` lists at most \(SubscriptionList.maximumFilterValues) values, not \(values.count).",
                    field: keyPath
                )
            }
            for (index, item) in values.enumerated() {
                switch item {
                case .null, .array, .object:
                    throw APIError.validation(
                        "`\(keyPath)[\(index)]` must be a value of the field (a string, number or boolean), not \(item.typeName).",
                        field: "\(keyPath)[\(index)]"
                    )
                default: continue
                }
            }
            filters[key] = values
        }
        return filters
    }

    static func parseChanged(_ value: JSONValue?, objectType: String?, events: [String], path: String) throws -> [String] {
        guard let value else { return [] }
        try requireObjectType(objectType, path: path, what: "`changed` narrows")
        let changed = try strings(value, path: path, example: "[\"status\"]") { text, _ in text }
        guard events.contains("updated") else {
            throw APIError.validation("`\(path)` narrows `updated` events only; add \"updated\" to `events`, or leave `changed` out.", field: path)
        }
        return changed
    }

    static func parseCreator(_ value: JSONValue?, path: String) throws -> Creator? {
        guard let value else { return nil }
        guard case .object(let object) = value else {
            throw APIError.validation("`\(path)` must be an object such as {\"type\": \"api_token\", \"id\": \"tok_…\"}.", field: path)
        }
        if let unknown = object.keys.filter({ $0 != "type" && $0 != "id" }).sorted().first {
            throw APIError.validation(
                "Unknown field `\(unknown.prefix(100))` in `\(path)`. Known fields: id, type.",
                field: "\(path).\(unknown.prefix(100))"
            )
        }
        let types = creatorTypes.joined(separator: ", ")
        guard let type = object["type"]?.stringValue, creatorTypes.contains(type) else {
            let given = object["type"].map { $0.stringValue.map { "\"\($0.prefix(60))\"" } ?? $0.typeName } ?? "missing"
            throw APIError.validation("`\(path).type` must be one of: \(types); \(given) is not.", field: "\(path).type")
        }
        var id: String?
        if let value = object["id"], value != .null {
            guard let text = value.stringValue, !text.isEmpty, text.count <= 100,
                text.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 })
            else {
                throw APIError.validation("`\(path).id` must be the id of the \(type) that created the records.", field: "\(path).id")
            }
            if let prefix = ["user": "usr", "api_token": "tok", "app": "app"][type], !ID.isValid(text, prefix: prefix) {
                throw APIError.validation("`\(path).id` must be the id of a \(type) (\(prefix)_…), not \"\(text)\".", field: "\(path).id")
            }
            id = text
        }
        return Creator(type: type, id: id)
    }

    /// The subscription checked against the workspace's object types (see `SubscriptionList.validated`).
    func validated(against types: [String: ObjectType], path: String) throws -> Subscription {
        guard let objectType else { return self }
        guard let type = types[objectType] else {
            let known = types.keys.sorted().joined(separator: ", ")
            throw APIError.validation(
                "The workspace has no object type `\(objectType)`. "
                    + (known.isEmpty ? "It has no object types yet." : "Its object types: \(known)."),
                field: "\(path).object_type"
            )
        }
        func field(_ key: String, at fieldPath: String) throws -> DataField {
            guard let field = type.field(key) else {
                throw APIError.validation(
                    "`\(objectType)` has no field `\(key.prefix(100))`. Its fields: \(type.fields.map(\.key).joined(separator: ", ")).",
                    field: fieldPath
                )
            }
            return field
        }
        var result = self
        for (key, values) in filters {
            let keyPath = "\(path).filters.\(key)"
            let field = try field(key, at: keyPath)
            guard field.type != .json else {
                throw APIError.validation(
                    "`\(keyPath)`: `\(key)` is a json field, which filters cannot match; filter on another field.",
                    field: keyPath
                )
            }
            var seen: Set<JSONValue> = []
            result.filters[key] = try values.enumerated().map { index, value in
                let itemPath = "\(keyPath)[\(index)]"
                let stored = try RecordValidator.check(value, for: field, path: itemPath)
                guard seen.insert(FilterValue.key(stored)).inserted else {
                    throw APIError.validation("`\(itemPath)`: this value is listed twice.", field: itemPath)
                }
                return stored
            }
        }
        for (index, key) in changed.enumerated() { _ = try field(key, at: "\(path).changed[\(index)]") }
        return result
    }
}
