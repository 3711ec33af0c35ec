import Foundation

@testable import Switchyard

/// The properties the record-query parser must hold for any list parameters at all, against a
/// type with a field of every kind.
///
/// An input is text, one parameter a line: `sort=…`, `after=…`, `cursor=<JSON>` (an `after` of
/// `k.` and that JSON in base64url, so mutations reach inside a cursor), `row=<JSON>` (the sort
/// value of a last row, for the cursor round trip), and `<field>=<value>` for a filter.
public enum QueryFuzzCheck {
    struct Input {
        var filters: [(String, String)] = []
        var sort: String?
        var after: String?
        var row: JSONValue?
    }

    static func input(_ bytes: [UInt8]) -> Input {
        var input = Input()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let (name, value) = line.firstIndex(of: "=").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) } ?? (String(line), "")
            switch name {
            case "sort": input.sort = value
            case "after": input.after = value
            case "cursor": input.after = "k." + RecordQueryParser.base64URLEncoded(Array(value.utf8))
            case "row": input.row = try? JSONValue.parse(text: value)
            default: input.filters.append((name, value))
            }
        }
        return input
    }

    public static let type = ObjectType(
        id: "ot_fuzzed",
        workspaceId: "ws_fuzzed",
        key: "fuzzed",
        name: "Fuzzed",
        description: nil,
        fields: FieldType.allCases.map { kind in
            DataField(
                key: kind.rawValue,
                label: kind.rawValue,
                type: kind,
                required: false,
                defaultValue: nil,
                unique: false,
                options: kind == .enum ? ["open", "closed", ""] : nil,
                reference: kind == .reference ? "fuzzed" : nil
            )
        },
        locked: false,
        createdAt: Date(timeIntervalSince1970: 0),
        updatedAt: Date(timeIntervalSince1970: 0)
    )

    /// What is wrong with how this input was parsed; empty when every property holds.
    public static func problems(_ bytes: [UInt8]) -> [String] {
        let input = input(bytes)
        let query: RecordQuery
        do {
            query = try RecordQueryParser.parse(type: type, filters: input.filters, sort: input.sort, after: input.after)
        } catch let error as APIError {
            return (400..<500).contains(error.status.code) ? [] : ["answered \(error), not a 4xx"]
        } catch {
            return ["threw \(error), not an APIError"]
        }
        return queryProblems(query, input) + cursorProblems(query, input)
    }

    /// A query only ever holds what the type allows.
    static func queryProblems(_ query: RecordQuery, _ input: Input) -> [String] {
        var problems: [String] = []
        for filter in query.filters {
            if type.field(filter.field.key) == nil || filter.field.type == .json { problems.append("filters on \(filter.field.key)") }
            if filter.values.isEmpty || filter.values.count > 50 { problems.append("\(filter.values.count) values for \(filter.field.key)") }
            for case .double(let number) in filter.values where !number.isFinite {
                problems.append("filter[\(filter.field.key)] holds \(number), which no JSON number equals")
            }
        }
        if case .field(let field, _) = query.sort, field.type == .json { problems.append("sorts by a json field") }
        switch (query.sort, input.after) {
        case (_, nil): if query.after != nil || query.position != nil { problems.append("pages with no `after`") }
        case (.created, let after?): if query.after != after || !ID.isValid(after, prefix: "rec") { problems.append("pages after \(after)") }
        case (_, .some): if query.position == nil { problems.append("took `after` without a position") }
        }
        return problems
    }

    /// With a full page, nextCursor's cursor parses back, with the same sort and filters, to
    /// the last row's sort value (as the column expression binds it) and id.
    static func cursorProblems(_ query: RecordQuery, _ input: Input) -> [String] {
        guard let kind = sortKind(query.sort), let row = input.row, let (column, expected) = sortColumn(row, kind) else { return [] }
        var full = query
        full.limit = 1
        let id = "rec_01J00000000000000000000000"
        let cursor: String?
        do {
            cursor = try RecordQueryParser.nextCursor(full, [SQLRow(columns: ["id", ObjectStore.sortValueColumn], values: [.text(id), column])])
        } catch {
            return ["nextCursor threw \(error)"]
        }
        guard let cursor else { return ["no cursor for a full page"] }
        guard let paged = try? RecordQueryParser.parse(type: type, filters: input.filters, sort: input.sort, after: cursor) else {
            return ["refused its own cursor \(cursor) for \(column)"]
        }
        guard let position = paged.position, position.id == id, sameBytes(position.value, expected) else {
            return ["cursor \(cursor) for \(column) read back as \(String(describing: paged.position))"]
        }
        return []
    }

    static func sortKind(_ sort: RecordQuery.Sort) -> RecordQuery.SortValue? {
        switch sort {
        case .created: return nil
        case .updated: return .time
        case .field(let field, _): return RecordQuery.SortValue(field)
        }
    }

    /// The sort column a row of this kind can hold, and what its cursor must bind: numbers as
    /// DOUBLE PRECISION, the rest as read. Nil for a value no such column holds.
    static func sortColumn(_ row: JSONValue, _ kind: RecordQuery.SortValue) -> (SQLValue, SQLValue)? {
        switch (kind, row) {
        case (.time, .int(let ms)): return (.int(ms), .int(ms))
        case (.number, .int(let number)): return (.int(number), .double(Double(number)))
        case (.number, .double(let number)): return (.double(number), .double(number))
        case (.boolean, .bool(let flag)): return (.int(flag ? 1 : 0), .int(flag ? 1 : 0))
        case (.boolean, .int(let flag)) where flag == 0 || flag == 1: return (.int(flag), .int(flag))
        case (.text, .string(let text)): return (.text(text), .text(text))
        case (.number, .null), (.boolean, .null), (.text, .null): return (.null, .null)
        default: return nil
        }
    }

    /// Texts compared byte for byte, as the database compares them (String's == would call
    /// canonically equivalent texts equal).
    static func sameBytes(_ left: SQLValue, _ right: SQLValue) -> Bool {
        if case .text(let a) = left, case .text(let b) = right { return a.utf8.elementsEqual(b.utf8) }
        return left == right
    }
}
