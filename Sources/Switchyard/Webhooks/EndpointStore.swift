import Foundation

/// SQL for webhook endpoints.
enum EndpointStore {
    /// An endpoint row with its sealed secrets, which only delivery and the secret route open.
    struct Row: Sendable {
        var endpoint: Endpoint
        var secret: [UInt8]
        var previousSecret: [UInt8]?
        var previousSecretUntil: Date?
        var secretHeaders: [UInt8]?
        var failingSince: Date?
        var exhaustedInARow: Int
    }

    static func insert(_ tx: SQLTx, _ endpoint: Endpoint, secret: [UInt8], secretHeaders: [UInt8]?) throws {
        try tx.execute(
            """
            INSERT INTO webhook_endpoints (id, workspace_id, name, description, url, status, subscriptions, alert_emails, headers,
                secret_headers, secret_header_names, rate_limit, ordering, secret, created_by_type, created_by_id, created_at, updated_at,
                transformation)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(endpoint.id), .text(endpoint.workspaceID), endpoint.name.sqlValue, endpoint.description.sqlValue,
                .text(endpoint.url), .text(endpoint.status.rawValue), .text(endpoint.subscriptions.jsonText),
                .text(JSONValue.array(endpoint.alertEmails.map(JSONValue.string)).jsonText),
                .text(JSONValue.object(endpoint.headers.mapValues(JSONValue.string)).jsonText),
                secretHeaders.map(SQLValue.blob) ?? .null,
                .text(JSONValue.array(endpoint.secretHeaderNames.map(JSONValue.string)).jsonText),
                endpoint.rateLimit.sqlValue, endpoint.fifo ? .text("fifo") : .null, .blob(secret),
                endpoint.createdBy?.type.sqlValue ?? .null, endpoint.createdBy?.id.sqlValue ?? .null,
                endpoint.createdAt.sqlValue, endpoint.updatedAt.sqlValue, endpoint.transformation.sqlValue,
            ]
        )
    }

    /// Writes every member a PATCH may change.
    static func update(_ tx: SQLTx, _ endpoint: Endpoint, secretHeaders: [UInt8]??, reactivated: Bool) throws {
        var sql = """
            UPDATE webhook_endpoints SET name = ?, description = ?, url = ?, status = ?, subscriptions = ?, alert_emails = ?,
                headers = ?, secret_header_names = ?, rate_limit = ?, ordering = ?, disabled_at = ?, disabled_reason = ?, updated_at = ?,
                transformation = ?
            """
        var arguments: [SQLValue] = [
            endpoint.name.sqlValue, endpoint.description.sqlValue, .text(endpoint.url), .text(endpoint.status.rawValue),
            .text(endpoint.subscriptions.jsonText), .text(JSONValue.array(endpoint.alertEmails.map(JSONValue.string)).jsonText),
            .text(JSONValue.object(endpoint.headers.mapValues(JSONValue.string)).jsonText),
            .text(JSONValue.array(endpoint.secretHeaderNames.map(JSONValue.string)).jsonText),
            endpoint.rateLimit.sqlValue, endpoint.fifo ? .text("fifo") : .null, endpoint.disabledAt.sqlValue,
            endpoint.disabledReason.sqlValue, endpoint.updatedAt.sqlValue, endpoint.transformation.sqlValue,
        ]
        if let secretHeaders {
            sql += ", secret_headers = ?"
            arguments.append(secretHeaders.map(SQLValue.blob) ?? .null)
        }
        // Re-enabled: the failure streak that disabled it starts over.
        if reactivated { sql += ", failing_since = NULL, exhausted_in_a_row = 0" }
        sql += " WHERE id = ?"
        arguments.append(.text(endpoint.id))
        try tx.execute(sql, arguments)
    }

    static func row(_ tx: SQLTx, id: String, workspaceID: String, forUpdate: Bool = false) throws -> Row? {
        try tx.query(
            "SELECT * FROM webhook_endpoints WHERE id = ? AND workspace_id = ?\(forUpdate ? tx.dialect.forUpdate : "")",
            [.text(id), .text(workspaceID)]
        ).first.map(row(from:))
    }

    static func row(_ tx: SQLTx, id: String) throws -> Row? {
        try tx.queryOne("SELECT * FROM webhook_endpoints WHERE id = ?", id).map(row(from:))
    }

    /// Locks the endpoint's row until the transaction ends (PostgreSQL; SQLite's writer already
    /// serialises): FIFO fan-out and FIFO results take it, so neither misses the other's turn.
    static func lock(_ tx: SQLTx, id: String) throws {
        _ = try tx.queryOne("SELECT id FROM webhook_endpoints WHERE id = ?\(tx.dialect.forUpdate)", id)
    }

    /// `createdByApp`: only the endpoints that app made.
    static func list(
        _ tx: SQLTx,
        workspaceID: String,
        status: Endpoint.Status?,
        createdByApp: String? = nil,
        after: String?,
        limit: Int
    ) throws -> [Endpoint] {
        var sql = "SELECT * FROM webhook_endpoints WHERE workspace_id = ?"
        var arguments: [SQLValue] = [.text(workspaceID)]
        if let createdByApp {
            sql += " AND created_by_type = 'app' AND created_by_id = ?"
            arguments.append(.text(createdByApp))
        }
        if let status {
            sql += " AND status = ?"
            arguments.append(.text(status.rawValue))
        }
        if let after {
            sql += " AND id > ?"
            arguments.append(.text(after))
        }
        sql += " ORDER BY id LIMIT ?"
        arguments.append(.int(Int64(limit)))
        return try tx.query(sql, arguments).map { try row(from: $0).endpoint }
    }

    /// Endpoints that take deliveries (active or disabled: a disabled one records failed ones) in
    /// the given workspaces, for fan-out.
    static func receiving(_ tx: SQLTx, workspaceIDs: [String]) throws -> [Row] {
        guard !workspaceIDs.isEmpty else { return [] }
        return try tx.query(
            "SELECT * FROM webhook_endpoints WHERE workspace_id IN (\(tx.placeholders(workspaceIDs.count))) AND status <> 'inactive'",
            workspaceIDs.map(SQLValue.text)
        ).map(row(from:))
    }

    static func delete(_ tx: SQLTx, id: String) throws {
        try tx.execute("DELETE FROM webhook_attempts WHERE endpoint_id = ?", id)
        try tx.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", id)
        try tx.execute("DELETE FROM webhook_endpoints WHERE id = ?", id)
    }

    static func rotateSecret(_ tx: SQLTx, id: String, secret: [UInt8], previous: [UInt8], previousUntil: Date, now: Date) throws {
        try tx.execute(
            "UPDATE webhook_endpoints SET secret = ?, previous_secret = ?, previous_secret_until = ?, updated_at = ? WHERE id = ?",
            [.blob(secret), .blob(previous), previousUntil.sqlValue, now.sqlValue, .text(id)]
        )
    }

    /// A success ends a failure streak. Cheap when there is none: the row is found by its key and
    /// left alone.
    static func noteSuccess(_ tx: SQLTx, id: String) throws {
        try tx.execute(
            "UPDATE webhook_endpoints SET failing_since = NULL, exhausted_in_a_row = 0 WHERE id = ? AND (failing_since IS NOT NULL OR exhausted_in_a_row > 0)",
            id
        )
    }

    /// A failed attempt: the streak's start is kept, the error replaced; an exhausted delivery
    /// counts towards `--webhook-disable-after-failures`. Returns the streak after it.
    static func noteFailure(
        _ tx: SQLTx,
        id: String,
        error: String,
        exhausted: Bool,
        now: Date
    ) throws -> (status: String, failingSince: Date?, exhaustedInARow: Int)? {
        try tx.query(
            """
            UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?), last_error = ?,
                exhausted_in_a_row = exhausted_in_a_row + ? WHERE id = ?
            RETURNING status, failing_since, exhausted_in_a_row
            """,
            [now.sqlValue, .text(error), .int(exhausted ? 1 : 0), .text(id)]
        ).first.map { row in
            (try row.string("status"), row.optionalDate("failing_since"), Int(try row.int("exhausted_in_a_row")))
        }
    }

    static func disable(_ tx: SQLTx, id: String, reason: String, now: Date) throws -> Bool {
        try tx.execute(
            "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ?, updated_at = ? WHERE id = ? AND status = 'active'",
            now,
            reason,
            now,
            id
        ) > 0
    }

    /// Disables every endpoint an app made; answers how many.
    static func disable(_ tx: SQLTx, createdByApp appID: String, reason: String, now: Date) throws -> Int {
        try tx.execute(
            """
            UPDATE webhook_endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ?, updated_at = ?
            WHERE created_by_type = 'app' AND created_by_id = ? AND status <> 'disabled'
            """,
            now,
            reason,
            now,
            appID
        )
    }

    static func row(from row: SQLRow) throws -> Row {
        func strings(_ column: String) throws -> [String] {
            guard case .array(let items) = try JSONValue.parse(text: try row.string(column)) else { return [] }
            return items.compactMap(\.stringValue)
        }
        let headers = try JSONValue.parse(text: try row.string("headers")).objectValue?.compactMapValues(\.stringValue) ?? [:]
        let createdBy = row.optionalString("created_by_type").map { Record.CreatedBy(type: $0, id: row.optionalString("created_by_id")) }
        let endpoint = Endpoint(
            id: try row.string("id"),
            workspaceID: try row.string("workspace_id"),
            name: row.optionalString("name"),
            description: row.optionalString("description"),
            url: try row.string("url"),
            status: Endpoint.Status(rawValue: try row.string("status")) ?? .inactive,
            subscriptions: try JSONValue.parse(text: try row.string("subscriptions")),
            alertEmails: try strings("alert_emails"),
            headers: headers,
            secretHeaderNames: try strings("secret_header_names"),
            rateLimit: row.optionalInt("rate_limit").map(Int.init),
            fifo: row.optionalString("ordering") == "fifo",
            transformation: row.optionalString("transformation"),
            disabledAt: row.optionalDate("disabled_at"),
            disabledReason: row.optionalString("disabled_reason"),
            lastError: row.optionalString("last_error"),
            createdBy: createdBy,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
        return Row(
            endpoint: endpoint,
            secret: try row.blob("secret"),
            previousSecret: row.optionalBlob("previous_secret"),
            previousSecretUntil: row.optionalDate("previous_secret_until"),
            secretHeaders: row.optionalBlob("secret_headers"),
            failingSince: row.optionalDate("failing_since"),
            exhaustedInARow: Int(row.optionalInt("exhausted_in_a_row") ?? 0)
        )
    }
}
