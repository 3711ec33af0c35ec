import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// Group commit on PostgreSQL: units that wait together run in one transaction, each in its own
/// savepoint (as `GroupCommitWriter` does on SQLite), so a burst of writes costs one WAL flush, not
/// one each. `lanes` transactions run at once, each on a thread and a connection of its own; a lane
/// takes every unit waiting (up to `maximumBatch`) when it starts a transaction. With
/// `maximumBatch` 1 every unit is a transaction of its own.
///
/// A batch first runs without savepoints: a savepoint and its release are two more statements per
/// unit and a subtransaction in PostgreSQL, which cost a batch of creates about a tenth of its
/// throughput. A unit that refuses before it changed anything (a 404, a 403, a 422: the usual
/// failures) leaves nothing to undo, so its batch goes on. A unit that throws after it sent a
/// change, or meets a failed statement (which aborts PostgreSQL's transaction), has its batch
/// rolled back and run again, each unit in its own savepoint: there a unit that throws rolls back
/// its savepoint only. What units send without waiting is checked once per batch, before COMMIT:
/// if any of it failed, the batch is rolled back and each unit runs again alone, so one unit's
/// failure never costs the others theirs. A unit PostgreSQL picked as a deadlock's victim (a batch
/// holds its units' locks until it commits, so two lanes can wait on each other where single
/// units would not) also runs again, alone, once its batch committed.
final class PostgresWriter: Sendable {
    private struct State {
        var pending: [WriteUnit] = []
        var busyLanes = 0
        var closed = false
    }

    /// Said in full: a session reads in read-only `REPEATABLE READ` by default (`PostgresRead`).
    static let begin = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"

    let lanes: Int
    let maximumBatch: Int
    private let connections: PostgresConnectionPool
    private let threads: NIOThreadPool
    private let state = NIOLockedValueBox(State())

    init(connections: PostgresConnectionPool, lanes: Int, maximumBatch: Int) {
        self.connections = connections
        self.lanes = lanes
        self.maximumBatch = maximumBatch
        threads = NIOThreadPool(numberOfThreads: lanes)
        threads.start()
    }

    func submit(_ unit: WriteUnit) {
        let start = state.withLockedValue { state -> Bool? in
            if state.closed { return nil }
            state.pending.append(unit)
            guard state.busyLanes < lanes else { return false }
            state.busyLanes += 1
            return true
        }
        guard let start else {
            unit.finish(StorageError.unavailable("the database is closed (the server is shutting down)"))
            return
        }
        if start { threads.submit { [self] _ in drain() } }
    }

    /// Refuses new units and waits for the lanes to finish the ones they hold.
    func close() async {
        state.withLockedValue { $0.closed = true }
        try? await threads.shutdownGracefully()
        // Units queued after the last lane stopped, during shutdown.
        let left = state.withLockedValue { state -> [WriteUnit] in
            defer { state.pending.removeAll() }
            return state.pending
        }
        for unit in left { unit.finish(StorageError.unavailable("the database is closed (the server is shutting down)")) }
    }

    private func drain() {
        while true {
            let batch = state.withLockedValue { state -> [WriteUnit] in
                let count = min(state.pending.count, maximumBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                if batch.isEmpty { state.busyLanes -= 1 }
                return batch
            }
            if batch.isEmpty { return }
            let again = commit(batch)
            for unit in again { _ = commit([unit]) }
        }
    }

    /// Runs and commits one batch; returns the units to run again, alone.
    private func commit(_ batch: [WriteUnit]) -> [WriteUnit] {
        if batch.count == 1 {
            commitAlone(batch[0])
            return []
        }
        let together: Together
        do {
            together = try connections.withConnection { connection in try Self.withoutSavepoints(batch, PostgresTx(connection: connection)) }
        } catch {
            fail(batch, error)
            return []
        }
        switch together {
        case .committed(let outcomes):
            for (unit, outcome) in zip(batch, outcomes) { unit.finish(outcome) }
            return []
        case .undo: return commitWithSavepoints(batch)
        case .alone: return batch
        }
    }

    private enum Together {
        case committed([Error?])
        /// A unit's failure left something to undo: the batch runs again with savepoints.
        case undo
        /// Something sent without waiting failed: savepoints would not tell whose it was.
        case alone
    }

    /// The batch in one transaction with no savepoints.
    private static func withoutSavepoints(_ batch: [WriteUnit], _ tx: PostgresTx) throws -> Together {
        var outcomes = [Error?](repeating: nil, count: batch.count)
        try tx.send(Self.begin, [])
        for (index, unit) in batch.enumerated() {
            tx.sent.changed = false
            do {
                try unit.run(tx)
            } catch {
                if isConnectionLost(error) { throw error }
                guard tx.sent.changed || tx.sent.failed else {
                    outcomes[index] = error
                    continue
                }
                tx.rollBack()
                return .undo
            }
            tx.connection.flush()
        }
        if try tx.committedBatch() { return .committed(outcomes) }
        tx.rollBack()
        return .alone
    }

    /// The batch again, each unit in its own savepoint; returns the units to run again, alone.
    private func commitWithSavepoints(_ batch: [WriteUnit]) -> [WriteUnit] {
        var outcomes = [Error?](repeating: nil, count: batch.count)
        var again: [WriteUnit] = []
        do {
            let together = try connections.withConnection { connection -> Bool in
                let tx = PostgresTx(connection: connection)
                try tx.send(Self.begin, [])
                // No wait per unit: what a unit sends is checked once, before COMMIT. When any of
                // it failed, PostgreSQL skipped what followed, so the batch is rolled back and
                // each unit runs again alone, where its failure is its own.
                for (index, unit) in batch.enumerated() {
                    try tx.send("SAVEPOINT unit", [])
                    do {
                        try unit.run(tx)
                    } catch {
                        if Self.isConnectionLost(error) { throw error }
                        outcomes[index] = error
                        // After a sync: a statement that failed above must not make PostgreSQL
                        // skip the rollback of the unit's savepoint.
                        tx.connection.sync()
                        try tx.send("ROLLBACK TO SAVEPOINT unit", [])
                    }
                    try tx.send("RELEASE SAVEPOINT unit", [])
                    // PostgreSQL starts on this unit while the next one runs here.
                    tx.connection.flush()
                }
                if try tx.committedBatch() { return true }
                tx.rollBack()
                return false
            }
            if !together { return batch }
        } catch {
            fail(batch, error)
            return []
        }
        for (index, unit) in batch.enumerated() {
            // A deadlock's victim runs again alone (it gets its error only if that fails too).
            if let error = outcomes[index], PostgresEngineError.isDeadlock(error) {
                again.append(unit)
            } else {
                unit.finish(outcomes[index])
            }
        }
        return again
    }

    /// One unit in a transaction of its own; what it sent is checked before COMMIT.
    private func commitAlone(_ unit: WriteUnit) {
        var outcome: Error?
        do {
            try connections.withConnection { connection in
                let tx = PostgresTx(connection: connection)
                try tx.send(Self.begin, [])
                do {
                    try unit.run(tx)
                    try tx.checkSent()
                    // A transaction that failed on the way answers COMMIT with ROLLBACK, no error.
                    let tag = try tx.commit()
                    guard tag == "COMMIT" else { throw StorageError.unavailable("PostgreSQL rolled the transaction back (\(tag))") }
                } catch {
                    outcome = error
                    tx.rollBack()
                    if Self.isConnectionLost(error) { throw error }
                }
            }
        } catch {
            connections.logger.error("postgres write failed", metadata: ["error": "\(error)"])
            outcome = error
        }
        unit.finish(outcome)
    }

    /// The batch could not run (its connection broke, or none could be had): every unit gets why.
    private func fail(_ batch: [WriteUnit], _ error: Error) {
        connections.logger.error("postgres group commit failed", metadata: ["error": "\(error)", "units": "\(batch.count)"])
        for unit in batch { unit.finish(error) }
    }

    private static func isConnectionLost(_ error: Error) -> Bool {
        if case .unavailable = error as? StorageError { return true }
        return false
    }
}

extension PostgresTx {
    /// Sends COMMIT after checking every statement sent without waiting; the command tag says
    /// whether PostgreSQL committed.
    func commit() throws -> String {
        try checkSent()
        return try commandTag("COMMIT")
    }

    /// Sends COMMIT for a batch once every statement sent without waiting succeeded: false when one
    /// failed (nothing is sent) or PostgreSQL answered ROLLBACK.
    func committedBatch() throws -> Bool {
        try sentFailure() == nil && commandTag("COMMIT") == "COMMIT"
    }

    /// Rolls back whatever state the transaction is in: after a sync, so a statement that failed
    /// before cannot make PostgreSQL skip the ROLLBACK.
    func rollBack() {
        connection.sync()
        _ = try? execute("ROLLBACK", [])
    }
}
