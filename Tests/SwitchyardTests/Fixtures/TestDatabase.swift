import Foundation
import Logging

@testable import Switchyard

/// The engine the suite runs on: SQLite unless `SWITCHYARD_TEST_POSTGRES_URL` is set (`make test`
/// runs the suite once each way). Each test gets a database of its own: a temporary SQLite file, or
/// a fresh schema in the PostgreSQL database.
enum TestDatabase {
    static let postgresURL = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }()

    static var engineName: String { postgresURL == nil ? "sqlite" : "postgres" }

    /// Opens a fresh, migrated database, runs `body`, and removes the database afterwards.
    static func with<T>(poolSize: Int = 4, migrate: Bool = true, _ body: (Database) async throws -> T) async throws -> T {
        let (url, cleanup) = try await fresh(poolSize: poolSize)
        let database: Database
        do {
            database = try await Database.open(url, logger: logger)
        } catch {
            try? await cleanup()
            throw error
        }
        let result: T
        do {
            if migrate { try await MigrationTurns.shared.run { try await Migrator.migrate(database) } }
            result = try await body(database)
        } catch {
            await database.close()
            try? await cleanup()
            throw error
        }
        await database.close()
        try await cleanup()
        return result
    }

    static func fresh(poolSize: Int = 4) async throws -> (DatabaseURL, @Sendable () async throws -> Void) {
        if let base = postgresURL {
            let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            let admin = try await Database.open(try DatabaseURL(parsing: base + (base.contains("?") ? "&" : "?") + "pool_size=1"), logger: logger)
            // Closed on every path, so no test leaves its connections (and their threads) behind.
            do {
                try await admin.write { tx in try tx.execute("CREATE SCHEMA \(schema)") }
            } catch {
                await admin.close()
                throw error
            }
            let url = try DatabaseURL(parsing: base + (base.contains("?") ? "&" : "?") + "pool_size=\(poolSize)&search_path=\(schema)")
            return (
                url,
                {
                    // The schemas live in a throwaway cluster: one left behind by a slow drop costs
                    // nothing, an unclosed connection crashes.
                    var failure: (any Error)?
                    do { try await admin.write { tx in try tx.execute("DROP SCHEMA \(schema) CASCADE") } } catch { failure = error }
                    await admin.close()
                    if let failure { throw failure }
                }
            )
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return (
            .sqlite(path: directory.appendingPathComponent("test.sqlite").path),
            {
                try? FileManager.default.removeItem(at: directory)
            }
        )
    }
}

/// Migrations take turns, two at a time, on PostgreSQL. An event is shown only once no older
/// transaction is open anywhere in the cluster, and a migration is one long transaction: the whole
/// suite's migrations run at once (a schema each) held every other test's events back for seconds.
actor MigrationTurns {
    static let shared = MigrationTurns(width: TestDatabase.postgresURL == nil ? 1_000 : 2)

    private let width: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(width: Int) {
        self.width = width
    }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if running >= width {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            running += 1
        }
        defer {
            if waiting.isEmpty { running -= 1 } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}
