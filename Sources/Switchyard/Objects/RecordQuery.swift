import Foundation

/// What a record list asks for.
struct RecordQuery: Sendable {
    enum Sort: Sendable {
        case created(descending: Bool)
        case updated(descending: Bool)
        case field(DataField, descending: Bool)
    }

    /// What a sort orders by, so what a cursor's value must be: `updated_at` milliseconds,
    /// a number (DOUBLE PRECISION), a boolean as 1/0, or text.
    enum SortValue: Sendable {
        case time, number, boolean, text

        init(_ field: DataField) {
            switch field.type {
            case .number, .integer: self = .number
            case .boolean: self = .boolean
            default: self = .text
            }
        }
    }

    struct Filter: Sendable {
        var field: DataField
        var values: [SQLValue]
    }

    /// The last row of the previous page, for the sorts other than created_at: its sort value as
    /// the database gave it (`.null` for unset) and its id.
    struct Position: Sendable {
        var value: SQLValue
        var id: String
    }

    var filters: [Filter] = []
    var sort: Sort = .created(descending: false)
    var limit = 50
    /// The last record id seen, for the created-order sorts.
    var after: String?
    var position: Position?
}
