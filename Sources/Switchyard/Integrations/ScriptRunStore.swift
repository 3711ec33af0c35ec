import Foundation

/// SQL for test runs and connector runs (`script_runs`). What is stored is redacted already.
enum ScriptRunStore {
    static let columns = """
        r.id, r.kind, r.integration_id, r.connection_id, r.workspace_id, r.target, r.status, r.input, r.output, r.logs,
        r.auth_logs, r.http_calls, r.error, r.duration_ms, r.created_by_type, r.created_by_id, r.created_at,
        c.status AS connection_status, c.last_authorized_at AS connection_last_authorized_at
        """

    static func insert(_ tx: SQLTx, _ run: ScriptRun) throws {
        try tx.execute(
            """
            INSERT INTO script_runs (id, kind, integration_id, connection_id, workspace_id, target, status, input, output, logs,
                                     auth_logs, http_calls, error, duration_ms, created_by_type, created_by_id, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            run.id,
            run.kind.rawValue,
            run.integrationId,
            run.connectionId,
            run.workspaceId,
            run.target,
            run.status.rawValue,
            run.input.jsonText,
            run.output?.jsonText,
            ScriptRun.json(run.logs).jsonText,
            ScriptRun.json(run.authLogs).jsonText,
            ScriptRun.json(run.httpCalls).jsonText,
            run.error.map { ScriptRun.json($0).jsonText },
            run.durationMs,
            run.createdBy.type,
            run.createdBy.id,
            run.createdAt
        )
    }

    /// An integration's test runs, newest first, before `after` (a run id).
    static func testRuns(_ tx: SQLTx, integrationID: String, after: String?, limit: Int) throws -> [ScriptRun] {
        try page(tx, "r.integration_id = ? AND r.kind = 'test'", integrationID, after: after, limit: limit)
    }

    /// A connection's connector runs (not the test runs that used it), newest first.
    static func runs(_ tx: SQLTx, connectionID: String, after: String?, limit: Int) throws -> [ScriptRun] {
        try page(tx, "r.connection_id = ? AND r.kind = 'run'", connectionID, after: after, limit: limit)
    }

    static func run(_ tx: SQLTx, id: String) throws -> ScriptRun? {
        try tx.queryOne("SELECT \(columns) FROM script_runs r LEFT JOIN connections c ON c.id = r.connection_id WHERE r.id = ?", id)
            .map(run(from:))
    }

    private static func page(_ tx: SQLTx, _ condition: String, _ id: String, after: String?, limit: Int) throws -> [ScriptRun] {
        var sql = "SELECT \(columns) FROM script_runs r LEFT JOIN connections c ON c.id = r.connection_id WHERE \(condition)"
        var arguments: [SQLValue] = [.text(id)]
        if let after {
            sql += " AND r.id < ?"
            arguments.append(.text(after))
        }
        sql += " ORDER BY r.id DESC LIMIT ?"
        arguments.append(.int(Int64(limit)))
        return try tx.query(sql, arguments).map(run(from:))
    }

    static func run(from row: SQLRow) throws -> ScriptRun {
        let connectionID = row.optionalString("connection_id")
        var connection: ScriptRun.ConnectionSummary?
        if let connectionID, let status = row.optionalString("connection_status").flatMap(Connection.Status.init(rawValue:)) {
            connection = ScriptRun.ConnectionSummary(
                id: connectionID,
                status: status,
                lastAuthorizedAt: row.optionalDate("connection_last_authorized_at")
            )
        }
        return ScriptRun(
            id: try row.string("id"),
            kind: ScriptRun.Kind(rawValue: try row.string("kind")) ?? .run,
            integrationId: try row.string("integration_id"),
            connectionId: connectionID,
            workspaceId: row.optionalString("workspace_id"),
            target: try row.string("target"),
            status: ScriptStatus(rawValue: try row.string("status")) ?? .crashed,
            input: try JSONValue.parse(text: try row.string("input")),
            output: try row.optionalString("output").map { try JSONValue.parse(text: $0) },
            logs: ScriptRun.logs(from: try JSONValue.parse(text: try row.string("logs"))),
            authLogs: ScriptRun.logs(from: try JSONValue.parse(text: try row.string("auth_logs"))),
            httpCalls: ScriptRun.calls(from: try JSONValue.parse(text: try row.string("http_calls"))),
            error: try row.optionalString("error").flatMap { ScriptRun.failure(from: try JSONValue.parse(text: $0)) },
            durationMs: row.optionalDouble("duration_ms") ?? 0,
            connection: connection,
            createdBy: Record.CreatedBy(type: row.optionalString("created_by_type") ?? "system", id: row.optionalString("created_by_id")),
            createdAt: try row.date("created_at")
        )
    }
}
