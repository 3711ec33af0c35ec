import Foundation

/// Claims for job tables. A job table has `id` (TEXT primary key), `next_attempt_at` and
/// `leased_until` (BIGINT milliseconds, NULL when free); what a job holds beyond that is its
/// feature's business.
extension SQLTx {
    /// Leases up to `limit` due jobs of `table` until `leasedUntil` and returns their rows, oldest
    /// due first. A job is due when `next_attempt_at <= now`, its lease is free or has ended, and
    /// `condition` (with its `arguments`) holds. `table` and `condition` are inlined: constants
    /// from code, never input.
    ///
    /// On PostgreSQL, `SKIP LOCKED` lets concurrent claimers pass over each other's rows instead of
    /// waiting on them, and a row another claimer leased since this statement's snapshot fails the
    /// lease check when it is re-read under its lock. The chosen ids are `MATERIALIZED` so the
    /// locking `LIMIT` runs once whatever plan is chosen (a re-scanned subquery could pick more).
    /// On SQLite the single writer already makes the statement exclusive.
    public func claimDue(
        from table: String,
        where condition: String? = nil,
        arguments: [SQLValue] = [],
        now: Date,
        leasedUntil: Date,
        limit: Int
    ) throws -> [SQLRow] {
        guard limit > 0 else { return [] }
        let extra = condition.map { "(\($0)) AND " } ?? ""
        return try query(
            """
            WITH due AS MATERIALIZED (
                SELECT id FROM \(table)
                WHERE \(extra)next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?)
                ORDER BY next_attempt_at, id LIMIT ?\(dialect.skipLocked))
            UPDATE \(table) SET leased_until = ? WHERE id IN (SELECT id FROM due) RETURNING *
            """,
            arguments + [now.sqlValue, now.sqlValue, limit.sqlValue, leasedUntil.sqlValue]
        )
    }
}

/// Periodic jobs: one row per job in `periodic_jobs`, due again `interval` after each run, so the
/// processes sharing a database run it once per interval between them.
enum PeriodicJobStore {
    static let table = "periodic_jobs"

    /// Makes the job due at `at` at the latest, creating its row if this is its first time: a
    /// process that starts runs its periodic jobs at once.
    static func makeDue(_ tx: SQLTx, id: String, at: Date) throws {
        try tx.execute(
            """
            INSERT INTO periodic_jobs (id, next_attempt_at) VALUES (?, ?)
            ON CONFLICT (id) DO UPDATE SET next_attempt_at = CASE
                WHEN excluded.next_attempt_at < periodic_jobs.next_attempt_at THEN excluded.next_attempt_at
                ELSE periodic_jobs.next_attempt_at END
            """,
            id,
            at
        )
    }

    /// Claims the job when it is due; a row that does not exist yet is created due now.
    static func claim(_ tx: SQLTx, id: String, now: Date, leasedUntil: Date) throws -> Bool {
        try tx.execute("INSERT INTO periodic_jobs (id, next_attempt_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", id, now)
        return try !tx.claimDue(from: table, where: "id = ?", arguments: [.text(id)], now: now, leasedUntil: leasedUntil, limit: 1).isEmpty
    }

    /// Records a run and frees the lease; `error` is nil when it went well.
    static func finish(_ tx: SQLTx, id: String, ranAt: Date, nextAttemptAt: Date, error: String?) throws {
        try tx.execute(
            "UPDATE periodic_jobs SET last_run_at = ?, last_error = ?, next_attempt_at = ?, leased_until = NULL WHERE id = ?",
            ranAt,
            error,
            nextAttemptAt,
            id
        )
    }

    static func nextAttemptAt(_ tx: SQLTx, id: String) throws -> Date? {
        try tx.queryOne("SELECT next_attempt_at FROM periodic_jobs WHERE id = ?", id)?.date("next_attempt_at")
    }
}
