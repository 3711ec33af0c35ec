import Foundation

/// SQL of the token lifecycle: the refresh lease (one refresh at a time per connection, across
/// processes), its outcomes, and the refresher's scan for tokens due.
extension ConnectionStore {
    /// When the token was issued: the later of the last refresh and the last authorization.
    static let issuedAtSQL = """
        CASE WHEN COALESCE(last_refreshed_at, 0) > COALESCE(last_authorized_at, 0) THEN last_refreshed_at
        ELSE COALESCE(last_authorized_at, created_at) END
        """

    /// When a token is due: `TokenRefresher.margin` before it expires, or half its lifetime when
    /// that is shorter (the same rule as `TokenRefresher.dueAt`).
    static var dueAtSQL: String {
        let margin = Int64(TokenRefresher.margin * 1000)
        let half = "((expires_at - \(issuedAtSQL)) / 2)"
        return "(expires_at - CASE WHEN \(half) < \(margin) THEN \(half) ELSE \(margin) END)"
    }

    /// The refresh state (failures, cooldown, lease) of a connection.
    static func refreshState(_ tx: SQLTx, id: String) throws -> ConnectionRefreshState? {
        try tx.queryOne(
            "SELECT refresh_failures, refresh_not_before, refresh_lease_until, refresh_lease_id FROM connections WHERE id = ?",
            id
        ).map(refreshState(from:))
    }

    /// Claims the refresh of one connection: true when this caller holds the lease now. The
    /// condition is in the UPDATE itself, so of two processes trying at once exactly one wins.
    static func claimLease(_ tx: SQLTx, id: String, leaseID: String, until: Date, now: Date) throws -> Bool {
        try tx.execute(
            """
            UPDATE connections SET refresh_lease_until = ?, refresh_lease_id = ?
            WHERE id = ? AND (refresh_lease_until IS NULL OR refresh_lease_until <= ?)
            """,
            until,
            leaseID,
            id,
            now
        ) == 1
    }

    /// Claims up to `limit` active connections whose token is due (and not cooling down after a
    /// failure, nor being refreshed elsewhere), all under `leaseID`; answers their ids.
    static func claimDue(_ tx: SQLTx, now: Date, leaseID: String, until: Date, limit: Int) throws -> [String] {
        try tx.query(
            """
            WITH due AS MATERIALIZED (
                SELECT id FROM connections
                WHERE status = 'active' AND expires_at IS NOT NULL AND \(dueAtSQL) <= ?
                    AND (refresh_not_before IS NULL OR refresh_not_before <= ?)
                    AND (refresh_lease_until IS NULL OR refresh_lease_until <= ?)
                ORDER BY expires_at, id LIMIT ?\(tx.dialect.skipLocked))
            UPDATE connections SET refresh_lease_until = ?, refresh_lease_id = ?
            WHERE id IN (SELECT id FROM due) AND (refresh_lease_until IS NULL OR refresh_lease_until <= ?)
            RETURNING id
            """,
            now,
            now,
            now,
            limit,
            until,
            leaseID,
            now
        ).map { try $0.string("id") }
    }

    /// Gives the lease back without changing anything else.
    static func releaseLease(_ tx: SQLTx, id: String, leaseID: String) throws {
        try tx.execute(
            "UPDATE connections SET refresh_lease_until = NULL, refresh_lease_id = NULL WHERE id = ? AND refresh_lease_id = ?",
            id,
            leaseID
        )
    }

    /// New tokens from a refresh, written only while `leaseID` still holds the lease (a
    /// re-authorization meanwhile took it away, and its tokens win). False when it did not.
    static func finishRefresh(
        _ tx: SQLTx,
        id: String,
        leaseID: String,
        sealedSecrets: [UInt8],
        scopes: [String]?,
        expiresAt: Date?,
        at now: Date
    ) throws -> Bool {
        try tx.execute(
            """
            UPDATE connections SET secrets = ?, scopes = ?, expires_at = ?, last_refreshed_at = ?, refresh_failures = 0,
                refresh_not_before = NULL, refresh_lease_until = NULL, refresh_lease_id = NULL, last_error = NULL,
                last_error_at = NULL, updated_at = ?
            WHERE id = ? AND refresh_lease_id = ? AND status = 'active'
            """,
            SQLValue.blob(sealedSecrets),
            scopes.map(IntegrationStore.stringArrayText),
            expiresAt,
            now,
            now,
            id,
            leaseID
        ) == 1
    }

    /// A refresh that failed for now: counted, with a cooldown until `notBefore`.
    static func recordRefreshFailure(
        _ tx: SQLTx,
        id: String,
        leaseID: String,
        failures: Int,
        notBefore: Date,
        error: String,
        at now: Date
    ) throws -> Bool {
        try tx.execute(
            """
            UPDATE connections SET refresh_failures = ?, refresh_not_before = ?, refresh_lease_until = NULL,
                refresh_lease_id = NULL, last_error = ?, last_error_at = ?, updated_at = ?
            WHERE id = ? AND refresh_lease_id = ?
            """,
            failures,
            notBefore,
            String(error.prefix(1000)),
            now,
            now,
            id,
            leaseID
        ) == 1
    }

    /// Nothing to do before `until` (a token without a refresh token, checked again when it expires).
    static func deferRefresh(_ tx: SQLTx, id: String, leaseID: String, until: Date) throws {
        try tx.execute(
            """
            UPDATE connections SET refresh_not_before = ?, refresh_lease_until = NULL, refresh_lease_id = NULL
            WHERE id = ? AND refresh_lease_id = ?
            """,
            until,
            id,
            leaseID
        )
    }

    /// The tokens are dead: the connection waits for someone to authorize it again. False when
    /// the lease was lost meanwhile (a re-authorization won).
    static func requireReauthorization(_ tx: SQLTx, id: String, leaseID: String, failures: Int, error: String, at now: Date) throws -> Bool {
        try tx.execute(
            """
            UPDATE connections SET status = 'needs_reauthorization', refresh_failures = ?, refresh_not_before = NULL,
                refresh_lease_until = NULL, refresh_lease_id = NULL, last_error = ?, last_error_at = ?, updated_at = ?
            WHERE id = ? AND refresh_lease_id = ?
            """,
            failures,
            String(error.prefix(1000)),
            now,
            now,
            id,
            leaseID
        ) == 1
    }
}
