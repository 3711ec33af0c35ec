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
}
