import Foundation
import GRDB
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// SQLite: GRDB's `DatabasePool` (WAL) under a group-commit writer that runs every waiting unit in
/// one transaction, each in its own savepoint; reads on connections of our own
/// (`SQLiteReadConnections`), on threads of our own.
final class SQLiteEngine: DatabaseEngine {
    let dialect = SQLDialect.sqlite
    private let pool: DatabasePool
    private let writer: GroupCommitWriter
    /// Reads run on threads of our own, so a long read never holds one of Swift's few concurrency
    /// threads. Trials: 4 threads measured worse than 2 on 2 cores; reads inline on the
    /// concurrency threads measured the same as here.
    private let readers: NIOThreadPool
    private let connections: SQLiteReadConnections

    init(path: String, logger: Logger) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = SQLiteEngine.readerCount
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // The file holds password and token hashes: readable by this user only. SQLite gives the
        // -wal and -shm files the same mode.
        try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        writer = GroupCommitWriter(pool: pool, logger: logger)
        readers = NIOThreadPool(numberOfThreads: SQLiteEngine.readerCount)
        connections = SQLiteReadConnections(path: path)
        readers.start()
    }

    static let readerCount = 2

    func write<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        // Unsafe continuation: the writer resumes each exactly once (`finish`), and the checked
        // kind's bookkeeping showed in the write path's profile.
        try await withUnsafeThrowingContinuation { continuation in
            writer.submit(TypedWriteUnit(body: body, continuation: continuation))
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        do {
            return try await readers.runIfActive { [connections] in try connections.read(body) }
        } catch let error as DatabaseError {
            throw SQLiteEngine.map(error)
        }
    }

    func close() async {
        try? await readers.shutdownGracefully()
        connections.close()
        try? pool.close()
    }

    static func map(_ error: Error) -> Error {
        guard let error = error as? DatabaseError else { return error }
        switch error.extendedResultCode {
        case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY:
            return StorageError.uniqueViolation(error.message ?? "unique")
        case .SQLITE_CONSTRAINT_FOREIGNKEY:
            return StorageError.foreignKeyViolation(error.message ?? "foreign key")
        default:
            return error
        }
    }
}

/// A transaction handle over a GRDB connection. Statements are cached per connection, which
/// trials measured at ~30% of a small write's cost.
struct GRDBTx: SQLTx {
    let db: GRDB.Database
    var dialect: SQLDialect { .sqlite }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        let statement = try db.cachedStatement(sql: sql)
        try statement.setArguments(Self.statementArguments(arguments))
        try statement.execute()
        return db.changesCount
    }

    /// Through GRDB's existential initializer: its generic one maps with a key path that the
    /// runtime builds on every call, which profiled at a sixth of a small write.
    static func statementArguments(_ arguments: [SQLValue]) -> StatementArguments {
        StatementArguments(arguments.map { value -> (any DatabaseValueConvertible)? in value.databaseValue })
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let statement = try db.cachedStatement(sql: sql)
        try statement.setArguments(Self.statementArguments(arguments))
        let columns = statement.columnNames
        var rows: [SQLRow] = []
        let cursor = try Row.fetchCursor(statement)
        while let row = try cursor.next() {
            var values: [SQLValue] = []
            values.reserveCapacity(columns.count)
            for index in 0..<columns.count {
                values.append(SQLValue(row[index] as DatabaseValue))
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }
}

extension SQLValue {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .int(let i): return i.databaseValue
        case .double(let d): return d.databaseValue
        case .text(let s): return s.databaseValue
        case .blob(let b): return Data(b).databaseValue
        }
    }

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .text(s)
        case .blob(let b): self = .blob(Array(b))
        }
    }
}

/// One caller's write, waiting for the group-commit writer.
class WriteUnit: @unchecked Sendable {
    func run(_ tx: SQLTx) throws {}
    func finish(_ error: Error?) {}
}

final class TypedWriteUnit<T: Sendable>: WriteUnit, @unchecked Sendable {
    // Safe: `run` and `finish` are called only by the writer, one after the other, on its queue;
    // `result` is stored by `run` and read by `finish` on that same queue.
    private let body: @Sendable (SQLTx) throws -> T
    private let continuation: UnsafeContinuation<T, Error>
    private var result: T?

    init(body: @escaping @Sendable (SQLTx) throws -> T, continuation: UnsafeContinuation<T, Error>) {
        self.body = body
        self.continuation = continuation
    }

    override func run(_ tx: SQLTx) throws { result = try body(tx) }

    override func finish(_ error: Error?) {
        if let error {
            continuation.resume(throwing: error)
        } else if let result {
            continuation.resume(returning: result)
        } else {
            continuation.resume(throwing: StorageError.unavailable("write finished without a result"))
        }
    }
}

/// Batches waiting writes into one transaction. A unit that throws rolls back its savepoint only;
/// the others commit together and each caller gets its own result once the commit is durable.
final class GroupCommitWriter: Sendable {
    private struct State {
        var pending: [WriteUnit] = []
        var draining = false
    }

    private let pool: DatabasePool
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let queue = DispatchQueue(label: "switchyard.sqlite.writer")
    private let maximumBatch = 512

    init(pool: DatabasePool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    func submit(_ unit: WriteUnit) {
        let schedule = state.withLockedValue { state -> Bool in
            state.pending.append(unit)
            if state.draining { return false }
            state.draining = true
            return true
        }
        if schedule {
            queue.async { self.drain() }
        }
    }

    private func drain() {
        while true {
            let batch = state.withLockedValue { state -> [WriteUnit] in
                let count = min(state.pending.count, maximumBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            commit(batch)
        }
    }

    private func commit(_ batch: [WriteUnit]) {
        var outcomes = [Error?](repeating: nil, count: batch.count)
        do {
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    let tx = GRDBTx(db: db)
                    // Savepoints through cached statements: GRDB's inSavepoint prepares its SQL on
                    // every call, which measured at a fifth of a small unit's cost.
                    let savepoint = try db.cachedStatement(sql: "SAVEPOINT unit")
                    let release = try db.cachedStatement(sql: "RELEASE SAVEPOINT unit")
                    let rollback = try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT unit")
                    for (index, unit) in batch.enumerated() {
                        try savepoint.execute()
                        do {
                            try unit.run(tx)
                        } catch {
                            outcomes[index] = SQLiteEngine.map(error)
                            try rollback.execute()
                        }
                        try release.execute()
                    }
                    return .commit
                }
            }
        } catch {
            logger.error("sqlite group commit failed", metadata: ["error": "\(error)", "units": "\(batch.count)"])
            let mapped = SQLiteEngine.map(error)
            for unit in batch { unit.finish(mapped) }
            return
        }
        for (index, unit) in batch.enumerated() { unit.finish(outcomes[index]) }
    }
}
