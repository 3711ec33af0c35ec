import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import Switchyard

/// A read body sees one snapshot on both engines (PostgreSQL: a read-only REPEATABLE READ
/// transaction; SQLite: a read transaction on a WAL reader), and cannot write.
@Suite("Read snapshots")
struct ReadSnapshotTests {
    static func makeTable(_ database: Database) async throws {
        try await database.write { tx in
            try tx.execute("CREATE TABLE snap (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
            try tx.execute("INSERT INTO snap (id, n) VALUES ('a', 1)")
        }
    }

    static func count(_ tx: SQLTx) throws -> Int64 {
        try tx.queryOne("SELECT COUNT(*) AS n FROM snap")?.int("n") ?? -1
    }

    @Test("two statements of one read see one snapshot while a write commits between them")
    func oneSnapshot() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTable(database)
            let firstDone = NIOLockedValueBox(false)
            let written = DispatchSemaphore(value: 0)
            async let seen: (Int64, Int64, Int64) = database.read { tx in
                let before = try Self.count(tx)
                firstDone.withLockedValue { $0 = true }
                // The body runs on an engine thread of its own: blocking it blocks nothing else.
                guard written.wait(timeout: .now() + 10) == .success else { throw StorageError.unavailable("no write") }
                let after = try Self.count(tx)
                let sum = try tx.queryOne("SELECT MAX(n) AS s FROM snap")?.int("s") ?? -1
                return (before, after, sum)
            }
            while !firstDone.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
            try await database.write { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('b', 10)") }
            written.signal()
            let (before, after, sum) = try await seen
            #expect(before == 1)
            #expect(after == 1, "the second statement saw a write committed after the first")
            #expect(sum == 1)
            // The next read, on a connection whose transaction has ended, sees the write.
            #expect(try await database.read { tx in try Self.count(tx) } == 2)
        }
    }

    @Test("a write inside a read body is refused, on both engines, and nothing is written")
    func readCannotWrite() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTable(database)
            await #expect(throws: (any Error).self) {
                try await database.read { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('w', 1)") }
            }
            await #expect(throws: (any Error).self) {
                try await database.read { tx in try tx.execute("UPDATE snap SET n = 5") }
            }
            #expect(try await database.read { tx in try tx.queryOne("SELECT MAX(n) AS s FROM snap")?.int("s") } == 1)
        }
    }

    @Test("with one connection, a read after a failed read and after a write sees the latest data")
    func transactionsEnd() async throws {
        try await TestDatabase.with(poolSize: 1) { database in
            try await Self.makeTable(database)
            #expect(try await database.read { tx in try Self.count(tx) } == 1)
            await #expect(throws: (any Error).self) {
                try await database.read { tx in try tx.query("SELECT no_such_column FROM snap") }
            }
            try await database.write { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('c', 3)") }
            #expect(try await database.read { tx in try Self.count(tx) } == 2)
            try await database.write { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('d', 4)") }
            let counts = try await database.read { tx in (try Self.count(tx), try Self.count(tx)) }
            #expect(counts == (3, 3))
            // A read that ran no statement at all leaves the connection usable too.
            try await database.read { _ in }
            #expect(try await database.read { tx in try Self.count(tx) } == 3)
        }
    }

    @Test("a read of one round trip is one read-only snapshot, without BEGIN (PostgreSQL's implicit transaction)")
    func oneTripSnapshot() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTable(database)
            guard database.dialect == .postgres else { return }
            let (first, second) = try await database.read(oneTrip: true) { tx in
                let pending = tx.prefetch(
                    """
                    SELECT current_setting('transaction_isolation') AS isolation,
                           current_setting('transaction_read_only') AS read_only, transaction_timestamp()::text AS began
                    """
                )
                let began = try tx.queryOne("SELECT transaction_timestamp()::text AS began")?.string("began")
                return (try pending.one(), began)
            }
            #expect(try first?.string("isolation") == "repeatable read")
            #expect(try first?.string("read_only") == "on")
            #expect(try first?.string("began") == second, "the two statements ran in two transactions")
        }
    }

    @Test("a read of one round trip that queries again runs again in a transaction, and sees one snapshot")
    func oneTripRunsAgain() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTable(database)
            let runs = NIOLockedValueBox(0)
            let firstDone = NIOLockedValueBox(false)
            let written = DispatchSemaphore(value: 0)
            async let seen: (Int64, Int64) = database.read(oneTrip: true) { tx in
                let before = try Self.count(tx)
                let run = runs.withLockedValue { runs in
                    runs += 1
                    return runs
                }
                if run == 1 {
                    firstDone.withLockedValue { $0 = true }
                    guard written.wait(timeout: .now() + 10) == .success else { throw StorageError.unavailable("no write") }
                }
                return (before, try Self.count(tx))
            }
            while !firstDone.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
            try await database.write { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('b', 10)") }
            written.signal()
            let (before, after) = try await seen
            #expect(before == after, "the statements of one read saw two states of the table")
            // PostgreSQL ran the body again, in BEGIN … COMMIT, after the write; SQLite's one
            // read transaction held its snapshot throughout.
            #expect(runs.withLockedValue { $0 } == (database.dialect == .postgres ? 2 : 1))
            #expect(before == (database.dialect == .postgres ? 2 : 1))
        }
    }

    @Test("a write inside a read of one round trip is refused, and nothing is written")
    func oneTripCannotWrite() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTable(database)
            await #expect(throws: (any Error).self) {
                try await database.read(oneTrip: true) { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('w', 1)") }
            }
            await #expect(throws: (any Error).self) {
                try await database.read(oneTrip: true) { tx in try tx.query("UPDATE snap SET n = 5 RETURNING id") }
            }
            #expect(try await database.read { tx in try tx.queryOne("SELECT MAX(n) AS s FROM snap")?.int("s") } == 1)
        }
    }

    @Test("with one connection, reads of one round trip between other reads, failures and writes see the latest data")
    func oneTripTransactionsEnd() async throws {
        try await TestDatabase.with(poolSize: 1) { database in
            try await Self.makeTable(database)
            // A transaction's COMMIT still queued leaves with the next read's one trip.
            #expect(try await database.read { tx in try Self.count(tx) } == 1)
            #expect(try await database.read(oneTrip: true) { tx in try Self.count(tx) } == 1)
            await #expect(throws: (any Error).self) {
                try await database.read(oneTrip: true) { tx in try tx.query("SELECT no_such_column FROM snap") }
            }
            try await database.write { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('c', 3)") }
            #expect(try await database.read(oneTrip: true) { tx in try Self.count(tx) } == 2)
            try await database.write { tx in try tx.execute("INSERT INTO snap (id, n) VALUES ('d', 4)") }
            #expect(try await database.read(oneTrip: true) { tx in try Self.count(tx) } == 3)
            #expect(try await database.read { tx in try Self.count(tx) } == 3)
            try await database.read(oneTrip: true) { _ in }
            #expect(try await database.read(oneTrip: true) { tx in try Self.count(tx) } == 3)
        }
    }
}
