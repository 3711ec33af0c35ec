import Foundation

/// SQL for the activity log.
enum ActivityStore {
    /// Deletes up to `limit` of the oldest entries with an id below `floor`; answers how many.
    static func deleteBatch(_ tx: SQLTx, before floor: String, limit: Int) throws -> Int {
        try tx.execute(
            "DELETE FROM activity_entries WHERE id IN (SELECT id FROM activity_entries WHERE id < ? ORDER BY id LIMIT ?)",
            floor,
            limit
        )
    }

    /// Sent without waiting (`SQLTx.send`): nothing reads its answer, and a failure fails the unit.
    static func insert(_ tx: SQLTx, _ entry: ActivityEntry) throws {
        try tx.send(
            """
            INSERT INTO activity_entries (id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                                          target_label, workspace_id, workspace_name, app_id, ip, outcome, detail, request_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT name FROM workspaces WHERE id = ?)), ?, ?, ?, ?, ?)
            """,
            entry.id,
            entry.occurredAt,
            entry.actorType,
            entry.actorId,
            entry.actorLabel,
            entry.action,
            entry.targetType,
            entry.targetId,
            entry.targetLabel,
            entry.workspaceId,
            entry.workspaceName,
            entry.workspaceId,
            entry.appId,
            entry.ip,
            entry.outcome.rawValue,
            entry.detail,
            entry.requestId
        )
    }

    /// Newest first; `after` is the id of the last entry of the previous page.
    /// Through the (action, id) index: an id's time is never before its entry's `occurred_at`, so
    /// `id >= ID.floor(since)` bounds the scan; `occurred_at` then decides, because ids made after
    /// a clock step back carry the later time.
    static func recentFailures(
        _ tx: SQLTx,
        action: String,
        actorLabel: String,
        ip: String?,
        since: Date
    ) throws
        -> [(occurredAt: Date, actorLabel: String?, ip: String?)]
    {
        try tx.query(
            """
            SELECT occurred_at, actor_label, ip FROM activity_entries
            WHERE action = ? AND id >= ? AND occurred_at >= ? AND outcome = 'failure' AND (actor_label = ? OR ip = ?)
            ORDER BY id
            """,
            action,
            ID.floor("act", at: since),
            since,
            actorLabel,
            ip
        ).map { (try $0.date("occurred_at"), $0.optionalString("actor_label"), $0.optionalString("ip")) }
    }

    static func list(_ tx: SQLTx, _ filter: ActivityFilter) throws -> [ActivityEntry] {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        func add(_ condition: String, _ value: SQLBindable?) {
            guard let value else { return }
            conditions.append(condition)
            arguments.append(value.sqlValue)
        }
        add("action = ?", filter.action)
        add("actor_id = ?", filter.actorID)
        add("workspace_id = ?", filter.workspaceID)
        add("target_id = ?", filter.targetID)
        if let app = filter.appID {
            conditions.append("(app_id = ? OR target_id = ?)")
            arguments += [.text(app), .text(app)]
        }
        add("outcome = ?", filter.outcome?.rawValue)
        add("occurred_at >= ?", filter.since)
        add("occurred_at < ?", filter.until)
        add("id < ?", filter.after)
        let clause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments.append(.int(Int64(filter.limit)))
        return try tx.query("SELECT * FROM activity_entries \(clause) ORDER BY id DESC LIMIT ?", arguments).map { row in
            ActivityEntry(
                id: try row.string("id"),
                occurredAt: try row.date("occurred_at"),
                actorType: try row.string("actor_type"),
                actorId: row.optionalString("actor_id"),
                actorLabel: row.optionalString("actor_label"),
                action: try row.string("action"),
                targetType: row.optionalString("target_type"),
                targetId: row.optionalString("target_id"),
                targetLabel: row.optionalString("target_label"),
                workspaceId: row.optionalString("workspace_id"),
                workspaceName: row.optionalString("workspace_name"),
                appId: row.optionalString("app_id"),
                ip: row.optionalString("ip"),
                outcome: ActivityEntry.Outcome(rawValue: try row.string("outcome")) ?? .success,
                detail: row.optionalString("detail"),
                requestId: row.optionalString("request_id")
            )
        }
    }
}
