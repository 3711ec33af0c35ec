import Foundation

/// One schema change. Its `statements` are written once in what both engines accept (TEXT,
/// BIGINT); `{blob}` becomes BLOB on SQLite and BYTEA on PostgreSQL, the one column type spelled
/// differently. Ids are ULID text, so no migration needs an engine's auto-increment.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]

    public init(_ version: Int, _ name: String, _ statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

public enum Migrator {
    /// Applies every migration not yet applied, in one transaction. On PostgreSQL an advisory lock (per
    /// schema) lets several processes start at once; on SQLite the single writer already serialises them.
    /// Returns the versions it applied.
    @discardableResult
    public static func migrate(_ database: Database, migrations: [Migration] = Schema.all, now: Date = Date()) async throws -> [Int] {
        try await database.write { tx in
            if tx.dialect == .postgres {
                // Per schema: installations (and test runs) in other schemas of the same database
                // migrate side by side instead of queueing behind one lock.
                _ = try tx.query("SELECT pg_advisory_xact_lock(7715042, hashtext(current_schema())) AS locked")
            }
            try tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            let applied = Set(try tx.query("SELECT version FROM schema_migrations").map { try $0.int("version") })
            var done: [Int] = []
            for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(Int64(migration.version)) {
                for statement in migration.statements {
                    try tx.execute(Self.translate(statement, for: tx.dialect))
                }
                try tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    migration.version,
                    migration.name,
                    now
                )
                done.append(migration.version)
            }
            return done
        }
    }

    static func translate(_ sql: String, for dialect: SQLDialect) -> String {
        switch dialect {
        case .sqlite: return sql.replacingOccurrences(of: "{blob}", with: "BLOB")
        case .postgres: return sql.replacingOccurrences(of: "{blob}", with: "BYTEA")
        }
    }
}
