import Foundation
import GRDBSQLite
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// SQLite in WAL mode through its C interface (`SQLiteConnection`): one writer connection under a
/// group-commit writer that runs every waiting unit in one transaction, each in its own savepoint,
/// and read connections used from threads of our own.
final class SQLiteEngine: DatabaseEngine {
    let dialect = SQLDialect.sqlite
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
        // The file holds password and token hashes: readable by this user only. Made before SQLite
        // opens it, because SQLite gives the -wal and -shm files the mode the database has then.
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let connection = try SQLiteConnection(path: path, create: true)
        try connection.run("PRAGMA journal_mode = WAL")
        try connection.run("PRAGMA synchronous = NORMAL")
        try connection.run("PRAGMA foreign_keys = ON")
        // Each unit's savepoint keeps a journal of the pages it changes; past 64 KiB SQLite spills
        // it to a temporary file, which traced at ten file writes per WAL write under load.
        try connection.run("PRAGMA temp_store = MEMORY")
        // Files made by earlier versions, before the mode was set at creation.
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        }
        writer = GroupCommitWriter(connection: connection, logger: logger)
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

    /// `oneTrip` changes nothing here: a statement is no round trip in-process.
    func read<T: Sendable>(oneTrip: Bool, _ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        do {
            return try await readers.runIfActive { [connections] in try connections.read(body) }
        } catch let error as SQLiteError {
            throw SQLiteEngine.map(error)
        }
    }

    func close() async {
        try? await readers.shutdownGracefully()
        connections.close()
        writer.close()
    }

    static func map(_ error: Error) -> Error {
        guard let error = error as? SQLiteError else { return error }
        switch error.code {
        case SQLiteError.uniqueConstraint, SQLiteError.primaryKeyConstraint:
            return StorageError.uniqueViolation(error.message)
        case SQLiteError.foreignKeyConstraint:
            return StorageError.foreignKeyViolation(error.message)
        case _ where error.code & 0xFF == SQLITE_BUSY || error.code & 0xFF == SQLITE_LOCKED:
            // Another process held the database past the busy timeout (`users create`, a backup).
            return StorageError.unavailable("the database stayed locked by another process: \(error.message)")
        default:
            return error
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

/// Batches waiting writes into one transaction. A unit that throws rolls back its own changes only
/// (`commit`); the others commit together and each caller gets its own result once the commit is
/// durable.
final class GroupCommitWriter: Sendable {
    private struct State {
        var pending: [WriteUnit] = []
        var draining = false
        var closed = false
    }

    private let connection: SQLiteConnection
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let queue = DispatchQueue(label: "switchyard.sqlite.writer")
    private let maximumBatch = 512

    /// `connection` is used on the writer's queue only, from now on.
    init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Refuses new units, then waits for those already taken; the connection closes with the
    /// last reference to it.
    func close() {
        state.withLockedValue { $0.closed = true }
        queue.sync {}
    }

    func submit(_ unit: WriteUnit) {
        let schedule = state.withLockedValue { state -> Bool? in
            if state.closed { return nil }
            state.pending.append(unit)
            if state.draining { return false }
            state.draining = true
            return true
        }
        guard let schedule else {
            unit.finish(StorageError.unavailable("the database is closed (the server is shutting down)"))
            return
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

    /// The batch in one transaction, first with no savepoints: a savepoint and its release are two
    /// more statements per unit, and every page a unit first touches is copied into the
    /// savepoint's journal. A unit that throws having changed nothing (a 404, a 403, a 422) leaves
    /// nothing to undo, so the batch goes on. One that throws after a statement that may have
    /// written rolls the batch back, and the batch runs again with a savepoint per unit, where a
    /// unit that throws rolls back its own changes only. Measured (`switchyard-bench storage`, 64
    /// writers, alternating binaries): 98–99k units/s with a savepoint per unit, 121–127k without.
    private func commit(_ batch: [WriteUnit]) {
        do {
            do {
                try transaction(batch) { unit, tx in
                    connection.wrote = false
                    do {
                        try unit.run(tx)
                        return nil
                    } catch {
                        if connection.isAutocommit { throw error }
                        if connection.wrote { throw NeedsSavepoints() }
                        return SQLiteEngine.map(error)
                    }
                }
            } catch is NeedsSavepoints {
                try transaction(batch) { unit, tx in
                    try connection.run("SAVEPOINT unit")
                    var outcome: Error?
                    do {
                        try unit.run(tx)
                    } catch {
                        // Some errors (disk full, I/O) make SQLite undo the whole transaction:
                        // then the batch fails with that error, not with "no such savepoint".
                        if connection.isAutocommit { throw error }
                        outcome = SQLiteEngine.map(error)
                        try connection.run("ROLLBACK TO SAVEPOINT unit")
                    }
                    try connection.run("RELEASE SAVEPOINT unit")
                    return outcome
                }
            }
        } catch {
            logger.error("sqlite group commit failed", metadata: ["error": "\(error)", "units": "\(batch.count)"])
            let mapped = SQLiteEngine.map(error)
            for unit in batch { unit.finish(mapped) }
        }
    }

    /// A unit threw after it may have written, with no savepoint to undo it by.
    private struct NeedsSavepoints: Error {}

    /// The batch in one transaction, `step` running each unit and answering its outcome; then
    /// each unit is told its outcome. A throw from `step`, BEGIN or COMMIT rolls the whole
    /// transaction back and is rethrown, and no unit is told anything.
    private func transaction(_ batch: [WriteUnit], _ step: (WriteUnit, SQLiteTx) throws -> Error?) throws {
        var outcomes: [Error?] = []
        outcomes.reserveCapacity(batch.count)
        let tx = SQLiteTx(connection: connection)
        // IMMEDIATE: take the write lock now, waiting (busy timeout) for another process's.
        try connection.run("BEGIN IMMEDIATE")
        do {
            for unit in batch { outcomes.append(try step(unit, tx)) }
            try connection.run("COMMIT")
        } catch {
            try? connection.run("ROLLBACK")
            throw error
        }
        for (unit, outcome) in zip(batch, outcomes) { unit.finish(outcome) }
    }
}
