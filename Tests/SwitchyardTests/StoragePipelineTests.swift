import Foundation
import Testing

@testable import Switchyard

/// Statements sent without waiting (`SQLTx.send`, `prefetch`) and PostgreSQL's group commit, on
/// both engines.
@Suite("Storage pipelining")
struct StoragePipelineTests {
    @Test("a sent statement that fails fails its unit, which writes nothing; the units beside it commit")
    func sentFailureFailsTheUnit() async throws {
        try await TestDatabase.with(poolSize: 8) { database in
            try await StorageTests.makeTables(database)
            try await database.write { tx in try tx.execute("INSERT INTO items (id, name, n) VALUES ('taken', 'x', 0)") }
            let outcomes = await withTaskGroup(of: (Int, Error?).self) { group in
                for n in 1...40 {
                    group.addTask {
                        do {
                            try await database.write { tx in
                                try tx.send("INSERT INTO item_events (id, item_id, kind) VALUES (?, ?, 'created')", "evt\(n)", "itm\(n)")
                                // Every fourth unit reuses a taken id: its failure shows at the end of the unit.
                                try tx.send("INSERT INTO items (id, name, n) VALUES (?, 'y', ?)", n % 4 == 0 ? "taken" : "itm\(n)", n)
                            }
                            return (n, nil)
                        } catch {
                            return (n, error)
                        }
                    }
                }
                return await group.reduce(into: [(Int, Error?)]()) { $0.append($1) }
            }
            for (n, error) in outcomes {
                if n % 4 == 0 {
                    guard case .uniqueViolation? = error as? StorageError else {
                        Issue.record("unit \(n) should fail with a unique violation, got \(String(describing: error))")
                        continue
                    }
                } else {
                    #expect(error == nil, "unit \(n): \(String(describing: error))")
                }
            }
            let (items, events) = try await database.read { tx in
                (
                    try tx.query("SELECT n FROM items WHERE id <> 'taken' ORDER BY n").map { try $0.int("n") },
                    try tx.query("SELECT id FROM item_events").count
                )
            }
            #expect(items == (1...40).filter { $0 % 4 != 0 }.map(Int64.init))
            #expect(events == 30)
        }
    }

    struct Refused: Error, Equatable { let unit: Int }

    @Test("a unit that throws after it wrote leaves nothing, one that throws before leaves nothing either; the units beside them commit")
    func refusedUnits() async throws {
        try await TestDatabase.with(poolSize: 8) { database in
            try await StorageTests.makeTables(database)
            let outcomes = await withTaskGroup(of: (Int, Error?).self) { group in
                for n in 1...48 {
                    group.addTask {
                        do {
                            try await database.write { tx in
                                // Every third unit refuses on a read, before it changes anything (a 404).
                                if n % 3 == 0, try tx.queryOne("SELECT id FROM items WHERE id = 'none'") == nil { throw Refused(unit: n) }
                                try tx.execute("INSERT INTO items (id, name, n) VALUES (?, 'y', ?)", "itm\(n)", n)
                                try tx.send("INSERT INTO item_events (id, item_id, kind) VALUES (?, ?, 'created')", "evt\(n)", "itm\(n)")
                                // Every fourth refuses after its writes (a unique value found taken): they must go.
                                if n % 4 == 0 { throw Refused(unit: n) }
                            }
                            return (n, nil)
                        } catch {
                            return (n, error)
                        }
                    }
                }
                return await group.reduce(into: [(Int, Error?)]()) { $0.append($1) }
            }
            for (n, error) in outcomes {
                if n % 3 == 0 || n % 4 == 0 {
                    #expect(error as? Refused == Refused(unit: n), "unit \(n): \(String(describing: error))")
                } else {
                    #expect(error == nil, "unit \(n): \(String(describing: error))")
                }
            }
            let kept = (1...48).filter { $0 % 3 != 0 && $0 % 4 != 0 }
            let (items, events) = try await database.read { tx in
                (
                    try tx.query("SELECT n FROM items ORDER BY n").map { try $0.int("n") },
                    try tx.query("SELECT item_id FROM item_events ORDER BY item_id").map { try $0.string("item_id") }
                )
            }
            #expect(items == kept.map(Int64.init))
            #expect(events == kept.map { "itm\($0)" }.sorted())
        }
    }

    @Test("a statement is counted a change unless it is a SELECT")
    func selectsChangeNothing() {
        for sql in ["SELECT 1", "  select id FROM items", "\n\tSELECT(1)", "SELECT\n*"] { #expect(SQLHead.isSelect(sql), "\(sql)") }
        for sql in [
            "INSERT INTO items VALUES (1)", "WITH x AS (DELETE FROM items RETURNING id) SELECT id FROM x", "SELECTED", "SELEC", "",
            "UPDATE items SET n = 1",
        ] {
            #expect(!SQLHead.isSelect(sql), "\(sql)")
        }
    }

    struct SeenAtWait: Error {}

    @Test("a failed send is reported by the next waited statement, not as the aborted transaction it leaves")
    func sentFailureShowsAtTheNextWait() async throws {
        try await TestDatabase.with { database in
            try await StorageTests.makeTables(database)
            try await database.write { tx in try tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'x', 1)") }
            await #expect(throws: SeenAtWait.self) {
                try await database.write { tx in
                    do {
                        // SQLite runs it at once and throws here; PostgreSQL at the query below.
                        try tx.send("INSERT INTO items (id, name, n) VALUES ('a', 'y', 2)")
                        _ = try tx.query("SELECT COUNT(*) AS n FROM items")
                    } catch StorageError.uniqueViolation {
                        throw SeenAtWait()
                    }
                }
            }
        }
    }

    @Test("a body that swallows a failed statement commits nothing on PostgreSQL, and says so")
    func swallowedFailure() async throws {
        try await TestDatabase.with { database in
            try await StorageTests.makeTables(database)
            try await database.write { tx in try tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'x', 1)") }
            let outcome: Result<Void, Error>
            do {
                try await database.write { tx in
                    try tx.execute("INSERT INTO item_events (id, item_id, kind) VALUES ('e', 'a', 'k')")
                    _ = try? tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'y', 2)")
                }
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            let events = try await database.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM item_events")?.int("n") }
            if database.dialect == .postgres {
                // PostgreSQL answers the COMMIT of a failed transaction with ROLLBACK: never a success.
                guard case .failure(StorageError.unavailable) = outcome else {
                    Issue.record("expected the write to fail, got \(outcome)")
                    return
                }
                #expect(events == 0)
            } else {
                // SQLite undoes the failed statement only; the rest of the body commits.
                #expect((try? outcome.get()) != nil)
                #expect(events == 1)
            }
        }
    }

    @Test("prefetched rows are read after other statements, in the same snapshot")
    func prefetch() async throws {
        try await TestDatabase.with { database in
            try await StorageTests.makeTables(database)
            try await database.write { tx in
                try tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'first', 1), ('b', 'second', 2)")
            }
            let (first, count, missing) = try await database.read { tx in
                let first = tx.prefetch("SELECT name FROM items WHERE id = ?", "a")
                let missing = tx.prefetch("SELECT name FROM items WHERE id = ?", "zzz")
                let count = try tx.queryOne("SELECT COUNT(*) AS n FROM items")?.int("n")
                return (try first.one()?.string("name"), count, try missing.rows().count)
            }
            #expect(first == "first")
            #expect(count == 2)
            #expect(missing == 0)
        }
    }

    @Test("a read's COMMIT, queued to leave with its connection's next statements, is sent soon when none come")
    func queuedCommitLeavesWhenIdle() async throws {
        guard let base = TestDatabase.postgresURL else { return }
        try await TestDatabase.with { database in
            let pid = try await database.read { tx in try #require(try tx.queryOne("SELECT pg_backend_pid() AS pid")).int("pid") }
            // A connection of the test's own: one of the pool's would carry the COMMIT along.
            let observer = PostgresTx(connection: try PostgresTLS.parameters(for: PostgresURL(parsing: base)).open())
            let deadline = ContinuousClock.now + .seconds(2)
            var state: String?
            repeat {
                try await Task.sleep(for: .milliseconds(20))
                state = try observer.queryOne("SELECT state FROM pg_stat_activity WHERE pid = ?", pid)?.string("state")
            } while state != "idle" && ContinuousClock.now < deadline
            #expect(state == "idle", "the read's transaction stays open: its snapshot would hold vacuum back")
        }
    }

    @Test("a table changed under a prepared SELECT * fails that read once at most; the next one sees the new column")
    func preparedStatementsAfterSchemaChange() async throws {
        try await TestDatabase.with(poolSize: 1) { database in
            try await StorageTests.makeTables(database)
            try await database.write { tx in try tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'x', 1)") }
            _ = try await database.read { tx in try tx.query("SELECT * FROM items") }
            // On another connection (a write lane), as another process's migration would.
            try await database.write { tx in try tx.execute("ALTER TABLE items ADD COLUMN note TEXT") }
            var columns: [String] = []
            for _ in 0..<2 where columns.isEmpty {
                columns = (try? await database.read { tx in try tx.query("SELECT * FROM items") })?.first?.columns ?? []
            }
            #expect(columns.contains("note"))
        }
    }

    @Test("write_lanes and write_batch are read from the PostgreSQL URL, and bad values refused with a reason")
    func writeParameters() throws {
        guard case .postgres(let defaults) = try DatabaseURL(parsing: "postgres://h/db") else {
            Issue.record("not postgres")
            return
        }
        #expect(defaults.writeLanes == PostgresURL.defaultWriteLanes && defaults.writeBatch == PostgresURL.defaultWriteBatch)
        guard case .postgres(let set) = try DatabaseURL(parsing: "postgres://h/db?write_lanes=2&write_batch=1") else {
            Issue.record("not postgres")
            return
        }
        #expect(set.writeLanes == 2 && set.writeBatch == 1)
        for bad in ["write_lanes=0", "write_lanes=x", "write_batch=0", "write_batch=5000"] {
            #expect(throws: StorageError.self) { try DatabaseURL(parsing: "postgres://h/db?\(bad)") }
        }
    }
}
