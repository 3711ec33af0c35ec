import Foundation

/// SQL for fan-out's place in the event log (the one row of `webhook_fanout`).
enum FanOutStore {
    static let cursorID = "events"

    /// The cursor, locked for this transaction; nil when another process is fanning out (it is
    /// skipped, not waited for), or before the first endpoint was made.
    static func lockCursor(_ tx: SQLTx) throws -> (position: Int64, id: String)? {
        guard let row = try tx.queryOne("SELECT after_position, after_id FROM webhook_fanout WHERE id = ?\(tx.dialect.skipLocked)", cursorID)
        else { return nil }
        return (row.optionalInt("after_position") ?? 0, try row.string("after_id"))
    }

    /// Made with the first endpoint, at the log's head: an installation with a long history does
    /// not send it all, and every event after the endpoint is fanned out.
    static func ensureCursor(_ tx: SQLTx, events: EventService) throws {
        guard try tx.queryOne("SELECT 1 AS one FROM webhook_fanout WHERE id = ?", cursorID) == nil else { return }
        let head = try events.head(tx)
        try tx.execute(
            "INSERT INTO webhook_fanout (id, after_position, after_id) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
            cursorID,
            head.position,
            head.id
        )
    }

    static func moveCursor(_ tx: SQLTx, to position: (position: Int64, id: String)) throws {
        try tx.execute("UPDATE webhook_fanout SET after_position = ?, after_id = ? WHERE id = ?", position.position, position.id, cursorID)
    }

    /// Whether a FIFO endpoint has a delivery under way; its row is locked first, so on PostgreSQL
    /// a result being recorded for it (which locks it too) is seen, not raced.
    static func fifoBusy(_ tx: SQLTx, endpointID: String) throws -> Bool {
        try EndpointStore.lock(tx, id: endpointID)
        return try DeliveryStore.hasPending(tx, endpointID: endpointID)
    }
}
