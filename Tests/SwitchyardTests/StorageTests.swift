import Foundation
import Logging
import Testing

@testable import Switchyard

struct UnitFailure: Error {}

@Suite("Storage")
struct StorageTests {
    static let tables = [
        "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, n BIGINT NOT NULL)",
        "CREATE TABLE item_events (id TEXT PRIMARY KEY, item_id TEXT NOT NULL, kind TEXT NOT NULL)",
    ]

    static func makeTables(_ database: Database) async throws {
        try await database.write { tx in for sql in tables { try tx.execute(sql) } }
    }

    /// One unit as the features write it: a row and its event, in one transaction.
    static func writeUnit(_ database: Database, _ n: Int, fail: Bool = false) async throws -> String {
        try await database.write { tx in
            let id = ID.make("itm")
            try tx.execute("INSERT INTO items (id, name, n) VALUES (?, ?, ?)", id, "item \(n)", n)
            try tx.execute("INSERT INTO item_events (id, item_id, kind) VALUES (?, ?, ?)", ID.make("evt"), id, "created")
            if fail { throw UnitFailure() }
            return id
        }
    }

    @Test("64 concurrent writers all commit, each unit whole")
    func concurrentWriters() async throws {
        try await TestDatabase.with(poolSize: 8) { database in
            try await Self.makeTables(database)
            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<64 {
                    group.addTask {
                        var ids: [String] = []
                        for i in 0..<20 { ids.append(try await Self.writeUnit(database, writer * 100 + i)) }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(Set(ids).count == 64 * 20)
            let (items, events, orphans) = try await database.read { tx in
                (
                    try tx.queryOne("SELECT COUNT(*) AS n FROM items")?.int("n"),
                    try tx.queryOne("SELECT COUNT(*) AS n FROM item_events")?.int("n"),
                    try tx.queryOne("SELECT COUNT(*) AS n FROM items i WHERE NOT EXISTS (SELECT 1 FROM item_events e WHERE e.item_id = i.id)")?.int(
                        "n"
                    )
                )
            }
            #expect(items == 1280)
            #expect(events == 1280)
            #expect(orphans == 0)
        }
    }

    @Test("a unit that fails inside a batch rolls back alone; the others commit")
    func failingUnitRollsBackAlone() async throws {
        try await TestDatabase.with(poolSize: 8) { database in
            try await Self.makeTables(database)
            let outcomes = await withTaskGroup(of: (Int, Result<String, Error>).self) { group in
                for n in 0..<100 {
                    group.addTask {
                        do { return (n, .success(try await Self.writeUnit(database, n, fail: n % 5 == 0))) } catch { return (n, .failure(error)) }
                    }
                }
                return await group.reduce(into: [(Int, Result<String, Error>)]()) { $0.append($1) }
            }
            for (n, outcome) in outcomes {
                switch outcome {
                case .success: #expect(n % 5 != 0)
                case .failure(let error): #expect(n % 5 == 0 && error is UnitFailure, "unit \(n): \(error)")
                }
            }
            let committed = try await database.read { tx in try tx.query("SELECT n FROM items ORDER BY n").map { try $0.int("n") } }
            #expect(committed == (0..<100).filter { $0 % 5 != 0 }.map(Int64.init))
            let events = try await database.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM item_events")?.int("n") }
            #expect(events == 80)
        }
    }

    @Test("a unique violation is reported as such and writes nothing")
    func uniqueViolation() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTables(database)
            try await database.write { tx in try tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'x', 1)") }
            await #expect(throws: StorageError.self) {
                try await database.write { tx in
                    try tx.execute("INSERT INTO item_events (id, item_id, kind) VALUES ('e', 'a', 'k')")
                    try tx.execute("INSERT INTO items (id, name, n) VALUES ('a', 'y', 2)")
                }
            }
            let events = try await database.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM item_events")?.int("n") }
            #expect(events == 0)
        }
    }

    @Test("values round-trip through both engines")
    func valuesRoundTrip() async throws {
        try await TestDatabase.with { database in
            try await database.write { tx in
                try tx.execute(
                    "CREATE TABLE v (t TEXT, i BIGINT, d DOUBLE PRECISION, b {blob}, z TEXT)".replacingOccurrences(
                        of: "{blob}",
                        with: tx.dialect == .postgres ? "BYTEA" : "BLOB"
                    )
                )
                try tx.execute(
                    "INSERT INTO v (t, i, d, b, z) VALUES (?, ?, ?, ?, ?)",
                    [.text("it's ? here"), .int(Int64.max), .double(2.5), .blob([0, 1, 255]), .null]
                )
            }
            let row = try #require(try await database.read { tx in try tx.queryOne("SELECT * FROM v WHERE t = ?", "it's ? here") })
            #expect(row["t"] == .text("it's ? here"))
            #expect(row["i"] == .int(Int64.max))
            #expect(row["d"] == .double(2.5))
            #expect(row["b"] == .blob([0, 1, 255]))
            #expect(row["z"] == .null)

            let texts = ["", "é ✓ 日本 🚀", String(repeating: "x", count: 100_000)]
            try await database.write { tx in
                for text in texts { try tx.execute("INSERT INTO v (t, b) VALUES (?, ?)", [.text(text), .blob([])]) }
            }
            for text in texts {
                let found = try await database.read { tx in try tx.queryOne("SELECT t, b FROM v WHERE t = ?", text) }
                #expect(found?["t"] == .text(text))
                #expect(found?["b"] == .blob([]))
            }
        }
    }

    @Test("the SQLite file and its -wal and -shm files are readable by their owner only")
    func sqliteFileModes() async throws {
        try await TestDatabase.with { database in
            guard case .sqlite(let path) = database.url else { return }  // SQLite only
            try await Self.makeTables(database)
            _ = try await Self.writeUnit(database, 1)
            _ = try await database.read { tx in try tx.query("SELECT * FROM items") }
            for file in [path, path + "-wal", path + "-shm"] {
                let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(file)")
            }
        }
    }

    @Test("two statements in one call are refused, and a read cannot write")
    func statementMistakes() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTables(database)
            await #expect(throws: (any Error).self) {
                try await database.write { tx in try tx.execute("DELETE FROM items; DROP TABLE items") }
            }
            // A trailing comment is no second statement.
            try await database.write { tx in _ = try tx.execute("DELETE FROM items; -- nothing to delete") }
            _ = try await Self.writeUnit(database, 1)
            if database.dialect == .sqlite {
                await #expect(throws: (any Error).self) {
                    try await database.read { tx in try tx.execute("DELETE FROM items") }
                }
            }
            let count = try await database.read { tx in try tx.queryOne("SELECT count(*) AS n FROM items")?["n"] }
            #expect(count == .int(1))
        }
    }

    @Test("every read sees the writes committed before it, under concurrent reads and writes")
    func readsSeeCommittedWrites() async throws {
        try await TestDatabase.with { database in
            try await Self.makeTables(database)
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<100 {
                    group.addTask {
                        let id = try await Self.writeUnit(database, n)
                        let row = try await database.read { tx in try tx.queryOne("SELECT n FROM items WHERE id = ?", id) }
                        return row?["n"] == .int(Int64(n))
                    }
                }
                for try await seen in group { #expect(seen) }
            }
        }
    }

    @Test("SQLite errors map to what the API answers: unique and foreign-key violations, and a lock held too long (503)")
    func sqliteErrorMapping() {
        let unique = SQLiteEngine.map(SQLiteError(code: SQLiteError.uniqueConstraint, message: "UNIQUE constraint failed", sql: nil))
        #expect({ if case StorageError.uniqueViolation = unique { return true } else { return false } }())
        let foreign = SQLiteEngine.map(SQLiteError(code: SQLiteError.foreignKeyConstraint, message: "FOREIGN KEY", sql: nil))
        #expect({ if case StorageError.foreignKeyViolation = foreign { return true } else { return false } }())
        for busy: CInt in [5, 261, 517, 6] {  // SQLITE_BUSY, _RECOVERY, _SNAPSHOT, SQLITE_LOCKED
            let mapped = SQLiteEngine.map(SQLiteError(code: busy, message: "database is locked", sql: nil))
            #expect({ if case StorageError.unavailable = mapped { return true } else { return false } }(), "\(busy)")
        }
        #expect(SQLiteEngine.map(SQLiteError(code: 1, message: "syntax", sql: nil)) is SQLiteError)
    }

    @Test("a write after the database closed is refused with an error, never left waiting")
    func writeAfterClose() async throws {
        try await TestDatabase.with { database in
            guard database.dialect == .sqlite else { return }  // the SQLite writer's shutdown
            try await Self.makeTables(database)
            await database.close()
            await #expect(throws: StorageError.self) { try await Self.writeUnit(database, 1) }
        }
    }

    @Test("migrations apply once; a second run applies nothing")
    func migrationsAreIdempotent() async throws {
        try await TestDatabase.with(migrate: false) { database in
            let first = try await Migrator.migrate(database)
            #expect(first == Schema.all.map(\.version))
            let second = try await Migrator.migrate(database)
            #expect(second.isEmpty)
        }
    }

    @Test("placeholders become $n outside quoted strings")
    func placeholders() {
        #expect(
            PostgresPlaceholders.convert("SELECT * FROM t WHERE a = ? AND b = '?' AND c IN (?, ?)")
                == "SELECT * FROM t WHERE a = $1 AND b = '?' AND c IN ($2, $3)"
        )
    }

    @Test("ids are prefixed, valid and time-ordered")
    func ids() {
        let early = ID.make("ws", at: Date(timeIntervalSince1970: 1_700_000_000))
        let late = ID.make("ws", at: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(ID.isValid(early, prefix: "ws"))
        #expect(!ID.isValid(early, prefix: "usr"))
        #expect(!ID.isValid("ws_short", prefix: "ws"))
        #expect(early < late)
        #expect(Set((0..<1000).map { _ in ID.make("x") }).count == 1000)
    }

    @Test("database URLs are parsed, and bad ones refused with a reason")
    func databaseURLs() throws {
        #expect(try DatabaseURL(parsing: "sqlite:///var/lib/s.db") == .sqlite(path: "/var/lib/s.db"))
        #expect(try DatabaseURL(parsing: "sqlite://data/s.db") == .sqlite(path: "data/s.db"))
        guard case .postgres(let pg) = try DatabaseURL(parsing: "postgres://sy:pw@db.local:6543/hub?sslmode=require") else {
            Issue.record("not postgres")
            return
        }
        #expect(pg.host == "db.local" && pg.port == 6543 && pg.user == "sy" && pg.password == "pw" && pg.database == "hub" && pg.tls == .require)
        #expect(!"\(DatabaseURL.postgres(pg))".contains("pw"))
        #expect(throws: StorageError.self) { try DatabaseURL(parsing: "mysql://x") }
        #expect(throws: StorageError.self) { try DatabaseURL(parsing: "postgres://h/db?sslmode=maybe") }
    }

    @Test("sslrootcert is taken with sslmode=require or prefer, and refused alone or without TLS")
    func sslRootCertParameter() throws {
        func postgres(_ string: String) throws -> PostgresURL {
            guard case .postgres(let pg) = try DatabaseURL(parsing: string) else { throw UnitFailure() }
            return pg
        }
        func refusal(_ string: String) -> String {
            do {
                _ = try DatabaseURL(parsing: string)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let required = try postgres("postgres://sy:pw@db.example.com/hub?sslmode=require&sslrootcert=/etc/ssl/rds%20bundle.pem")
        #expect(required.tls == .require && required.sslRootCert == "/etc/ssl/rds bundle.pem")
        // Order does not matter, and prefer verifies with the same roots when TLS happens.
        let preferred = try postgres("postgres://sy@db.example.com/hub?sslrootcert=ca.pem&sslmode=prefer")
        #expect(preferred.tls == .prefer && preferred.sslRootCert == "ca.pem")
        #expect(try postgres("postgres://sy@db.example.com/hub?sslmode=require").sslRootCert == nil)

        #expect(refusal("postgres://sy:pw@db.example.com/hub?sslrootcert=/ca.pem").contains("sslrootcert needs sslmode=require"))
        #expect(refusal("postgres://sy:pw@db.example.com/hub?sslmode=disable&sslrootcert=/ca.pem").contains("sslrootcert needs sslmode=require"))
        #expect(refusal("postgres://sy:pw@db.example.com/hub?sslmode=require&sslrootcert=").contains("sslrootcert needs the path"))
        #expect(refusal("postgres://sy:pw@db.example.com/hub?sslmode=require&sslcert=/c.pem").contains("unknown parameter sslcert"))
        #expect(refusal("postgres://sy:pw@db.example.com/hub?sslmode=verify-full").contains("sslmode must be"))
        for string in ["postgres://sy:pw@db.example.com/hub?sslrootcert=/ca.pem", "postgres://sy:pw@db.example.com/hub?sslcert=/c.pem"] {
            #expect(!refusal(string).contains("pw"))
        }
    }

    @Test("an IPv6 host loses its brackets, and gets them back in the description")
    func ipv6Host() throws {
        guard case .postgres(let pg) = try DatabaseURL(parsing: "postgres://sy@[::1]:6543/hub?sslmode=require") else {
            Issue.record("not postgres")
            return
        }
        #expect(pg.host == "::1" && pg.port == 6543)
        #expect("\(DatabaseURL.postgres(pg))" == "postgres://sy@[::1]:6543/hub")
    }

    @Test("a missing, empty or non-PEM sslrootcert stops the database from opening, with the reason")
    func badRootCertFiles() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = folder.appendingPathComponent("empty.pem")
        try Data(" \n".utf8).write(to: empty)
        let garbage = folder.appendingPathComponent("key.pem")
        try Data("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n".utf8).write(to: garbage)
        let cases = [
            (folder.appendingPathComponent("missing.pem").path, "no such file"),
            (folder.path, "is a directory"),
            (empty.path, "the file is empty"),
            (garbage.path, "no certificate in PEM form"),
        ]
        for (path, reason) in cases {
            // 192.0.2.1 (TEST-NET) is never reached: the file is refused before any connection.
            let url = try DatabaseURL(parsing: "postgres://sy:secret-pw@192.0.2.1/hub?sslmode=require&sslrootcert=\(path)")
            do {
                _ = try await Database.open(url, logger: Logger(label: "test"))
                Issue.record("\(path) was accepted")
            } catch {
                let message = "\(error)"
                #expect(message.contains("sslrootcert=\(path): \(reason)"), "\(message)")
                #expect(!message.contains("secret-pw"))
            }
        }
        #expect(try PostgresTLS.rootCertificates(try CAFile.path()).count == 1)
        #expect(try PostgresTLS.rootCertificates(try CAFile.path(contents: CAFile.pem + CAFile.pem)).count == 2)
    }
}
