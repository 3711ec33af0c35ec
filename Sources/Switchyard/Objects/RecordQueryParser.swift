import ExtrasBase64
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
                    throw APIError.validation(
                        "`sort` must be created_at, updated_at or a field of `\(type.key)`, with - for descending.",
                        field: "sort"
                    )
                }
                query.sort = .field(field, descending: descending)
            }
        }
        guard let after else { return query }
        guard let paged = try? withCursor(after, query) else {
            throw APIError.validation("`after` must be the `next_after` of the previous page.", field: "after")
        }
        return paged
    }

    private struct BadCursor: Error {}

    /// The created_at sorts page after a record id. The others page after a keyset position:
    /// `k.` and base64url (no padding) of `[sort value, id]`, which a client passes back unread.
    private static func withCursor(_ after: String, _ query: RecordQuery) throws -> RecordQuery {
        var query = query
        let kind: RecordQuery.SortValue
        switch query.sort {
        case .created:
            guard ID.isValid(after, prefix: "rec") else { throw BadCursor() }
            query.after = after
            return query
        case .updated: kind = .time
        case .field(let field, _): kind = RecordQuery.SortValue(field)
        }
        guard after.hasPrefix("k."), let bytes = base64URLDecoded(after.dropFirst(2)),
            case .array(let items) = try JSONValue.parse(utf8: bytes), items.count == 2,
            case .string(let id) = items[1], ID.isValid(id, prefix: "rec")
        else { throw BadCursor() }
        // Each kind binds as its expression's type on both engines: text, DOUBLE PRECISION, integers.
        let value: SQLValue
        switch (kind, items[0]) {
        case (.time, .int(let ms)): value = .int(ms)
        case (.number, .int(let number)): value = .double(Double(number))
        case (.number, .double(let number)): value = .double(number)
        case (.boolean, .int(let flag)) where flag == 0 || flag == 1: value = .int(flag)
        case (.text, .string(let text)): value = .text(text)
        case (.number, .null), (.boolean, .null), (.text, .null): value = .null
        default: throw BadCursor()
        }
        query.position = RecordQuery.Position(value: value, id: id)
        return query
    }

    /// The cursor for the page after `rows`, when they fill the page.
    static func nextCursor(_ query: RecordQuery, _ rows: [SQLRow]) throws -> String? {
        guard rows.count == query.limit, let last = rows.last else { return nil }
        let id = try last.string("id")
        if case .created = query.sort { return id }
        let value: JSONValue
        switch last[ObjectStore.sortValueColumn] {
        case .null: value = .null
        case .int(let number): value = .int(number)
        case .double(let number): value = .double(number)
        case .text(let text): value = .string(text)
        case .blob(let bytes): value = .string(String(decoding: bytes, as: UTF8.self))
        }
        let json = JSONValue.array([value, .string(id)]).serialized()
        return "k." + base64URLEncoded(Array(json.utf8))
    }

    static func base64URLEncoded(_ bytes: [UInt8]) -> String {
        Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    /// Strict: only the text `base64URLEncoded` itself writes. The decoder also takes padding and
    /// leaves unused trailing bits unchecked, so several texts would decode to one cursor; the round
    /// trip refuses all but one.
    /// Not capped: a cursor holds its sort value whole (up to 64 KiB of text), as it must to compare exactly.
    static func base64URLDecoded(_ text: Substring) -> [UInt8]? {
        guard let bytes = try? Base64.decode(bytes: text.utf8, options: [.base64UrlAlphabet, .omitPaddingCharacter]) else { return nil }
        return base64URLEncoded(bytes) == text ? bytes : nil
    }

    /// A filter value in the form the field's column expression compares with.
    static func filterValue(_ text: String, field: DataField) throws -> SQLValue {
        let path = "filter[\(field.key)]"
        switch field.type {
        case .number, .integer:
            // Finite only: Double reads "nan", "inf" and "1e999" too, which no stored JSON number equals.
            guard let number = Double(text), number.isFinite else { throw APIError.validation("`\(path)` must be a number.", field: path) }
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
