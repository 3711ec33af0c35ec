import Foundation

/// SQL for the answers kept per `Idempotency-Key`.
enum IdempotencyStore {
    struct Row {
        var fingerprint: String
        var answer: Idempotency.Stored
        var createdAt: Date
    }

    static func find(_ tx: SQLTx, workspaceID: String, scope: String, key: String) throws -> Row? {
        try tx.queryOne("SELECT * FROM idempotency_keys WHERE workspace_id = ? AND scope = ? AND key = ?", workspaceID, scope, key).map {
            Row(
                fingerprint: try $0.string("request_hash"),
                answer: Idempotency.Stored(status: Int(try $0.int("status")), body: try $0.string("body")),
                createdAt: try $0.date("created_at")
            )
        }
    }

    static func delete(_ tx: SQLTx, workspaceID: String, scope: String, key: String) throws {
        try tx.execute("DELETE FROM idempotency_keys WHERE workspace_id = ? AND scope = ? AND key = ?", workspaceID, scope, key)
    }

    static func deleteCreated(_ tx: SQLTx, before date: Date) throws -> Int {
        try tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", date)
    }

    static func insert(
        _ tx: SQLTx,
        workspaceID: String,
        scope: String,
        key: String,
        fingerprint: String,
        answer: Idempotency.Stored,
        now: Date
    ) throws {
        try tx.execute(
            "INSERT INTO idempotency_keys (workspace_id, scope, key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            workspaceID,
            scope,
            key,
            fingerprint,
            answer.status,
            answer.body,
            now
        )
    }
}
