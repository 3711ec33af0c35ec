import Foundation

/// A value bound to or read from a statement. Booleans are stored as integers 0/1 and times as
/// integer milliseconds since 1970 on both engines, so the same SQL reads the same on each.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// Converts Swift values into statement arguments.
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .int(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .double(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .int(self ? 1 : 0) } }
extension Date: SQLBindable { public var sqlValue: SQLValue { .int(self.millisecondsSince1970) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue {
        switch self {
        case .some(let value): return value.sqlValue
        case .none: return .null
        }
    }
}

extension Date {
    public var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
    public init(millisecondsSince1970 ms: Int64) { self.init(timeIntervalSince1970: Double(ms) / 1000) }
}

/// One row of a result, with its values in column order.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(_ column: String) -> SQLValue {
        guard let index = columns.firstIndex(of: column) else { return .null }
        return values[index]
    }

    public func string(_ column: String) throws -> String {
        guard let value = optionalString(column) else { throw StorageError.missingColumn(column) }
        return value
    }

    public func optionalString(_ column: String) -> String? {
        switch self[column] {
        case .text(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .null: return nil
        }
    }

    public func int(_ column: String) throws -> Int64 {
        guard let value = optionalInt(column) else { throw StorageError.missingColumn(column) }
        return value
    }

    public func optionalInt(_ column: String) -> Int64? {
        switch self[column] {
        case .int(let i): return i
        case .double(let d): return Int64(d)
        case .text(let s): return Int64(s)
        default: return nil
        }
    }

    public func bool(_ column: String) -> Bool { (optionalInt(column) ?? 0) != 0 }

    public func date(_ column: String) throws -> Date { Date(millisecondsSince1970: try int(column)) }

    public func optionalDate(_ column: String) -> Date? { optionalInt(column).map(Date.init(millisecondsSince1970:)) }

    public func blob(_ column: String) throws -> [UInt8] {
        guard let value = optionalBlob(column) else { throw StorageError.missingColumn(column) }
        return value
    }

    public func optionalBlob(_ column: String) -> [UInt8]? {
        if case .blob(let bytes) = self[column] { return bytes }
        return nil
    }

    public func optionalDouble(_ column: String) -> Double? {
        switch self[column] {
        case .double(let d): return d
        case .int(let i): return Double(i)
        case .text(let s): return Double(s)
        default: return nil
        }
    }
}

/// The engine a transaction runs on, for the few statements that differ between them.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres

    /// Appended to a `SELECT` that claims jobs: PostgreSQL lets other processes skip claimed rows;
    /// SQLite has a single writer, so the claim is already exclusive.
    public var skipLocked: String { self == .postgres ? " FOR UPDATE SKIP LOCKED" : "" }

    /// Appended to a `SELECT` that reads a row before changing it: on PostgreSQL a concurrent
    /// writer waits; SQLite's single writer already serialises.
    public var forUpdate: String { self == .postgres ? " FOR UPDATE" : "" }

    /// Appended to a `SELECT` that reads a row another write must not change meanwhile (a record
    /// write reading its object type): on PostgreSQL a change to that row waits.
    public var forShare: String { self == .postgres ? " FOR SHARE" : "" }

    /// The position an event is written at. On PostgreSQL concurrent transactions commit out of id
    /// order, so an event is placed by its transaction's id, and `visibleEvents` hides events of
    /// transactions that may still be followed by an older one's: a reader that goes on `after`
    /// the last event it saw never skips one. SQLite's single writer commits in id order.
    public var eventPosition: String { self == .postgres ? "pg_current_xact_id()::text::bigint" : "0" }

    /// ` AND column LIKE ? ESCAPE '\'` and its argument: the rows whose `column` (kept lowercased)
    /// contains `search` in any case, LIKE's wildcards in the search matched as themselves.
    public static func contains(_ column: String, _ search: String) -> (sql: String, argument: SQLValue) {
        let escaped = search.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        return (" AND \(column) LIKE ? ESCAPE '\\'", .text("%\(escaped)%"))
    }

    public var visibleEvents: String {
        self == .postgres ? " AND position < pg_snapshot_xmin(pg_current_snapshot())::text::bigint" : ""
    }

    /// A JSON object key of a TEXT column, as text (strings, numbers as written). `key` must be a
    /// validated identifier: it is inlined.
    public func jsonText(_ column: String, _ key: String) -> String {
        self == .postgres ? "(\(column)::jsonb ->> '\(key)')" : "json_extract(\(column), '$.\(key)')"
    }

    /// The same as a number, for comparing and sorting numerically.
    public func jsonNumber(_ column: String, _ key: String) -> String {
        "CAST(\(jsonText(column, key)) AS DOUBLE PRECISION)"
    }

    /// The same as 1/0 for JSON true/false.
    public func jsonBool(_ column: String, _ key: String) -> String {
        self == .postgres
            ? "(CASE (\(column)::jsonb ->> '\(key)') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
            : "json_extract(\(column), '$.\(key)')"
    }

    /// The column with one key set to a JSON value given as the next `?` argument (JSON text),
    /// where the key is absent: for filling a new required field's default into existing records.
    public func jsonSetIfAbsent(_ column: String, _ key: String) -> String {
        self == .postgres
            ? "(CASE WHEN (\(column)::jsonb -> '\(key)') IS NOT NULL THEN \(column) ELSE jsonb_set(\(column)::jsonb, '{\(key)}', CAST(? AS jsonb))::text END)"
            : "json_insert(\(column), '$.\(key)', json(?))"
    }

    /// Whether a JSON object column has a key, as 1/0. `key` must be a validated identifier: it is
    /// inlined. PostgreSQL's `?` operator is written `??` (see `PostgresPlaceholders`).
    public func jsonHasKey(_ column: String, _ key: String) -> String {
        self == .postgres ? "(\(column)::jsonb ?? '\(key)')" : "(json_type(\(column), '$.\(key)') IS NOT NULL)"
    }

    /// The column without one key, for removing a data field from every record.
    public func jsonRemove(_ column: String, _ key: String) -> String {
        self == .postgres ? "(\(column)::jsonb - '\(key)')::text" : "json_remove(\(column), '$.\(key)')"
    }
}

/// A transaction handle: plain synchronous SQL with `?` placeholders. Stores are written against
/// this, once, for both engines.
public protocol SQLTx {
    var dialect: SQLDialect { get }
    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
    /// Runs a statement whose answer the body does not need (an insert of an event or an activity
    /// entry). PostgreSQL queues it without waiting: statements sent in a row, and the next one
    /// waited for, share one round trip and one packet. Its failure is thrown by the next waited
    /// statement, or fails the transaction at its end, so it must not be one whose error the body
    /// catches. SQLite runs it at once.
    func send(_ sql: String, _ arguments: [SQLValue]) throws
    /// Sends a query now and reads its rows later, so it shares a round trip with the statements
    /// run before its rows are read (a hot read sends its record's query before the caller's
    /// credentials are looked up). SQLite runs it at once.
    func prefetch(_ sql: String, _ arguments: [SQLValue]) -> SQLPending
}

/// The rows of a query sent with `prefetch`, read once.
public struct SQLPending: Sendable {
    private let answer: @Sendable () throws -> [SQLRow]

    init(_ answer: @escaping @Sendable () throws -> [SQLRow]) { self.answer = answer }

    /// Ready rows: what SQLite's prefetch gives, the query having run already.
    init(_ result: Result<[SQLRow], Error>) { self.answer = { try result.get() } }

    public func rows() throws -> [SQLRow] { try answer() }
    public func one() throws -> SQLRow? { try answer().first }

    /// The first row, read as a store reads it.
    public func one<T>(_ parse: (SQLRow) throws -> T) throws -> T? { try answer().first.map(parse) }
}

// Closures rather than key paths in these maps: a key path through an existential is built at run
// time on every call, which profiled at a tenth of a record write.
extension SQLTx {
    @discardableResult
    public func execute(_ sql: String, _ arguments: SQLBindable...) throws -> Int {
        try execute(sql, arguments.map { $0.sqlValue })
    }

    public func query(_ sql: String, _ arguments: SQLBindable...) throws -> [SQLRow] {
        try query(sql, arguments.map { $0.sqlValue })
    }

    public func queryOne(_ sql: String, _ arguments: SQLBindable...) throws -> SQLRow? {
        try query(sql, arguments.map { $0.sqlValue }).first
    }

    public func send(_ sql: String, _ arguments: SQLBindable...) throws {
        try send(sql, arguments.map { $0.sqlValue })
    }

    public func prefetch(_ sql: String, _ arguments: SQLBindable...) -> SQLPending {
        prefetch(sql, arguments.map { $0.sqlValue })
    }

    /// `?, ?, ?` for an `IN (...)` list of `count` values.
    public func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}

public enum StorageError: Error, CustomStringConvertible, Sendable {
    /// A unique constraint refused the row; `detail` names the constraint or columns, never values.
    case uniqueViolation(String)
    case foreignKeyViolation(String)
    case missingColumn(String)
    case unavailable(String)
    case invalidURL(String)

    public var description: String {
        switch self {
        case .uniqueViolation(let d): return "unique constraint failed: \(d)"
        case .foreignKeyViolation(let d): return "foreign key constraint failed: \(d)"
        case .missingColumn(let c): return "column \(c) is missing or null"
        case .unavailable(let d): return "database unavailable: \(d)"
        case .invalidURL(let d): return "invalid database URL: \(d)"
        }
    }
}
