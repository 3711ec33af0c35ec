import Foundation

/// Checks record fields against their object type. Every problem names its field path
/// (`fields.status`), so a client knows what to fix.
struct RecordValidator {
    let type: ObjectType

    /// The fields a new record gets: defaults applied, required fields present, values checked.
    func validateCreate(_ input: [String: JSONValue]) throws -> [String: JSONValue] {
        try refuseUnknown(input)
        var fields: [String: JSONValue] = [:]
        for field in type.fields {
            var value = input[field.key] ?? .null
            if value == .null, let defaultValue = field.defaultValue { value = defaultValue }
            if value == .null {
                if field.required { throw missing(field) }
                continue
            }
            fields[field.key] = try Self.check(value, for: field)
        }
        return fields
    }

    /// The fields after a partial update; `null` clears a field that is not required.
    func validatePatch(_ input: [String: JSONValue], onto current: [String: JSONValue]) throws -> [String: JSONValue] {
        try refuseUnknown(input)
        var fields = current
        for (key, value) in input {
            guard let field = type.field(key) else { continue }
            if value == .null {
                if field.required { throw missing(field) }
                fields[key] = nil
            } else {
                fields[key] = try Self.check(value, for: field)
            }
        }
        return fields
    }

    private func refuseUnknown(_ input: [String: JSONValue]) throws {
        if let unknown = input.keys.filter({ type.field($0) == nil }).sorted().first {
            throw APIError.validation(
                "`\(type.key)` has no field `\(unknown)`. Its fields: \(type.fields.map(\.key).joined(separator: ", ")).",
                field: "fields.\(unknown)"
            )
        }
    }

    private func missing(_ field: DataField) -> APIError {
        APIError.validation("`fields.\(field.key)` is required.", field: "fields.\(field.key)")
    }

    /// The value in its stored form, or a 422 saying what the field accepts.
    static func check(_ value: JSONValue, for field: DataField, path: String? = nil) throws -> JSONValue {
        let path = path ?? "fields.\(field.key)"
        func refuse(_ expected: String) -> APIError {
            APIError.validation("`\(path)` must be \(expected), not \(value.typeName).", field: path)
        }
        switch field.type {
        case .text:
            guard case .string(let text) = value else { throw refuse("a string") }
            guard text.utf8.count <= 65_536 else {
                throw APIError.validation("`\(path)` must be at most 64 KiB of text.", field: path)
            }
            return value
        case .number:
            switch value {
            case .int, .double: return value
            default: throw refuse("a number")
            }
        case .integer:
            switch value {
            case .int: return value
            case .double(let d) where d == d.rounded() && abs(d) < 9.0e15: return .int(Int64(d))
            default: throw refuse("a whole number")
            }
        case .boolean:
            guard case .bool = value else { throw refuse("true or false") }
            return value
        case .date:
            guard case .string(let text) = value, isDate(text) else { throw refuse("a date such as 2026-01-31") }
            return value
        case .datetime:
            guard case .string(let text) = value, let date = RFC3339.parse(text) else {
                throw refuse("an RFC 3339 time such as 2026-01-31T09:30:00Z")
            }
            return .string(RFC3339.format(date))
        case .enum:
            let options = field.options ?? []
            guard case .string(let text) = value else { throw refuse("one of: \(options.joined(separator: ", "))") }
            guard options.contains(text) else {
                throw APIError.validation(
                    "`\(path)` must be one of: \(options.joined(separator: ", ")); \"\(text.prefix(100))\" is not.",
                    field: path
                )
            }
            return value
        case .email:
            guard case .string(let text) = value else { throw refuse("an email address") }
            return .string(try Validate.email(text, field: path))
        case .url:
            guard case .string(let text) = value, let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", url.host?.isEmpty == false
            else { throw refuse("an http or https URL") }
            return value
        case .reference:
            guard case .string(let text) = value, ID.isValid(text, prefix: "rec") else {
                throw refuse("the id of a \(field.reference ?? "") record (rec_…)")
            }
            return value
        case .json:
            return value
        }
    }

    static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        guard text.count == 10, parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            parts[0].count == 4, parts[1].count == 2, parts[2].count == 2
        else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let components = DateComponents(year: year, month: month, day: day)
        guard let date = calendar.date(from: components) else { return false }
        return calendar.dateComponents([.year, .month, .day], from: date) == DateComponents(year: year, month: month, day: day)
    }
}
