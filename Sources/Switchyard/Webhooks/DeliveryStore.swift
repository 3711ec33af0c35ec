import Foundation

/// SQL for deliveries and their attempts.
enum DeliveryStore {
    static let table = "webhook_deliveries"

    /// A pending delivery by its id. The status is compared as an expression (`|| ''`), so that
    /// no planner can read this as the predicate of `webhook_deliveries_due` and scan that index
    /// for the id, its second column: PostgreSQL did, in a plan cached while the table was small,
    /// and every attempt's record then read every pending delivery's index entry. The primary
    /// key is the only index left to it.
    static let pendingByID = "id = ? AND status || '' = 'pending'"

    // Built once: the attempts' records are the delivery worker's hot path.
    private static let recordSQL = """
        UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, round_attempts = round_attempts + 1,
            next_attempt_at = ?, leased_until = NULL, last_status = ?, last_error = ?, updated_at = ?, finished_at = ?
        WHERE \(pendingByID)
        """
    private static let successSQL = """
        WITH delivered AS (
            UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1, round_attempts = round_attempts + 1,
                next_attempt_at = NULL, leased_until = NULL, last_status = ?, last_error = NULL, updated_at = ?, finished_at = ?
            WHERE \(pendingByID) RETURNING id
        ), logged AS (
            INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, number, url, request_headers, request_body, response_status,
                response_headers, response_body, duration_ms, error, attempted_at)
            SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ? FROM delivered
        )
        UPDATE webhook_endpoints SET failing_since = NULL, exhausted_in_a_row = 0
        WHERE id = ? AND (failing_since IS NOT NULL OR exhausted_in_a_row > 0) AND EXISTS (SELECT 1 FROM delivered)
        """

    /// Writes the deliveries of a fan-out in statements of up to 100 rows (each statement is one
    /// round trip on PostgreSQL). An event already fanned out to an endpoint is skipped.
    static func insert(_ tx: SQLTx, _ deliveries: [Delivery], leasedUntil: Date?) throws {
        for start in stride(from: 0, to: deliveries.count, by: 100) {
            let chunk = deliveries[start..<min(start + 100, deliveries.count)]
            var values: [SQLValue] = []
            values.reserveCapacity(chunk.count * 13)
            for delivery in chunk {
                // Leased at once when due: the process that fans out sends them itself, no claim needed.
                let lease = delivery.status == .pending && delivery.nextAttemptAt != nil ? leasedUntil.sqlValue : .null
                values += [
                    .text(delivery.id), .text(delivery.endpointID), .text(delivery.workspaceID), .text(delivery.eventID),
                    .text(delivery.eventType), .int(delivery.eventPosition), .text(delivery.status.rawValue),
                    delivery.nextAttemptAt.sqlValue, lease, delivery.lastError.sqlValue, delivery.createdAt.sqlValue,
                    delivery.updatedAt.sqlValue, delivery.finishedAt.sqlValue,
                ]
            }
            let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            try tx.execute(
                """
                INSERT INTO webhook_deliveries (id, endpoint_id, workspace_id, event_id, event_type, event_position, status,
                    next_attempt_at, leased_until, last_error, created_at, updated_at, finished_at)
                VALUES \(Array(repeating: row, count: chunk.count).joined(separator: ", "))
                ON CONFLICT (endpoint_id, event_id) DO NOTHING
                """,
                values
            )
        }
    }

    /// Due deliveries of active endpoints, leased to the caller.
    static func claim(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [Delivery] {
        try tx.claimDue(
            from: table,
            where: "status = 'pending' AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE status = 'active')",
            now: now,
            leasedUntil: leasedUntil,
            limit: limit
        ).map(delivery(from:))
    }

    /// A leased delivery given back unsent, due at `until` (a rate limit's next free slot).
    static func postpone(_ tx: SQLTx, id: String, until: Date) throws {
        try tx.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ?, leased_until = NULL WHERE \(pendingByID)",
            until,
            id
        )
    }

    /// Whether the endpoint has a delivery under way, for FIFO fan-out.
    static func hasPending(_ tx: SQLTx, endpointID: String) throws -> Bool {
        try tx.queryOne("SELECT 1 AS one FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'pending' LIMIT 1", endpointID) != nil
    }

    /// Makes a FIFO endpoint's oldest waiting delivery due, unless one is due or under way already.
    static func promoteNext(_ tx: SQLTx, endpointID: String, now: Date) throws {
        try tx.execute(
            """
            UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ?
            WHERE id = (SELECT id FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at IS NULL
                        ORDER BY event_position, event_id LIMIT 1)
              AND NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at IS NOT NULL)
            """,
            now,
            now,
            endpointID,
            endpointID
        )
    }

    /// Every delivery of the endpoint waiting for a FIFO turn becomes due.
    static func releaseWaiting(_ tx: SQLTx, endpointID: String, now: Date) throws {
        try tx.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at IS NULL",
            now,
            now,
            endpointID
        )
    }

    /// The outcome of an attempt: `status` pending with `nextAttemptAt` for a retry. Answers
    /// false when the delivery is gone (its endpoint deleted) or finished already.
    static func record(
        _ tx: SQLTx,
        id: String,
        status: Delivery.Status,
        nextAttemptAt: Date?,
        httpStatus: Int?,
        error: String?,
        now: Date
    ) throws -> Bool {
        try tx.execute(
            recordSQL,
            [
                .text(status.rawValue), nextAttemptAt.sqlValue, httpStatus.sqlValue, error.sqlValue, now.sqlValue,
                status == .pending ? .null : now.sqlValue, .text(id),
            ]
        ) > 0
    }

    /// PostgreSQL's one statement for a successful attempt of a pending delivery: the delivery
    /// succeeded, the attempt logged, the endpoint's failure streak ended. Sent without waiting, so
    /// a batch of results costs no round trip per delivery (the three statements it stands for,
    /// `record`, `insertAttempt` and `noteSuccess`, each waited); a delivery no longer pending
    /// (failed by a disable meanwhile) is left as it is, as `record` leaves it.
    static func recordSuccess(_ tx: SQLTx, _ attempt: DeliveryAttempt, httpStatus: Int, deliveryID: String, now: Date) throws {
        let status = SQLValue.int(Int64(httpStatus))
        try tx.send(
            successSQL,
            [
                status, now.sqlValue, now.sqlValue, .text(deliveryID),
                .text(attempt.id), .text(attempt.endpointID), .int(Int64(attempt.number)), .text(attempt.url),
                .text(DeliveryAttempt.headersJSON(attempt.requestHeaders).jsonText), .text(attempt.requestBody), status,
                .text(DeliveryAttempt.headersJSON(attempt.responseHeaders ?? []).jsonText), .text(attempt.responseBody ?? ""),
                .double(attempt.durationMilliseconds),
                attempt.attemptedAt.sqlValue, .text(attempt.endpointID),
            ]
        )
    }

    static func insertAttempt(_ tx: SQLTx, _ attempt: DeliveryAttempt) throws {
        try tx.execute(
            """
            INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, number, url, request_headers, request_body, response_status,
                response_headers, response_body, duration_ms, error, attempted_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(attempt.id), attempt.deliveryID.sqlValue, .text(attempt.endpointID), .int(Int64(attempt.number)), .text(attempt.url),
                .text(DeliveryAttempt.headersJSON(attempt.requestHeaders).jsonText), .text(attempt.requestBody),
                attempt.responseStatus.sqlValue, attempt.responseHeaders.map { .text(DeliveryAttempt.headersJSON($0).jsonText) } ?? .null,
                attempt.responseBody.sqlValue, .double(attempt.durationMilliseconds), attempt.error.sqlValue, attempt.attemptedAt.sqlValue,
            ]
        )
    }

    /// Every pending delivery of a disabled endpoint fails, so `recover` finds them.
    static func failPending(_ tx: SQLTx, endpointID: String, reason: String, now: Date) throws {
        try tx.execute(
            """
            UPDATE webhook_deliveries SET status = 'failed', last_error = ?, leased_until = NULL, updated_at = ?, finished_at = ?
            WHERE endpoint_id = ? AND status = 'pending'
            """,
            reason,
            now,
            now,
            endpointID
        )
    }

    /// Sends a finished delivery again, its schedule started over: due now, or waiting its turn on
    /// a FIFO endpoint.
    static func restart(_ tx: SQLTx, id: String, endpointID: String, fifo: Bool, now: Date) throws -> Delivery? {
        guard
            let row = try tx.query(
                """
                UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = ?, leased_until = NULL,
                    updated_at = ?, finished_at = NULL
                WHERE id = ? AND endpoint_id = ? RETURNING *
                """,
                [fifo ? .null : now.sqlValue, now.sqlValue, .text(id), .text(endpointID)]
            ).first
        else { return nil }
        if fifo { try promoteNext(tx, endpointID: endpointID, now: now) }
        return try delivery(from: row)
    }

    /// `recover`: every failed delivery of the endpoint created since `since` is sent again.
    static func restartFailed(_ tx: SQLTx, endpointID: String, since: Date, fifo: Bool, now: Date) throws -> Int {
        let count = try tx.execute(
            """
            UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = ?, leased_until = NULL,
                updated_at = ?, finished_at = NULL
            WHERE endpoint_id = ? AND status = 'failed' AND created_at >= ?
            """,
            [fifo ? .null : now.sqlValue, now.sqlValue, .text(endpointID), since.sqlValue]
        )
        if fifo { try promoteNext(tx, endpointID: endpointID, now: now) }
        return count
    }

    static func delivery(_ tx: SQLTx, id: String, endpointID: String) throws -> Delivery? {
        try tx.queryOne("SELECT * FROM webhook_deliveries WHERE id = ? AND endpoint_id = ?", id, endpointID).map(delivery(from:))
    }

    /// Newest first.
    static func list(_ tx: SQLTx, endpointID: String, status: Delivery.Status?, after: String?, limit: Int) throws -> [Delivery] {
        var sql = "SELECT * FROM webhook_deliveries WHERE endpoint_id = ?"
        var arguments: [SQLValue] = [.text(endpointID)]
        if let status {
            sql += " AND status = ?"
            arguments.append(.text(status.rawValue))
        }
        if let after {
            sql += " AND id < ?"
            arguments.append(.text(after))
        }
        sql += " ORDER BY id DESC LIMIT ?"
        arguments.append(.int(Int64(limit)))
        return try tx.query(sql, arguments).map(delivery(from:))
    }

    static func attempts(_ tx: SQLTx, deliveryID: String) throws -> [DeliveryAttempt] {
        try tx.query("SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY number, id", deliveryID).map(attempt(from:))
    }

    static func pendingCount(_ tx: SQLTx) throws -> Int64 {
        try tx.queryOne("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'")?.int("n") ?? 0
    }

    static func delivery(from row: SQLRow) throws -> Delivery {
        Delivery(
            id: try row.string("id"),
            endpointID: try row.string("endpoint_id"),
            workspaceID: try row.string("workspace_id"),
            eventID: try row.string("event_id"),
            eventType: try row.string("event_type"),
            eventPosition: row.optionalInt("event_position") ?? 0,
            status: Delivery.Status(rawValue: try row.string("status")) ?? .failed,
            attempts: Int(row.optionalInt("attempts") ?? 0),
            roundAttempts: Int(row.optionalInt("round_attempts") ?? 0),
            nextAttemptAt: row.optionalDate("next_attempt_at"),
            lastStatus: row.optionalInt("last_status").map(Int.init),
            lastError: row.optionalString("last_error"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            finishedAt: row.optionalDate("finished_at")
        )
    }

    static func attempt(from row: SQLRow) throws -> DeliveryAttempt {
        func headers(_ column: String) throws -> [(String, String)]? {
            guard let text = row.optionalString(column), case .object(let map) = try JSONValue.parse(text: text) else { return nil }
            return map.keys.sorted().map { ($0, map[$0]?.stringValue ?? "") }
        }
        return DeliveryAttempt(
            id: try row.string("id"),
            deliveryID: row.optionalString("delivery_id"),
            endpointID: try row.string("endpoint_id"),
            number: Int(try row.int("number")),
            url: try row.string("url"),
            requestHeaders: try headers("request_headers") ?? [],
            requestBody: try row.string("request_body"),
            responseStatus: row.optionalInt("response_status").map(Int.init),
            responseHeaders: try headers("response_headers"),
            responseBody: row.optionalString("response_body"),
            durationMilliseconds: row.optionalDouble("duration_ms") ?? 0,
            error: row.optionalString("error"),
            attemptedAt: try row.date("attempted_at")
        )
    }
}
