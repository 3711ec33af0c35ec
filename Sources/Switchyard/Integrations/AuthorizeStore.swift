import Foundation

/// An Authorize flow under way: who started it for which connection, and its PKCE verifier
/// (sealed). The state itself is never stored, only its SHA-256.
struct AuthorizeState: Sendable {
    var stateHash: String
    var connectionID: String
    var integrationID: String
    var workspaceID: String
    var sealedVerifier: [UInt8]?
    var expiresAt: Date
    var usedAt: Date?
    var createdBy: Record.CreatedBy?
    var createdAt: Date
}

/// SQL for `authorize_states`.
enum AuthorizeStore {
    static func insert(_ tx: SQLTx, _ state: AuthorizeState) throws {
        try tx.execute(
            """
            INSERT INTO authorize_states (state_hash, connection_id, integration_id, workspace_id, code_verifier, expires_at,
                                          created_by_type, created_by_id, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            state.stateHash,
            state.connectionID,
            state.integrationID,
            state.workspaceID,
            state.sealedVerifier.map(SQLValue.blob) ?? .null,
            state.expiresAt,
            state.createdBy?.type,
            state.createdBy?.id,
            state.createdAt
        )
    }

    static func state(_ tx: SQLTx, hash: String) throws -> AuthorizeState? {
        try tx.queryOne("SELECT * FROM authorize_states WHERE state_hash = ?", hash).map(state(from:))
    }

    /// Uses the state: true for the one caller that found it unused and unexpired.
    static func consume(_ tx: SQLTx, hash: String, now: Date) throws -> Bool {
        try tx.execute(
            "UPDATE authorize_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL AND expires_at > ?",
            now,
            hash,
            now
        ) == 1
    }

    /// Forgets a connection's states that expired before `before` (kept until then, so a replay
    /// is told it was a replay rather than an unknown state).
    static func deleteExpired(_ tx: SQLTx, connectionID: String, before: Date) throws {
        try tx.execute("DELETE FROM authorize_states WHERE connection_id = ? AND expires_at < ?", connectionID, before)
    }

    static func state(from row: SQLRow) throws -> AuthorizeState {
        AuthorizeState(
            stateHash: try row.string("state_hash"),
            connectionID: try row.string("connection_id"),
            integrationID: try row.string("integration_id"),
            workspaceID: try row.string("workspace_id"),
            sealedVerifier: row.optionalBlob("code_verifier"),
            expiresAt: try row.date("expires_at"),
            usedAt: row.optionalDate("used_at"),
            createdBy: row.optionalString("created_by_type").map { Record.CreatedBy(type: $0, id: row.optionalString("created_by_id")) },
            createdAt: try row.date("created_at")
        )
    }
}
