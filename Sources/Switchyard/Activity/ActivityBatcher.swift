import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Activity entries written in batches rather than each in a transaction of its own: apps'
/// `app.request` entries, one per API call, which would otherwise double the writes of a read.
/// Entries wait in memory and go to the database in one write at least once a `interval` (a
/// second), sooner when `flushSize` are waiting, and once more on graceful shutdown. A process that
/// crashes loses what waited: at most the last second's entries (docs/rate-limits.md). Memory is
/// bounded: beyond `capacity` waiting entries, new ones are dropped and counted
/// (`switchyard_activity_dropped_total`).
public final class ActivityBatcher: Service, Sendable {
    private struct Buffer {
        var entries: [ActivityEntry] = []
        var dropped = 0
        /// The last flush asked for: each waits for the one before, so a flush that returns has
        /// written every entry added before it was called.
        var tail: Task<Void, Error>?
        var flushing = false
    }

    public static let defaultCapacity = 20_000
    /// Rows per INSERT statement: every statement is a round trip on PostgreSQL.
    static let rowsPerStatement = 200

    let database: Database
    let interval: Duration
    let capacity: Int
    let flushSize: Int
    let logger: Logger
    private let buffer = NIOLockedValueBox(Buffer())

    public init(
        database: Database,
        interval: Duration = .seconds(1),
        capacity: Int = defaultCapacity,
        flushSize: Int = 1000,
        logger: Logger
    ) {
        self.database = database
        self.interval = interval
        self.capacity = capacity
        self.flushSize = flushSize
        self.logger = logger
    }

    /// Queues an entry; written by the next flush.
    public func add(_ entry: ActivityEntry) {
        enum Outcome { case queued, flush, dropped }
        let outcome = buffer.withLockedValue { buffer -> Outcome in
            guard buffer.entries.count < capacity else {
                buffer.dropped += 1
                return .dropped
            }
            buffer.entries.append(entry)
            guard buffer.entries.count >= flushSize, !buffer.flushing else { return .queued }
            buffer.flushing = true
            return .flush
        }
        switch outcome {
        case .queued:
            break
        case .flush:
            Task { [self] in
                do { try await flush() } catch {
                    logger.warning("activity: a batch of entries could not be written", metadata: ["error": "\(error)"])
                }
            }
        case .dropped:
            Counter(label: "switchyard_activity_dropped_total", dimensions: [("action", entry.action)]).increment()
        }
    }

    /// How many entries wait, and how many were dropped since start.
    public var counts: (waiting: Int, dropped: Int) {
        buffer.withLockedValue { ($0.entries.count, $0.dropped) }
    }

    /// Writes every waiting entry in one transaction. Tests call this instead of waiting a second.
    /// On failure the entries wait again (within the capacity) for the next flush.
    public func flush() async throws {
        let task = buffer.withLockedValue { buffer -> Task<Void, Error> in
            let previous = buffer.tail
            let task = Task { [self] in
                _ = await previous?.result
                try await writeWaiting()
            }
            buffer.tail = task
            return task
        }
        try await task.value
    }

    private func writeWaiting() async throws {
        let batch = buffer.withLockedValue { buffer -> [ActivityEntry] in
            let batch = buffer.entries
            buffer.entries = []
            buffer.flushing = false
            return batch
        }
        guard !batch.isEmpty else { return }
        do {
            try await database.write { tx in
                var start = 0
                while start < batch.count {
                    let end = min(start + Self.rowsPerStatement, batch.count)
                    try ActivityStore.insert(tx, batch[start..<end])
                    start = end
                }
            }
        } catch {
            buffer.withLockedValue { buffer in
                let room = max(0, capacity - buffer.entries.count)
                buffer.dropped += max(0, batch.count - room)
                buffer.entries.insert(contentsOf: batch.prefix(room), at: 0)
            }
            throw error
        }
    }

    /// Flushes every `interval` until graceful shutdown, then once more.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let interval = interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            do { try await flush() } catch {
                logger.warning("activity: entries could not be written; retried in a second", metadata: ["error": "\(error)"])
            }
        }
        do { try await flush() } catch { logger.error("activity: entries lost at shutdown", metadata: ["error": "\(error)"]) }
    }
}

extension ActivityStore {
    /// Many entries in one INSERT, each with its workspace's name as `insert` gives it: the names
    /// are looked up once per batch, not by a subquery per row, which measured at a third of a
    /// row's insert on SQLite (9.2 → 6.0 µs a row, 200 rows a statement).
    static func insert(_ tx: SQLTx, _ entries: ArraySlice<ActivityEntry>) throws {
        guard !entries.isEmpty else { return }
        let names = try workspaceNames(tx, Set(entries.compactMap { $0.workspaceName == nil ? $0.workspaceId : nil }))
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        var arguments: [SQLValue] = []
        arguments.reserveCapacity(entries.count * 16)
        for entry in entries {
            let workspaceName = entry.workspaceName ?? entry.workspaceId.flatMap { names[$0] }
            arguments += [
                entry.id.sqlValue, entry.occurredAt.sqlValue, entry.actorType.sqlValue, entry.actorId.sqlValue,
                entry.actorLabel.sqlValue, entry.action.sqlValue, entry.targetType.sqlValue, entry.targetId.sqlValue,
                entry.targetLabel.sqlValue, entry.workspaceId.sqlValue, workspaceName.sqlValue, entry.appId.sqlValue,
                entry.ip.sqlValue, entry.outcome.rawValue.sqlValue, entry.detail.sqlValue, entry.requestId.sqlValue,
            ]
        }
        try tx.execute(
            """
            INSERT INTO activity_entries (id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                                          target_label, workspace_id, workspace_name, app_id, ip, outcome, detail, request_id)
            VALUES \(Array(repeating: row, count: entries.count).joined(separator: ", "))
            """,
            arguments
        )
    }

    /// The names of the workspaces with these ids that exist.
    private static func workspaceNames(_ tx: SQLTx, _ ids: Set<String>) throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let rows = try tx.query("SELECT id, name FROM workspaces WHERE id IN (\(tx.placeholders(ids.count)))", ids.sorted().map(\.sqlValue))
        var names: [String: String] = [:]
        for row in rows { names[try row.string("id")] = try row.string("name") }
        return names
    }
}
