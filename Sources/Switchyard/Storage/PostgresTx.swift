import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A transaction's statements on one connection, from one thread. A waited statement blocks the
/// thread until its answer; `send` and `prefetch` only queue theirs, and postgres-nio writes them
/// in order, so everything queued before a wait reaches PostgreSQL together and costs one round
/// trip (PostgreSQL answers each in turn).
struct PostgresTx: SQLTx {
    let connection: PostgresConnection
    let logger: Logger
    /// The statements sent without waiting, not yet checked.
    let sent: SentStatements
    var dialect: SQLDialect { .postgres }

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
        self.sent = SentStatements()
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        let result = try wait(start(sql, arguments))
        return result.metadata.rows ?? 0
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try Self.rows(try wait(start(sql, arguments)))
    }

    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        sent.append(start(sql, arguments))
    }

    func prefetch(_ sql: String, _ arguments: [SQLValue]) -> SQLPending {
        let answer = start(sql, arguments)
        let sent = sent
        return SQLPending {
            let result: PostgresQueryResult
            do {
                result = try answer.wait()
            } catch {
                try sent.check()
                throw PostgresEngineError.map(error)
            }
            try sent.check()
            return try Self.rows(result)
        }
    }

    /// Throws the first failure of a statement sent without waiting; the engine calls it before
    /// it commits, so a failed `send` never commits silently.
    func checkSent() throws { try sent.check() }

    /// A statement's answer; a failure of an earlier `send` wins over this statement's own error,
    /// which is then only PostgreSQL refusing to go on in a failed transaction.
    private func wait(_ answer: EventLoopFuture<PostgresQueryResult>) throws -> PostgresQueryResult {
        do {
            let result = try answer.wait()
            try sent.check()
            return result
        } catch {
            try sent.check()
            throw PostgresEngineError.map(error)
        }
    }

    private func start(_ sql: String, _ arguments: [SQLValue]) -> EventLoopFuture<PostgresQueryResult> {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: bindings.appendNull()
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            case .blob(let b): bindings.append(ByteBuffer(bytes: b))
            }
        }
        return connection.query(PostgresQuery(unsafeSQL: PostgresPlaceholders.convert(sql), binds: bindings), logger: logger)
    }

    private static func rows(_ result: PostgresQueryResult) throws -> [SQLRow] {
        guard let first = result.rows.first else { return [] }
        let columns = first.map(\.columnName)
        return try result.rows.map { row in
            SQLRow(columns: columns, values: try row.map(SQLValue.init(cell:)))
        }
    }
}

/// The answers of statements sent without waiting, checked in the order they were sent. Used by
/// the one thread running the transaction.
final class SentStatements: @unchecked Sendable {
    // Safe: a transaction's body, its statements and its commit run on one thread, one after the
    // other; a prefetch handle that escapes the body is read on that thread too.
    private var answers: [EventLoopFuture<PostgresQueryResult>] = []

    func append(_ answer: EventLoopFuture<PostgresQueryResult>) { answers.append(answer) }

    func check() throws {
        guard !answers.isEmpty else { return }
        let waiting = answers
        answers.removeAll()
        for answer in waiting {
            do {
                _ = try answer.wait()
            } catch {
                throw PostgresEngineError.map(error)
            }
        }
    }
}

enum PostgresEngineError {
    static func map(_ error: Error) -> Error {
        guard let error = error as? PSQLError else { return error }
        if [.serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown].contains(error.code) {
            return StorageError.unavailable("the connection to PostgreSQL broke")
        }
        switch error.serverInfo?[.sqlState] {
        case "23505": return StorageError.uniqueViolation(error.serverInfo?[.constraintName] ?? "unique")
        case "23503": return StorageError.foreignKeyViolation(error.serverInfo?[.constraintName] ?? "foreign key")
        default: return error
        }
    }

    /// A deadlock PostgreSQL broke by failing this statement: the unit is worth running again.
    static func isDeadlock(_ error: Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "40P01"
    }
}

extension SQLValue {
    init(cell: PostgresCell) throws {
        guard cell.bytes != nil else {
            self = .null
            return
        }
        switch cell.dataType {
        case .int2, .int4, .int8: self = .int(try cell.decode(Int64.self))
        case .float4, .float8: self = .double(try cell.decode(Double.self))
        case .bool: self = .int(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea:
            var buffer = try cell.decode(ByteBuffer.self)
            self = .blob(buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .numeric: self = .double(Double(try cell.decode(String.self)) ?? 0)
        default: self = .text(try cell.decode(String.self))
        }
    }
}

/// How a read body gets its snapshot cheaply. `BEGIN` is queued, not waited for: it shares the
/// round trip of the body's first statement. `COMMIT` is not waited for either (a read-only
/// transaction has nothing to lose): the connection's next statement queues behind it. A
/// connection whose `COMMIT` fails is closed, never reused inside an old snapshot. Measured in
/// docs/operations.md (Read snapshots).
enum PostgresRead {
    static let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    static func run<T>(on connection: PostgresConnection, logger: Logger, _ body: (SQLTx) throws -> T) throws -> T {
        let tx = PostgresTx(connection: connection, logger: logger)
        try tx.send(begin, [])
        let result = Result { () throws -> T in
            let value = try body(tx)
            try tx.checkSent()
            return value
        }
        let end = connection.query(PostgresQuery(unsafeSQL: "COMMIT"), logger: logger)
        end.whenFailure { _ in _ = connection.close() as EventLoopFuture<Void> }
        // A BEGIN that failed shows here when the body sent nothing else.
        try tx.checkSent()
        return try result.get()
    }
}

extension PostgresTx {
    /// Runs a statement and returns PostgreSQL's command tag (`COMMIT`, or `ROLLBACK` for a
    /// transaction that had failed).
    func commandTag(_ sql: String) throws -> String {
        try wait(start(sql, [])).metadata.command
    }
}
