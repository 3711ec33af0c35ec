import CLibPQ
import Foundation

/// One PostgreSQL connection through libpq, PostgreSQL's own C client, used by one thread at a
/// time: the thread that runs a transaction's body writes its statements to the socket and reads
/// the answers itself. Through postgres-nio (before issue 16) every statement crossed to an event
/// loop and back, and a `GET /v1/ping` cost about 450 µs of the server's CPU on PostgreSQL against
/// 60 µs on SQLite (perf, docs/operations.md).
///
/// The connection stays in libpq's pipeline mode: a statement is queued with a sync of its own (so a
/// failure is that statement's alone, as with one query at a time) and its answer read only when
/// someone needs it, so statements sent in a row cost one round trip. Each statement text is
/// prepared once per connection and then only bound and executed, so PostgreSQL parses and plans it
/// once instead of on every call.
final class PostgresConnection: @unchecked Sendable {
    // Safe: the pool hands a connection to one thread at a time, and every use is on that thread.
    private let handle: OpaquePointer
    private var statements: [String: String] = [:]
    private var nextName = 0
    private var commands: [Command] = []
    /// Whether statements were queued since the last sync.
    private var unsynced = false
    private var needsReset = false

    /// An answer to come: filled in when the results before it have been read.
    final class Slot: @unchecked Sendable {
        // Safe: written and read by the connection's one thread (a prefetch handle is read there too).
        var answer: Result<PostgresAnswer, Error>?
    }

    private enum Command {
        case prepare(key: String)
        case statement(Slot)
        case sync
    }

    /// Prepared statements kept per connection before they are all dropped (list queries vary with
    /// their filters).
    static let statementLimit = 1_000

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit { PQfinish(handle) }

    /// Opens a connection with libpq's connection parameters; the error is libpq's message.
    static func open(_ parameters: [(String, String)]) throws -> PostgresConnection {
        let keys = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            for pointer in keys + values { free(pointer) }
        }
        let handle = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { keyPointers in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                PQconnectdbParams(keyPointers.baseAddress, valuePointers.baseAddress, 0)
            }
        }
        guard let handle else { throw PostgresConnectError(message: "out of memory") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(handle)
            throw PostgresConnectError(message: message)
        }
        guard PQenterPipelineMode(handle) == 1 else {
            PQfinish(handle)
            throw PostgresConnectError(message: "libpq refused pipeline mode")
        }
        return PostgresConnection(handle: handle)
    }

    var isBroken: Bool { PQstatus(handle) != CONNECTION_OK }

    /// The COMMIT of the last read, not waited for (`PostgresRead`).
    var trailing: Slot?

    /// Whether statements wait in libpq's buffer for a sync (a read's COMMIT, queued to leave with
    /// the connection's next statements).
    var hasQueuedStatements: Bool { unsynced }

    /// When the last read queued its COMMIT.
    var trailingQueuedAt: ContinuousClock.Instant?

    /// Set when the connection must not be used again (the pool drops it).
    var discarded = false

    /// Whether that COMMIT failed (read it with `settle()` first); forgets it.
    func lastCommitFailed() -> Bool {
        defer { trailing = nil }
        if case .failure? = trailing?.answer { return true }
        return false
    }

    /// Whether the server's end is encrypted, for tests.
    var usesTLS: Bool { PQsslInUse(handle) == 1 }

    /// Queues a statement with its sync; the answer arrives in the slot once read (`wait`).
    func send(_ sql: String, _ arguments: [SQLValue]) -> Slot {
        let slot = Slot()
        let key = Self.key(sql, arguments)
        var name = statements[key]
        if name == nil, SQLHead.isPreparable(sql) {
            nextName += 1
            let fresh = "s\(nextName)"
            let types = arguments.map(\.postgresType)
            let sent = types.withUnsafeBufferPointer { PQsendPrepare(handle, fresh, sql, Int32(types.count), $0.baseAddress) }
            if sent == 1 {
                statements[key] = fresh
                commands.append(.prepare(key: key))
                name = fresh
            }
        } else if name == nil, SQLHead.changesSchema(sql) {
            // A prepared `SELECT *` of a changed table would fail: start again after the change.
            needsReset = true
        }
        let sent = Self.withParameters(arguments) { values, lengths, formats, types in
            if let name {
                return PQsendQueryPrepared(handle, name, Int32(arguments.count), values, lengths, formats, 0)
            }
            return PQsendQueryParams(handle, sql, Int32(arguments.count), types, values, lengths, formats, 0)
        }
        guard sent == 1 else {
            slot.answer = .failure(brokenError())
            return slot
        }
        commands.append(.statement(slot))
        unsynced = true
        return slot
    }

    /// Ends the statements queued so far with a sync and sends them: PostgreSQL answers them in
    /// one go (a statement that fails makes the rest of them fail too, as they would in the
    /// transaction anyway). Waiting syncs first; a statement nobody waits for (a read's COMMIT)
    /// needs `sync()` to leave.
    func sync() {
        guard unsynced else { return }
        unsynced = false
        guard PQpipelineSync(handle) == 1 else { return }
        commands.append(.sync)
        _ = PQflush(handle)
    }

    /// Writes out what is queued without a sync: PostgreSQL runs each statement as it arrives and
    /// keeps the answers until the next sync. The group-commit writer flushes after each unit, so
    /// PostgreSQL works on one unit while the next runs here, and a unit's statements leave in one
    /// packet: a flush per statement woke the backend once per statement, which cost it about a
    /// tenth of its CPU on record creates.
    func flush() {
        _ = PQflush(handle)
    }

    /// Reads answers in order until `slot` has its own.
    func wait(_ slot: Slot) -> Result<PostgresAnswer, Error> {
        if slot.answer == nil { sync() }
        while slot.answer == nil, !commands.isEmpty { readCommand() }
        return slot.answer ?? .failure(brokenError())
    }

    /// Reads every answer still to come (the COMMIT of the connection's last read).
    func settle() {
        sync()
        while !commands.isEmpty { readCommand() }
    }

    /// Drops the prepared statements when there are too many or the schema changed; called
    /// between transactions, never inside one.
    func resetIfNeeded() {
        guard needsReset || statements.count >= Self.statementLimit else { return }
        statements.removeAll()
        needsReset = false
        _ = wait(send("DEALLOCATE ALL", []))
    }

    private func readCommand() {
        let command = commands.removeFirst()
        switch command {
        case .prepare(let key):
            var failure: Error?
            while let result = PQgetResult(handle) {
                if PQresultStatus(result) == PGRES_FATAL_ERROR { failure = PostgresError(result) }
                PQclear(result)
            }
            if let failure {
                statements[key] = nil
                // The statement queued behind it is skipped: it fails with the prepare's error.
                if case .statement(let slot)? = commands.first { slot.answer = .failure(failure) }
            }
        case .statement(let slot):
            var answer: Result<PostgresAnswer, Error>?
            while let result = PQgetResult(handle) {
                if answer == nil { answer = Self.answer(result) }
                PQclear(result)
            }
            // "cached plan must not change result type": another process changed a table under a
            // prepared `SELECT *` (a rolling upgrade's migration). This statement fails; the next
            // transaction prepares everything afresh.
            if case .failure(let error as PostgresError)? = answer, error.sqlState == "0A000" { needsReset = true }
            if slot.answer == nil { slot.answer = answer ?? .failure(brokenError()) }
        case .sync:
            if let result = PQgetResult(handle) {
                PQclear(result)
            } else if isBroken {
                commands.removeAll()
            }
        }
        if isBroken {
            // Nothing more will come: fail what waits rather than block.
            for case .statement(let slot) in commands where slot.answer == nil { slot.answer = .failure(brokenError()) }
            commands.removeAll()
        }
    }

    private func brokenError() -> Error {
        StorageError.unavailable("the connection to PostgreSQL broke")
    }

    private static func answer(_ result: OpaquePointer) -> Result<PostgresAnswer, Error> {
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return Result { try PostgresAnswer(result) }
        case PGRES_PIPELINE_ABORTED:
            return .failure(PostgresError(sqlState: "25P02", message: "skipped: an earlier statement of the pipeline failed"))
        default:
            return .failure(PostgresError(result))
        }
    }

    private static func key(_ sql: String, _ arguments: [SQLValue]) -> String {
        var key = sql
        key.append("\u{0}")
        for argument in arguments { key.unicodeScalars.append(argument.typeMark) }
        return key
    }

    /// Arguments as libpq takes them: text for numbers and strings, binary for bytes, the type of
    /// each given so PostgreSQL reads them as the engines store them.
    private static func withParameters<T>(
        _ arguments: [SQLValue],
        _ body: (
            UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?, UnsafePointer<Oid>?
        ) -> T
    ) -> T {
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        let types = arguments.map(\.postgresType)
        for argument in arguments {
            switch argument {
            case .null:
                buffers.append(nil)
                lengths.append(0)
                formats.append(0)
            case .int(let value): append(String(value))
            case .double(let value): append(value.isFinite ? "\(value)" : value.isNaN ? "NaN" : value > 0 ? "Infinity" : "-Infinity")
            case .text(let value): append(value)
            case .blob(let bytes):
                // malloc, as strdup: every buffer is released with free.
                let buffer = malloc(max(bytes.count, 1))
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress, let buffer { memcpy(buffer, base, bytes.count) }
                }
                buffers.append(buffer?.assumingMemoryBound(to: CChar.self))
                lengths.append(Int32(bytes.count))
                formats.append(1)
            }
        }
        func append(_ text: String) {
            buffers.append(strdup(text))
            lengths.append(0)
            formats.append(0)
        }
        defer {
            for buffer in buffers { free(buffer) }
        }
        let values = buffers.map { UnsafePointer($0) }
        return values.withUnsafeBufferPointer { values in
            lengths.withUnsafeBufferPointer { lengths in
                formats.withUnsafeBufferPointer { formats in
                    types.withUnsafeBufferPointer { types in
                        body(values.baseAddress, lengths.baseAddress, formats.baseAddress, types.baseAddress)
                    }
                }
            }
        }
    }
}

/// A statement's rows (as `SQLRow`s), its command tag and the rows it changed.
struct PostgresAnswer {
    let rows: [SQLRow]
    let command: String
    let changed: Int

    init(_ result: OpaquePointer) throws {
        let count = Int(PQntuples(result))
        let fields = Int(PQnfields(result))
        let columns = (0..<fields).map { String(cString: PQfname(result, Int32($0))) }
        let types = (0..<fields).map { PQftype(result, Int32($0)) }
        var rows: [SQLRow] = []
        rows.reserveCapacity(count)
        for row in 0..<Int32(count) {
            var values: [SQLValue] = []
            values.reserveCapacity(fields)
            for field in 0..<fields {
                let column = Int32(field)
                if PQgetisnull(result, row, column) == 1 {
                    values.append(.null)
                    continue
                }
                let length = Int(PQgetlength(result, row, column))
                let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: length)
                values.append(try SQLValue(text: bytes, type: types[field]))
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        self.rows = rows
        command = String(cString: PQcmdStatus(result)).split(separator: " ").first.map(String.init) ?? ""
        changed = Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

/// What PostgreSQL refused, with its SQLSTATE; the message is the server's primary one (never the
/// statement's values, which PostgreSQL keeps to the detail).
struct PostgresError: Error, CustomStringConvertible {
    let sqlState: String
    let message: String
    var constraint: String?

    init(sqlState: String, message: String) {
        self.sqlState = sqlState
        self.message = message
    }

    init(_ result: OpaquePointer) {
        func field(_ code: Int32) -> String? { PQresultErrorField(result, code).map { String(cString: $0) } }
        sqlState = field(Int32(UInt8(ascii: "C"))) ?? "XX000"
        message = field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQresultErrorMessage(result))
        constraint = field(Int32(UInt8(ascii: "n")))
    }

    var description: String { "PostgreSQL \(sqlState): \(message)" }
}

/// libpq's reason a connection could not be opened.
struct PostgresConnectError: Error {
    let message: String
}

extension SQLValue {
    /// libpq's type of the argument; 0 lets PostgreSQL infer it (a NULL).
    var postgresType: Oid {
        switch self {
        case .null: return 0
        case .int: return 20
        case .double: return 701
        case .text: return 25
        case .blob: return 17
        }
    }

    var typeMark: Unicode.Scalar {
        switch self {
        case .null: return "n"
        case .int: return "i"
        case .double: return "d"
        case .text: return "t"
        case .blob: return "b"
        }
    }

    /// A column value in PostgreSQL's text format, read as the engines store values.
    init(text bytes: UnsafeRawBufferPointer, type: Oid) throws {
        switch type {
        case 20, 21, 23, 26:
            guard let value = Int64(String(decoding: bytes, as: UTF8.self)) else { throw StorageError.missingColumn("integer") }
            self = .int(value)
        case 700, 701, 1700:
            self = .double(Double(String(decoding: bytes, as: UTF8.self)) ?? 0)
        case 16:
            self = .int(bytes.first == UInt8(ascii: "t") ? 1 : 0)
        case 17:
            self = .blob(Self.unhex(bytes))
        default:
            self = .text(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// bytea's hex output (`\x4869`).
    private static func unhex(_ text: UnsafeRawBufferPointer) -> [UInt8] {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") else { return Array(text) }
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            default: return c - UInt8(ascii: "A") + 10
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity((text.count - 2) / 2)
        var index = 2
        while index + 1 < text.count {
            out.append(nibble(text[index]) << 4 | nibble(text[index + 1]))
            index += 2
        }
        return out
    }
}
