import Foundation
import GRDB
import Logging
import Switchyard

// Storage benchmarks and the write load used by the crash test. Figures are ratios to a baseline
// measured in the same run, because these machines are shared and noisy.
//
//   switchyard-bench storage [--seconds S]      units/s through Switchyard's storage (SQLite, and
//                                                PostgreSQL when SWITCHYARD_BENCH_POSTGRES_URL is set)
//                                                beside GRDB written directly in batched transactions
//   switchyard-bench reads [--seconds S]        point reads/s on PostgreSQL (SWITCHYARD_BENCH_POSTGRES_URL),
//                                                one and three statements a read body
//   switchyard-bench scripts [--seconds S]      isolated script runs (worker pool, fresh context each) beside
//                                                the same function in a warm in-process context (ScriptsBench.swift)
//   switchyard-bench write-load DATABASE_URL     writes units forever (64 writers), printing the count;
//                                                e2e/test_crash.py kills it mid-write

let logger = Logger(label: "bench")
let arguments = Array(CommandLine.arguments.dropFirst())
let writers = 64

/// One unit: a row and its event, as a record change writes them (sent without waiting for the
/// answers, as the record and event stores do).
let schema = [
    "CREATE TABLE IF NOT EXISTS bench_items (id TEXT PRIMARY KEY, name TEXT NOT NULL, n BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_events (id TEXT PRIMARY KEY, item_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL)",
]

@Sendable func writeUnit(_ tx: SQLTx, _ n: Int) throws {
    let id = ID.make("rec")
    try tx.send("INSERT INTO bench_items (id, name, n) VALUES (?, ?, ?)", id, "item \(n)", n)
    try tx.send(
        "INSERT INTO bench_events (id, item_id, kind, payload) VALUES (?, ?, ?, ?)",
        ID.make("evt"),
        id,
        "item.created",
        #"{"n":\#(n)}"#
    )
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "switchyard-bench-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Units per second through `Database.write` from 64 concurrent writers for `seconds`.
func measureStorage(_ url: DatabaseURL, seconds: Double) async throws -> Double {
    let database = try await Database.open(url, logger: logger)
    try await database.write { tx in for sql in schema { try tx.execute(sql) } }
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let start = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for writer in 0..<writers {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    let n = writer * 10_000_000 + count
                    try await database.write { tx in try writeUnit(tx, n) }
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = ContinuousClock.now - start
    await database.close()
    return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// The baseline: the same rows written by GRDB directly, one writer, 64 units a transaction.
func measureDirectGRDB(seconds: Double) throws -> Double {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = Configuration()
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
    let pool = try DatabasePool(path: directory + "/direct.sqlite", configuration: configuration)
    try pool.write { db in for sql in schema { try db.execute(sql: sql) } }
    let start = Date()
    var total = 0
    while Date().timeIntervalSince(start) < seconds {
        let base = total
        try pool.write { db in
            let item = try db.cachedStatement(sql: "INSERT INTO bench_items (id, name, n) VALUES (?, ?, ?)")
            let event = try db.cachedStatement(sql: "INSERT INTO bench_events (id, item_id, kind, payload) VALUES (?, ?, ?, ?)")
            for n in base..<(base + writers) {
                let id = ID.make("rec")
                try item.execute(arguments: [id, "item \(n)", n])
                try event.execute(arguments: [ID.make("evt"), id, "item.created", #"{"n":\#(n)}"#])
            }
        }
        total += writers
    }
    try pool.close()
    return Double(total) / Date().timeIntervalSince(start)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func storageBenchmark() async throws {
    let seconds = Double(value(after: "--seconds") ?? "4") ?? 4
    let rounds = 3
    print("Storage units (one row + one event row per transaction), \(writers) concurrent writers, \(rounds) rounds of \(seconds) s, median:")
    var ours: [Double] = []
    var direct: [Double] = []
    for _ in 0..<rounds {
        // Interleaved, so a noisy neighbour hurts both sides alike.
        direct.append(try measureDirectGRDB(seconds: seconds))
        let directory = try temporaryDirectory()
        ours.append(try await measureStorage(.sqlite(path: directory + "/bench.sqlite"), seconds: seconds))
        try? FileManager.default.removeItem(atPath: directory)
    }
    let sqlite = median(ours)
    let baseline = median(direct)
    print(String(format: "  SQLite, Switchyard storage (group commit): %8.0f units/s", sqlite))
    print(String(format: "  SQLite, GRDB directly (64 units a tx):      %8.0f units/s", baseline))
    print(String(format: "  ratio Switchyard / direct GRDB:             %8.2f   (target >= 0.50; >= 25,000 units/s)", sqlite / baseline))
    if let postgres = ProcessInfo.processInfo.environment["SWITCHYARD_BENCH_POSTGRES_URL"], !postgres.isEmpty {
        let url = try DatabaseURL(parsing: postgres + (postgres.contains("?") ? "&" : "?") + "pool_size=16")
        var rates: [Double] = []
        for _ in 0..<rounds { rates.append(try await measureStorage(url, seconds: seconds)) }
        let database = try await Database.open(url, logger: logger)
        try await database.write { tx in
            try tx.execute("DROP TABLE bench_items")
            try tx.execute("DROP TABLE bench_events")
        }
        await database.close()
        print(
            String(
                format: "  PostgreSQL, Switchyard storage (group commit): %8.0f units/s   (ratio to SQLite %.2f; target >= 15,000 units/s durable)",
                median(rates),
                median(rates) / sqlite
            )
        )
    } else {
        print("  PostgreSQL: skipped (set SWITCHYARD_BENCH_POSTGRES_URL)")
    }
}

/// Point reads per second through `Database.read` (one and three statements a body) from `tasks`
/// concurrent tasks: what a read snapshot costs (PostgreSQL: a REPEATABLE READ transaction).
func readBenchmark() async throws {
    guard let postgres = ProcessInfo.processInfo.environment["SWITCHYARD_BENCH_POSTGRES_URL"], !postgres.isEmpty else {
        print("reads: set SWITCHYARD_BENCH_POSTGRES_URL")
        return
    }
    let seconds = Double(value(after: "--seconds") ?? "3") ?? 3
    let database = try await Database.open(try DatabaseURL(parsing: postgres + (postgres.contains("?") ? "&" : "?") + "pool_size=16"), logger: logger)
    try await database.write { tx in for sql in schema { try tx.execute(sql) } }
    try await database.write { tx in try writeUnit(tx, 1) }
    let id = try await database.read { tx in try tx.queryOne("SELECT id FROM bench_items LIMIT 1")?.string("id") } ?? ""
    for statements in [1, 3] {
        for tasks in [1, 16] {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        var count = 0
                        while ContinuousClock.now < deadline {
                            try await database.read { tx in
                                for _ in 0..<statements { _ = try tx.queryOne("SELECT n FROM bench_items WHERE id = ?", id) }
                            }
                            count += 1
                        }
                        return count
                    }
                }
                return try await group.reduce(0, +)
            }
            print(String(format: "  PostgreSQL reads, %d statement(s), %2d tasks: %7.0f reads/s", statements, tasks, Double(total) / seconds))
        }
    }
    try await database.write { tx in
        try tx.execute("DROP TABLE bench_items")
        try tx.execute("DROP TABLE bench_events")
    }
    await database.close()
}

/// Writes units until killed, printing how many committed, so a crash test can kill it mid-write.
func writeLoad(_ url: String) async throws {
    let database = try await Database.open(try DatabaseURL(parsing: url), logger: logger)
    try await database.write { tx in for sql in schema { try tx.execute(sql) } }
    let counter = Counter()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in 0..<writers {
            group.addTask {
                var n = writer * 100_000_000
                while true {
                    let unit = n
                    try await database.write { tx in try writeUnit(tx, unit) }
                    n += 1
                    if counter.add() % 1000 == 0 {
                        FileHandle.standardOutput.write(Data("committed \(counter.value)\n".utf8))
                    }
                }
            }
        }
        try await group.waitForAll()
    }
}

final class Counter: @unchecked Sendable {
    // Safe: every access holds the lock.
    private let lock = NSLock()
    private var count = 0
    func add() -> Int {
        lock.withLock {
            count += 1
            return count
        }
    }
    var value: Int { lock.withLock { count } }
}

func value(after flag: String) -> String? {
    guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

switch arguments.first {
case "storage":
    try await storageBenchmark()
case "reads":
    try await readBenchmark()
case "scripts":
    try await scriptsBenchmark()
case "write-load":
    guard arguments.count >= 2 else { fatalError("usage: switchyard-bench write-load DATABASE_URL") }
    try await writeLoad(arguments[1])
default:
    print("usage: switchyard-bench storage [--seconds S] | reads [--seconds S] | scripts [--seconds S] | write-load DATABASE_URL")
    exit(2)
}
