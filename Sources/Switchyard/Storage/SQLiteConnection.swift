import GRDBSQLite
import NIOConcurrencyHelpers

/// An error SQLite reported, with its extended result code.
struct SQLiteError: Error, CustomStringConvertible {
    let code: CInt
    let message: String
    let sql: String?

    // Extended result codes: C macros that Swift does not import.
    static let uniqueConstraint: CInt = 2067  // SQLITE_CONSTRAINT_UNIQUE
    static let primaryKeyConstraint: CInt = 1555  // SQLITE_CONSTRAINT_PRIMARYKEY
    static let foreignKeyConstraint: CInt = 787  // SQLITE_CONSTRAINT_FOREIGNKEY

    var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " (in `\($0.prefix(200))`)" } ?? "")
    }
}

/// One SQLite connection through SQLite's C interface, with its prepared statements kept for its
/// life. Used by one thread at a time (the group-commit writer's queue, or a reader that took it
/// from `SQLiteReadConnections` under a lock), hence opened `NOMUTEX`.
///
/// Why not GRDB's `Database`: on the hot paths its machinery (a dispatch queue per connection,
/// a pool semaphore, rows decoded through generic `DatabaseValueConvertible`, statement
/// arguments built through key paths) measured at about a third of a small request.
final class SQLiteConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    /// Opens the database at `path`; `create` makes the file when it is missing.
    init(path: String, create: Bool) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0)
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: code, message: "cannot open \(path): \(message)", sql: nil)
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        // Waits out another process's write lock (`switchyard users create` beside a running
        // server) and a checkpoint that briefly locks readers out.
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs `sql` (one statement, no arguments) to its end.
    func run(_ sql: String) throws {
        _ = try query(sql, [])
    }

    /// Set by every statement that may write (`sqlite3_stmt_readonly`: not a `SELECT`, `BEGIN`,
    /// `SAVEPOINT` or the like), whether or not it succeeded; the writer clears it per unit.
    var wrote = false

    /// Runs one statement with `arguments` bound to its `?`s and returns its rows.
    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let statement = try prepare(sql)
        defer { sqlite3_reset(statement) }
        if sqlite3_stmt_readonly(statement) == 0 { wrote = true }
        try bind(statement, arguments, sql: sql)
        var count: Int32 = 0
        var columns: [String]?
        var rows: [SQLRow] = []
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return rows }
            guard code == SQLITE_ROW else { throw error(code, sql: sql) }
            // Counted after the first step: a cached statement of a table changed since is
            // prepared again inside it, with the table's columns of now.
            if columns == nil {
                count = sqlite3_column_count(statement)
                columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
            }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for index in 0..<count { values.append(Self.value(statement, index)) }
            rows.append(SQLRow(columns: columns ?? [], values: values))
        }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes64(handle)) }

    /// No transaction is open (SQLite may have rolled one back on its own after an error).
    var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    /// Finalizes the kept statements, e.g. after a schema change that leaves many unused.
    func forgetStatements() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
    }

    /// Statements kept per connection. List queries are built from the filters and sort a
    /// request names, so a client could otherwise make the set grow without end.
    static let maximumStatements = 500

    /// A prepared statement for `sql`, kept: preparing measured at a large share of a small
    /// query. Past `maximumStatements` the kept ones are dropped and the hot ones come back.
    private func prepare(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.maximumStatements { forgetStatements() }
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let code = sql.withCString { text in
            let code = sqlite3_prepare_v3(handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            // SQLite prepares the first statement only: refuse a second one rather than drop it
            // (a tail of blanks or comments prepares to no statement).
            if code == SQLITE_OK, let tail, tail.pointee != 0 {
                var next: OpaquePointer?
                sqlite3_prepare_v2(handle, tail, -1, &next, nil)
                if next != nil {
                    sqlite3_finalize(next)
                    sqlite3_finalize(statement)
                    statement = nil
                    return SQLITE_MISUSE
                }
            }
            return code
        }
        if code == SQLITE_MISUSE {
            throw SQLiteError(code: code, message: "more than one statement in one call", sql: sql)
        }
        guard code == SQLITE_OK, let statement else { throw error(code, sql: sql) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ statement: OpaquePointer, _ arguments: [SQLValue], sql: String) throws {
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard arguments.count == expected else {
            throw SQLiteError(code: SQLITE_RANGE, message: "\(arguments.count) arguments for \(expected) placeholders", sql: sql)
        }
        for (offset, argument) in arguments.enumerated() {
            let index = CInt(offset + 1)
            let code: CInt
            switch argument {
            case .null: code = sqlite3_bind_null(statement, index)
            case .int(let value): code = sqlite3_bind_int64(statement, index, value)
            case .double(let value): code = sqlite3_bind_double(statement, index, value)
            case .text(var value):
                code = value.withUTF8 { bytes in
                    bytes.withMemoryRebound(to: CChar.self) { text in
                        // A nil pointer would bind NULL, not an empty text.
                        guard let base = text.baseAddress else { return sqlite3_bind_text(statement, index, "", 0, Self.transient) }
                        return sqlite3_bind_text(statement, index, base, CInt(text.count), Self.transient)
                    }
                }
            case .blob(let value):
                code = value.withUnsafeBytes { bytes in
                    // A nil pointer would bind NULL, not an empty blob.
                    guard let base = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_zeroblob(statement, index, 0) }
                    return sqlite3_bind_blob(statement, index, base, CInt(bytes.count), Self.transient)
                }
            }
            guard code == SQLITE_OK else { throw error(code, sql: sql) }
        }
    }

    private static func value(_ statement: OpaquePointer, _ index: CInt) -> SQLValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER:
            return .int(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT:
            return .double(sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard let bytes = sqlite3_column_text(statement, index) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard let bytes = sqlite3_column_blob(statement, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default:
            return .null
        }
    }

    private func error(_ code: CInt, sql: String?) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// SQLite copies bound text and blobs (`SQLITE_TRANSIENT`), so Swift's buffers may go away.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// A transaction handle over a connection.
/// Errors come out as a body sees them on PostgreSQL too (`StorageError.uniqueViolation`…), so a
/// store's `catch` works on both engines.
struct SQLiteTx: SQLTx {
    let connection: SQLiteConnection
    var dialect: SQLDialect { .sqlite }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        _ = try run(sql, arguments)
        return connection.changes
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try run(sql, arguments)
    }

    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        _ = try run(sql, arguments)
    }

    func prefetch(_ sql: String, _ arguments: [SQLValue]) -> SQLPending {
        SQLPending(Result { try run(sql, arguments) })
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        do {
            return try connection.query(sql, arguments)
        } catch let error as SQLiteError {
            throw SQLiteEngine.map(error)
        }
    }
}

/// Read connections: reads are the hot path of the API (every request authenticates). Opened on
/// demand, one per concurrent read, and kept; `PRAGMA query_only` makes a write through a read
/// fail loudly.
final class SQLiteReadConnections: Sendable {
    private let path: String
    private let idle = NIOLockedValueBox<[SQLiteConnection]>([])

    init(path: String) {
        self.path = path
    }

    /// Runs `body` inside one read transaction, so every statement of it sees the same snapshot
    /// (and SQLite takes its WAL read lock once, not once per statement).
    func read<T>(_ body: (SQLTx) throws -> T) throws -> T {
        let connection = try idle.withLockedValue { $0.popLast() } ?? open()
        try connection.run("BEGIN")
        let result = Result { try body(SQLiteTx(connection: connection)) }
        // A connection whose transaction cannot end is dropped (closing it ends the transaction),
        // never handed to the next read.
        if (try? connection.run("COMMIT")) != nil {
            idle.withLockedValue { $0.append(connection) }
        }
        return try result.get()
    }

    private func open() throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: path, create: false)
        try connection.run("PRAGMA query_only = 1")
        return connection
    }

    /// Closes the idle connections; called once no read runs any more.
    func close() {
        idle.withLockedValue { $0.removeAll() }
    }
}
