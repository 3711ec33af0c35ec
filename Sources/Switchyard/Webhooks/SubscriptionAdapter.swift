// TEMPORARY: stands in for the subscriptions helper's Subscription.swift until it is merged.
import Foundation

enum EndpointSubscriptions {
    /// Validates the request's subscriptions in the workspace; answers their canonical JSON.
    static func validate(_ tx: SQLTx, _ value: JSONValue, workspaceID: String) throws -> JSONValue {
        guard case .array(let items) = value else { throw APIError.validation("`subscriptions` must be an array.", field: "subscriptions") }
        for (index, item) in items.enumerated() {
            guard case .object(let object) = item, case .array(let events)? = object["events"], !events.isEmpty else {
                throw APIError.validation("`subscriptions[\(index)].events` is required.", field: "subscriptions[\(index)].events")
            }
        }
        return value
    }

    /// The matcher fan-out runs for every event.
    static func compile(_ stored: JSONValue) -> CompiledSubscriptions {
        var names = Set<String>()
        var all = false
        if case .array(let items) = stored {
            for item in items {
                guard case .object(let object) = item, case .array(let events)? = object["events"] else { continue }
                let objectType = object["object_type"]?.stringValue
                for event in events.compactMap(\.stringValue) {
                    if event == "*" { all = true }
                    names.insert(objectType.map { "\($0).\(event)" } ?? event)
                }
            }
        }
        return CompiledSubscriptions(all: all, names: names)
    }
}

struct CompiledSubscriptions: Sendable {
    var all: Bool
    var names: Set<String>
    func matches(_ event: Event) -> Bool { all || names.contains(event.type) }
}
