import Foundation

/// An endpoint's subscriptions made ready for matching: the fan-out asks it of every event for
/// every endpoint (thousands of events a second), so everything that does not depend on the event
/// is worked out once, here. Candidates are found by event type in one dictionary lookup; only
/// they look at the event's data.
public struct CompiledSubscriptions: Sendable {
    /// One subscription as the matcher uses it.
    struct Rule: Sendable {
        /// With an `object_type`: the event must be a record event of that type (a host event that
        /// happens to bear the name does not match).
        var objectType: String?
        /// Field key → values in `FilterValue.key` form; every key must match one.
        var filters: [(key: String, values: Set<JSONValue>)]
        var changed: Set<String>
        var createdBy: Subscription.Creator?
    }

    /// A rule reached through one event type; `checksChanged` when that type is the `updated` verb
    /// of a rule with `changed`.
    struct Candidate: Sendable {
        var rule: Rule
        var checksChanged: Bool
    }

    private var byType: [String: [Candidate]] = [:]
    private var everyType: [Candidate] = []
    /// Whether some subscription filters on field values, so matching reads `event.data`.
    public private(set) var readsRecordFields = false

    public init(_ list: SubscriptionList) {
        for subscription in list.subscriptions {
            let rule = Rule(
                objectType: subscription.objectType,
                filters: subscription.filters.keys.sorted().map { key in
                    (key, Set(subscription.filters[key, default: []].map(FilterValue.key)))
                },
                changed: Set(subscription.changed),
                createdBy: subscription.createdBy
            )
            if !rule.filters.isEmpty { readsRecordFields = true }
            if subscription.objectType == nil && subscription.events == ["*"] {
                everyType.append(Candidate(rule: rule, checksChanged: false))
                continue
            }
            for (verb, type) in zip(subscription.events, subscription.eventTypes) {
                let checksChanged = subscription.objectType != nil && verb == "updated" && !rule.changed.isEmpty
                byType[type, default: []].append(Candidate(rule: rule, checksChanged: checksChanged))
            }
        }
    }

    /// Whether any subscription names this event type (or every type): a cheap test before the
    /// event's data is even parsed. `matches` can still say no, for the narrowing members.
    public func mayMatch(type: String) -> Bool {
        !everyType.isEmpty || byType[type] != nil
    }

    /// Whether at least one subscription matches: the endpoint then gets one delivery. For a record
    /// event `event.data` must be the record as events show it (`{"fields": {…}, …}`: after the
    /// change, or as it was for a `deleted` event), as the log stores it.
    public func matches(_ event: Event) -> Bool {
        if let candidates = byType[event.type], candidates.contains(where: { $0.matches(event) }) { return true }
        return everyType.contains { $0.matches(event) }
    }
}

extension CompiledSubscriptions.Candidate {
    func matches(_ event: Event) -> Bool {
        if let objectType = rule.objectType, event.objectType != objectType { return false }
        if let creator = rule.createdBy {
            guard let createdBy = event.createdBy, createdBy.type == creator.type else { return false }
            if let id = creator.id, createdBy.id != id { return false }
        }
        if checksChanged {
            guard let changedFields = event.changedFields, changedFields.keys.contains(where: rule.changed.contains) else { return false }
        }
        if !rule.filters.isEmpty {
            guard case .object(let record) = event.data, case .object(let fields) = record["fields"] else { return false }
            for filter in rule.filters {
                guard let value = fields[filter.key], filter.values.contains(FilterValue.key(value)) else { return false }
            }
        }
        return true
    }
}

/// How filter values compare with record values: numbers by value (a record's `450.0` matches a
/// filter's `450`), everything else exactly.
enum FilterValue {
    static func key(_ value: JSONValue) -> JSONValue {
        if case .double(let number) = value, number == number.rounded(), abs(number) < 9.0e15 { return .int(Int64(number)) }
        return value
    }
}
