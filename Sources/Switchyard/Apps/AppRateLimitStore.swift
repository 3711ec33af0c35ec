import Foundation

/// SQL for the shared token buckets of apps (`app_rate_buckets`): one row per app, the tokens it
/// held at `updated_at` (milliseconds). The refill is worked out from the elapsed time whenever a
/// process touches the row, so nothing has to tick.
enum AppRateLimitStore {
    /// What a lease got: the tokens taken for the process's share and what the bucket kept.
    struct Lease: Equatable {
        var taken: Double
        var left: Double
    }

    /// Refills the bucket by the time since its last change (up to `burst`), adds `give` (a share
    /// handed back), then takes up to `want` tokens when at least one is there. One short
    /// transaction, the row locked on PostgreSQL while it runs so concurrent processes take turns.
    /// A new app's bucket starts full.
    static func lease(
        _ tx: SQLTx,
        appID: String,
        rate: Double,
        burst: Double,
        want: Double,
        give: Double = 0,
        now: Date
    ) throws -> Lease {
        let nowMS = now.millisecondsSince1970
        guard let row = try tx.queryOne("SELECT tokens, updated_at FROM app_rate_buckets WHERE app_id = ?" + tx.dialect.forUpdate, appID) else {
            let taken = want >= 1 ? min(want, burst) : 0
            let inserted = try tx.execute(
                "INSERT INTO app_rate_buckets (app_id, tokens, updated_at) VALUES (?, ?, ?) ON CONFLICT (app_id) DO NOTHING",
                appID,
                burst - taken,
                nowMS
            )
            // Another process made the row meanwhile (PostgreSQL): take from it as it is now.
            if inserted == 0 { return try lease(tx, appID: appID, rate: rate, burst: burst, want: want, give: give, now: now) }
            return Lease(taken: taken, left: burst - taken)
        }
        let updatedAt = try row.int("updated_at")
        // Never backwards: another process's clock may run ahead of ours.
        let elapsed = Double(max(0, nowMS - updatedAt)) / 1000
        let refilled = min(burst, (row.optionalDouble("tokens") ?? 0) + elapsed * rate + give)
        let taken = refilled >= 1 ? min(want, refilled) : 0
        try tx.execute(
            "UPDATE app_rate_buckets SET tokens = ?, updated_at = ? WHERE app_id = ?",
            refilled - taken,
            max(updatedAt, nowMS),
            appID
        )
        return Lease(taken: taken, left: refilled - taken)
    }

    /// The bucket's tokens as stored (not refilled), for tests and diagnostics.
    static func storedTokens(_ tx: SQLTx, appID: String) throws -> Double? {
        try tx.queryOne("SELECT tokens FROM app_rate_buckets WHERE app_id = ?", appID)?.optionalDouble("tokens")
    }
}
