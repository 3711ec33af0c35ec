import GRDB
import GRDBSQLite
import NIOConcurrencyHelpers

/// Read connections to the SQLite file, used straight through SQLite's C interface.
///
/// Reads are the hot path of the API (every request authenticates), and GRDB's read machinery
/// (pool semaphore, a dispatch queue per connection, row decoding through generic
/// `DatabaseValueConvertible`) measured at a large part of a small read. Writes keep GRDB
/// (`GroupCommitWriter`); these connections only ever read (`PRAGMA query_only`).
final class SQLiteReadConnections: Sendable {
    private let path: String
    private let idle = NIOLockedValueBox<[SQLiteReadConnection]>([])

    init(path: String) {
        self.path = path
    }

    /// Runs `body` on an idle connection (opening one when none is idle) inside one read
    /// transaction, so every statement of the body sees the same snapshot.
    func read<T>(_ body: (SQLTx) throws -> T) throws -> T {
        let connection = try idle.withLockedValue { $0.popLast() } ?? SQLiteReadConnection(path: path)
        try connection.step(connection.prepare("BEGIN"))
        let result = Result { try body(SQLiteReadTx(connection: connection)) }
        // A connection whose transaction cannot end is dropped (closing it ends the transaction),
        // never handed to the next read.
        if (try? connection.step(connection.prepare("COMMIT"))) != nil {
            idle.withLockedValue { $0.append(connection) }
        }
        return try result.get()
    }

    /// Closes the idle connections; called once no read runs any more.
    func close() {
        idle.withLockedValue { $0.removeAll() }
    }
}

/// One `sqlite3` connection and its prepared statements. Used by one thread at a time (it is
/// handed out by `SQLiteReadConnections` under a lock), hence opened `NOMUTEX`.
final class SQLiteReadConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws {
        var handle: OpaquePointer?
        let code = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close_v2(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
        self.handle = handle
        // The same patience as the writer's connection (a checkpoint can briefly lock readers out).
        sqlite3_busy_timeout(handle, 10_000)
        sqlite3_extended_result_codes(handle, 1)
        try step(prepare("PRAGMA query_only = 1"))
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// A prepared statement for `sql`, kept for the connection's life: preparing measured at a
    /// large share of a small query.
    func prepare(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error(code, sql: sql) }
        statements[sql] = statement
        return statement
    }

    func bind(_ statement: OpaquePointer, _ arguments: [SQLValue], sql: String) throws {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (offset, argument) in arguments.enumerated() {
            let index = CInt(offset + 1)
            let code: CInt
            switch argument {
            case .null: code = sqlite3_bind_null(statement, index)
            case .int(let value): code = sqlite3_bind_int64(statement, index, value)
            case .double(let value): code = sqlite3_bind_double(statement, index, value)
            case .text(var value):
                code = value.withUTF8 { bytes in
                    sqlite3_bind_text(statement, index, bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                                      CInt(bytes.count), SQLiteReadConnection.transient)
                }
            case .blob(let value):
                code = value.withUnsafeBytes { bytes in
                    // A nil pointer would bind NULL, not an empty blob.
                    guard let base = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_zeroblob(statement, index, 0) }
                    return sqlite3_bind_blob(statement, index, base, CInt(bytes.count), SQLiteReadConnection.transient)
                }
            }
            guard code == SQLITE_OK else { throw error(code, sql: sql) }
        }
    }

    /// Steps `statement` to its end, for statements without rows.
    func step(_ statement: OpaquePointer) throws {
        sqlite3_reset(statement)
        let code = sqlite3_step(statement)
        guard code == SQLITE_DONE || code == SQLITE_ROW else { throw error(code, sql: nil) }
        sqlite3_reset(statement)
    }

    func rows(_ statement: OpaquePointer, sql: String) throws -> [SQLRow] {
        defer { sqlite3_reset(statement) }
        let count = sqlite3_column_count(statement)
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
        var rows: [SQLRow] = []
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return rows }
            guard code == SQLITE_ROW else { throw error(code, sql: sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for index in 0..<count {
                values.append(Self.value(statement, index))
            }
            rows.append(SQLRow(columns: columns, values: values))
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

    private func error(_ code: CInt, sql: String?) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// SQLite copies bound text and blobs (`SQLITE_TRANSIENT`), so Swift's buffers may go away.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// The `SQLTx` of a read: statements only read (`query_only` makes a write fail loudly).
struct SQLiteReadTx: SQLTx {
    let connection: SQLiteReadConnection
    var dialect: SQLDialect { .sqlite }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        let statement = try connection.prepare(sql)
        try connection.bind(statement, arguments, sql: sql)
        _ = try connection.rows(statement, sql: sql)
        return 0
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let statement = try connection.prepare(sql)
        try connection.bind(statement, arguments, sql: sql)
        return try connection.rows(statement, sql: sql)
    }
}
