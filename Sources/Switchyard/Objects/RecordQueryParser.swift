import Foundation

/// Turns list parameters into a `RecordQuery`, checking each against the object type.
enum RecordQueryParser {
    static func parse(type: ObjectType, filters: [(String, String)], sort: String?, after: String?) throws -> RecordQuery {
        var query = RecordQuery()
        var grouped: [String: [String]] = [:]
        var order: [String] = []
        for (key, value) in filters {
            if grouped[key] == nil { order.append(key) }
            grouped[key, default: []].append(value)
        }
        for key in order {
            guard let field = type.field(key) else {
                throw APIError.validation("`filter[\(key.prefix(63))]`: `\(type.key)` has no such field.", field: "filter[\(key.prefix(63))]")
            }
            guard field.type != .json else {
                throw APIError.validation("`filter[\(key)]`: json fields cannot be filtered.", field: "filter[\(key)]")
            }
            // Bounded: every list length is a statement of its own in the engines' statement caches.
            guard (grouped[key] ?? []).count <= 50 else {
                throw APIError.validation("`filter[\(key)]` takes at most 50 values.", field: "filter[\(key)]")
            }
            let values = try (grouped[key] ?? []).map { try filterValue($0, field: field) }
            query.filters.append(RecordQuery.Filter(field: field, values: values))
        }
        if let sort {
            let descending = sort.hasPrefix("-")
            let name = descending ? String(sort.dropFirst()) : sort
            switch name {
            case "created_at": query.sort = .created(descending: descending)
            case "updated_at": query.sort = .updated(descending: descending)
            default:
                guard let field = type.field(name), field.type != .json else {
                    throw APIError.validation("`sort` must be created_at, updated_at or a field of `\(type.key)`, with - for descending.", field: "sort")
                }
                query.sort = .field(field, descending: descending)
            }
        }
        if let after {
            if case .created = query.sort {
                guard ID.isValid(after, prefix: "rec") else {
                    throw APIError.validation("`after` must be the `next_after` of the previous page.", field: "after")
                }
                query.after = after
            } else {
                guard after.hasPrefix("o."), let offset = Int(after.dropFirst(2)), offset >= 0 else {
                    throw APIError.validation("`after` must be the `next_after` of the previous page.", field: "after")
                }
                query.offset = offset
            }
        }
        return query
    }

    static func nextCursor(_ query: RecordQuery, _ ids: [String]) -> String? {
        guard ids.count == query.limit, let last = ids.last else { return nil }
        if case .created = query.sort { return last }
        return "o.\(query.offset + ids.count)"
    }

    /// A filter value in the form the field's column expression compares with.
    static func filterValue(_ text: String, field: DataField) throws -> SQLValue {
        let path = "filter[\(field.key)]"
        switch field.type {
        case .number, .integer:
            guard let number = Double(text) else { throw APIError.validation("`\(path)` must be a number.", field: path) }
            return .double(number)
        case .boolean:
            guard text == "true" || text == "false" else { throw APIError.validation("`\(path)` must be true or false.", field: path) }
            return .int(text == "true" ? 1 : 0)
        case .datetime:
            guard let date = RFC3339.parse(text) else { throw APIError.validation("`\(path)` must be an RFC 3339 time.", field: path) }
            return .text(RFC3339.format(date))
        case .email:
            return .text(text.lowercased())
        case .enum where !(field.options ?? []).contains(text):
            throw APIError.validation("`\(path)` must be one of: \((field.options ?? []).joined(separator: ", ")).", field: path)
        default:
            return .text(text)
        }
    }
}
