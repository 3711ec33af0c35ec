import Foundation

/// A transaction's statements on one connection, from the one thread running it. A waited
/// statement reads its answer at once; `send` and `prefetch` only queue theirs, so everything
/// queued before a wait reaches PostgreSQL together and costs one round trip.
struct PostgresTx: SQLTx {
    let connection: PostgresConnection
    /// The statements sent without waiting, not yet checked.
    let sent: SentStatements
    /// For a read of one round trip (`PostgresRead`): set once it waited, so a statement after
    /// that is refused rather than sent in a snapshot of its own.
    let oneTrip: OneTrip?
    var dialect: SQLDialect { .postgres }

    init(connection: PostgresConnection, oneTrip: OneTrip? = nil) {
        self.connection = connection
        self.sent = SentStatements()
        self.oneTrip = oneTrip
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try checkTrip()
        sent.changed = true
        return try wait(connection.send(PostgresPlaceholders.convert(sql), arguments)).changed
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try checkTrip()
        if !SQLHead.isSelect(sql) { sent.changed = true }
        return try wait(connection.send(PostgresPlaceholders.convert(sql), arguments)).rows
    }

    /// Queues the statement: it leaves with the next wait, or when the writer flushes after each
    /// unit, so a unit's statements reach PostgreSQL in one packet rather than one each (every
    /// packet wakes the backend and costs a send on our side).
    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        try checkTrip()
        sent.changed = true
        sent.append(connection.send(PostgresPlaceholders.convert(sql), arguments))
    }

    func prefetch(_ sql: String, _ arguments: [SQLValue]) -> SQLPending {
        do { try checkTrip() } catch { return SQLPending(.failure(error)) }
        if !SQLHead.isSelect(sql) { sent.changed = true }
        let slot = connection.send(PostgresPlaceholders.convert(sql), arguments)
        let (connection, sent, oneTrip) = (connection, sent, oneTrip)
        return SQLPending { try Self.wait(slot, connection, sent, oneTrip).rows }
    }

    /// A read of one round trip that already waited sends nothing more: the statement would run
    /// after its implicit transaction ended, in another snapshot.
    private func checkTrip() throws {
        guard let oneTrip, oneTrip.waited else { return }
        oneTrip.exceeded = true
        throw OneTrip.Exceeded()
    }

    /// Throws the first failure of a statement sent without waiting; the engine calls it before
    /// it commits, so a failed `send` never commits silently.
    func checkSent() throws { try sent.check(connection) }

    /// The first failure of a statement sent without waiting, or nil.
    func sentFailure() -> Error? {
        do {
            try sent.check(connection)
            return nil
        } catch {
            return error
        }
    }

    /// Runs a statement and returns PostgreSQL's command tag (`COMMIT`, or `ROLLBACK` for a
    /// transaction that had failed).
    func commandTag(_ sql: String) throws -> String {
        try wait(connection.send(sql, [])).command
    }

    private func wait(_ slot: PostgresConnection.Slot) throws -> PostgresAnswer {
        try Self.wait(slot, connection, sent, oneTrip)
    }

    /// A statement's answer; a failure of an earlier `send` wins over this statement's own error,
    /// which is then only PostgreSQL refusing to go on in a failed transaction.
    private static func wait(
        _ slot: PostgresConnection.Slot,
        _ connection: PostgresConnection,
        _ sent: SentStatements,
        _ oneTrip: OneTrip?
    ) throws -> PostgresAnswer {
        // Everything sent so far is synced by this wait: its implicit transaction ends with it.
        oneTrip?.waited = true
        let answer = connection.wait(slot)
        try sent.check(connection)
        do {
            return try answer.get()
        } catch {
            sent.failed = true
            throw PostgresEngineError.map(error)
        }
    }
}

/// The answers of statements sent without waiting, checked in the order they were sent. Used by
/// the one thread running the transaction.
final class SentStatements: @unchecked Sendable {
    // Safe: a transaction's body, its statements and its commit run on one thread, one after the
    // other; a prefetch handle that escapes the body is read on that thread too.
    private var slots: [PostgresConnection.Slot] = []
    /// Since the writer last cleared it: a statement was sent that may have changed something
    /// (anything but a `SELECT`)…
    var changed = false
    /// …or a statement failed, which leaves PostgreSQL's transaction aborted.
    var failed = false

    func append(_ slot: PostgresConnection.Slot) { slots.append(slot) }

    func check(_ connection: PostgresConnection) throws {
        guard !slots.isEmpty else { return }
        let waiting = slots
        slots.removeAll()
        for slot in waiting {
            if case .failure(let error) = connection.wait(slot) {
                failed = true
                throw PostgresEngineError.map(error)
            }
        }
    }
}

enum PostgresEngineError {
    static func map(_ error: Error) -> Error {
        guard let error = error as? PostgresError else { return error }
        switch error.sqlState {
        case "23505": return StorageError.uniqueViolation(error.constraint ?? "unique")
        case "23503": return StorageError.foreignKeyViolation(error.constraint ?? "foreign key")
        // The server going away (admin shutdown, crash): what a broken connection is.
        case "57P01", "57P02", "57P03": return StorageError.unavailable("PostgreSQL is shutting down or restarting")
        default: return error
        }
    }

    /// A deadlock PostgreSQL broke by failing this statement: the unit is worth running again.
    static func isDeadlock(_ error: Error) -> Bool {
        (error as? PostgresError)?.sqlState == "40P01"
    }
}

/// How a read body gets its snapshot cheaply. Every connection's session reads in read-only
/// `REPEATABLE READ` by default (`PostgresTLS.parameters`; the writer's `BEGIN` says otherwise), so
/// statements sent together before one sync are one implicit transaction of that kind: one
/// snapshot, and a write refused.
///
/// - A read of one round trip (`oneTrip`, the hot reads) sends no `BEGIN` or `COMMIT` at all: its
///   sync ends its implicit transaction. Measured on record reads (durable PostgreSQL, wrk -c64):
///   PostgreSQL's CPU per read 50–58 µs → 43–49 µs, per `GET /v1/ping` 37–52 µs → 31–34 µs. If the
///   body sends a statement after it waited, that statement would start another implicit
///   transaction with another snapshot: it is refused (`OneTrip.Exceeded`), and the body runs
///   again from the start as below.
/// - Any other read runs in `BEGIN … COMMIT`. `BEGIN` is queued, not waited for: it shares the
///   round trip of the body's first statement. `COMMIT` is neither waited for nor sent: it is
///   queued and leaves with the connection's next statements (the next body's first ones, in one
///   packet), or after `PostgresConnectionPool.commitDelay` when none come. A read-only
///   transaction has nothing to lose; a connection whose `COMMIT` failed is dropped, never reused
///   inside an old snapshot. Sending the `COMMIT` on its own cost every read a second packet, a
///   second wake-up of the backend and a send of about 18 µs on our side. Measured in
///   docs/operations.md (Read snapshots).
enum PostgresRead {
    static let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    static func run<T>(on connection: PostgresConnection, oneTrip: Bool, _ body: (SQLTx) throws -> T) throws -> T {
        if oneTrip {
            let trip = OneTrip()
            let result = perform(PostgresTx(connection: connection, oneTrip: trip), body)
            // The last read's COMMIT, when still queued, left with this body's statements: if it
            // failed, so did they (PostgreSQL skipped them), and the connection is not trusted again.
            if connection.lastCommitFailed() { connection.discarded = true }
            if !trip.exceeded {
                // What the body sent without waiting leaves now, in the same implicit transaction.
                connection.sync()
                return try result.get()
            }
        }
        let tx = PostgresTx(connection: connection)
        // Queued, not written yet: it leaves with the body's first statement, in one packet (behind
        // the last read's COMMIT, when that is still queued).
        tx.sent.append(connection.send(begin, []))
        let result = perform(tx, body)
        if connection.lastCommitFailed() { connection.discarded = true }
        // Its own sync: a failure left queued by the body cannot make PostgreSQL skip the COMMIT.
        connection.sync()
        connection.trailing = connection.send("COMMIT", [])
        connection.trailingQueuedAt = .now
        // A BEGIN that failed shows here when the body sent nothing else (this waits, and so sends
        // the COMMIT at once).
        try tx.checkSent()
        return try result.get()
    }

    private static func perform<T>(_ tx: PostgresTx, _ body: (SQLTx) throws -> T) -> Result<T, Error> {
        Result {
            let value = try body(tx)
            try tx.checkSent()
            return value
        }
    }
}

/// A read body's one round trip (`PostgresRead.run(on:oneTrip:_:)`): whether it waited, and
/// whether it then tried to send more (and so runs again in a transaction).
final class OneTrip: @unchecked Sendable {
    // Safe: used by the one thread running the read, as `SentStatements` is.
    var waited = false
    var exceeded = false

    /// Thrown to a body that sends a statement after its one trip; the body's answer is discarded.
    struct Exceeded: Error, CustomStringConvertible {
        var description: String { "a read of one round trip sent a statement after waiting (it runs again in a transaction)" }
    }
}
