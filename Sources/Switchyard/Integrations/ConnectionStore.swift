import Foundation

/// SQL for connections. `secrets` is sealed by the caller; it is read only by `secrets(_:id:)`.
enum ConnectionStore {
    static let columns = """
        c.id, c.integration_id, i.name AS integration_name, i.auth_type, c.workspace_id, c.status, c.scopes, c.expires_at,
        c.last_authorized_at, c.last_refreshed_at, c.refresh_failures, c.refresh_not_before, c.refresh_lease_until,
        c.refresh_lease_id, c.last_error, c.last_error_at, c.created_by_type, c.created_by_id, c.created_at, c.updated_at
        """

    static func insert(_ tx: SQLTx, _ connection: Connection, sealedSecrets: [UInt8]?) throws {
        try tx.execute(
            """
            INSERT INTO connections (id, integration_id, workspace_id, status, secrets, scopes, expires_at, last_authorized_at,
                                     last_refreshed_at, created_by_type, created_by_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            connection.id,
            connection.integrationId,
            connection.workspaceId,
            connection.status.rawValue,
            sealedSecrets.map(SQLValue.blob) ?? .null,
            connection.scopes.map(IntegrationStore.stringArrayText),
            connection.expiresAt,
            connection.lastAuthorizedAt,
            connection.lastRefreshedAt,
            connection.createdBy?.type,
            connection.createdBy?.id,
            connection.createdAt,
            connection.updatedAt
        )
    }

    static func connection(_ tx: SQLTx, id: String) throws -> Connection? {
        try row(tx, id: id).map(connection(from:))
    }

    static func connection(_ tx: SQLTx, integrationID: String, workspaceID: String) throws -> Connection? {
        try tx.queryOne(
            "SELECT \(columns) FROM connections c JOIN integrations i ON i.id = c.integration_id WHERE c.integration_id = ? AND c.workspace_id = ?",
            integrationID,
            workspaceID
        ).map(connection(from:))
    }

    static func row(_ tx: SQLTx, id: String) throws -> SQLRow? {
        try tx.queryOne("SELECT \(columns) FROM connections c JOIN integrations i ON i.id = c.integration_id WHERE c.id = ?", id)
    }

    /// A workspace's connections, oldest first.
    static func connections(_ tx: SQLTx, workspaceID: String, integrationID: String?, after: String?, limit: Int) throws -> [Connection] {
        var sql = "SELECT \(columns) FROM connections c JOIN integrations i ON i.id = c.integration_id WHERE c.workspace_id = ? AND c.id > ?"
        var arguments: [SQLValue] = [.text(workspaceID), .text(after ?? "")]
        if let integrationID {
            sql += " AND c.integration_id = ?"
            arguments.append(.text(integrationID))
        }
        sql += " ORDER BY c.id LIMIT ?"
        arguments.append(.int(Int64(limit)))
        return try tx.query(sql, arguments).map(connection(from:))
    }

    /// The sealed credentials or tokens.
    static func secrets(_ tx: SQLTx, id: String) throws -> [UInt8]? {
        try tx.queryOne("SELECT secrets FROM connections WHERE id = ?", id)?.optionalBlob("secrets")
    }

    /// New credentials or tokens from an authorization: the connection is active again and its
    /// failures are forgotten. A refresh under way loses its lease, so its answer (from the old
    /// tokens) cannot overwrite these.
    static func authorize(_ tx: SQLTx, id: String, sealedSecrets: [UInt8]?, scopes: [String]?, expiresAt: Date?, at now: Date) throws {
        try tx.execute(
            """
            UPDATE connections SET status = 'active', secrets = ?, scopes = ?, expires_at = ?, last_authorized_at = ?,
                refresh_failures = 0, refresh_not_before = NULL, refresh_lease_until = NULL, refresh_lease_id = NULL,
                last_error = NULL, last_error_at = NULL, updated_at = ?
            WHERE id = ?
            """,
            sealedSecrets.map(SQLValue.blob) ?? .null,
            scopes.map(IntegrationStore.stringArrayText),
            expiresAt,
            now,
            now,
            id
        )
    }

    static func setStatus(_ tx: SQLTx, id: String, _ status: Connection.Status, error: String?, at now: Date) throws {
        try tx.execute(
            "UPDATE connections SET status = ?, last_error = ?, last_error_at = ?, updated_at = ? WHERE id = ?",
            status.rawValue,
            error,
            error == nil ? nil : now,
            now,
            id
        )
    }

    /// Notes what went wrong (a refused callback, a failed check) without changing the status.
    static func setError(_ tx: SQLTx, id: String, _ message: String, at now: Date) throws {
        try tx.execute(
            "UPDATE connections SET last_error = ?, last_error_at = ?, updated_at = ? WHERE id = ?",
            String(message.prefix(1000)),
            now,
            now,
            id
        )
    }

    static func delete(_ tx: SQLTx, id: String) throws -> Bool {
        try tx.execute("DELETE FROM authorize_states WHERE connection_id = ?", id)
        return try tx.execute("DELETE FROM connections WHERE id = ?", id) > 0
    }

    static func refreshState(from row: SQLRow) -> ConnectionRefreshState {
        ConnectionRefreshState(
            failures: Int(row.optionalInt("refresh_failures") ?? 0),
            notBefore: row.optionalDate("refresh_not_before"),
            leaseUntil: row.optionalDate("refresh_lease_until"),
            leaseID: row.optionalString("refresh_lease_id")
        )
    }

    static func connection(from row: SQLRow) throws -> Connection {
        Connection(
            id: try row.string("id"),
            integrationId: try row.string("integration_id"),
            integrationName: try row.string("integration_name"),
            workspaceId: try row.string("workspace_id"),
            status: Connection.Status(rawValue: try row.string("status")) ?? .needsReauthorization,
            authType: AuthSpec.Kind(rawValue: try row.string("auth_type")) ?? .none,
            scopes: try row.optionalString("scopes").map(AppStore.stringArray),
            expiresAt: row.optionalDate("expires_at"),
            lastAuthorizedAt: row.optionalDate("last_authorized_at"),
            lastRefreshedAt: row.optionalDate("last_refreshed_at"),
            lastError: row.optionalString("last_error").map {
                Connection.LastError(message: $0, at: row.optionalDate("last_error_at") ?? Date(millisecondsSince1970: 0))
            },
            createdBy: row.optionalString("created_by_type").map { Record.CreatedBy(type: $0, id: row.optionalString("created_by_id")) },
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }
}
