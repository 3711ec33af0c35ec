import Foundation
import Metrics
import NIOConcurrencyHelpers

/// The activity log. Changes record their entry inside their own transaction, so an entry exists
/// exactly when the change does; refusals (bad sign-in, bad token) are recorded on their own.
public struct ActivityService: Sendable {
    let database: Database
    let clock: any WallClock
    let floodBudget = FloodBudget(perMinute: 60)

    /// Records an entry inside the caller's transaction.
    public func record(
        _ tx: SQLTx,
        _ audit: AuditContext,
        action: String,
        targetType: String? = nil,
        targetID: String? = nil,
        targetLabel: String? = nil,
        workspaceID: String? = nil,
        outcome: ActivityEntry.Outcome = .success,
        detail: String? = nil
    ) throws {
        let now = clock.now
        try ActivityStore.insert(
            tx,
            ActivityEntry(
                id: ID.make("act", at: now),
                occurredAt: now,
                actorType: audit.actorType,
                actorId: audit.actorID,
                actorLabel: audit.actorLabel,
                action: action,
                targetType: targetType,
                targetId: targetID,
                targetLabel: targetLabel,
                workspaceId: workspaceID,
                workspaceName: nil,
                appId: audit.appID,
                ip: audit.ip,
                outcome: outcome,
                detail: detail,
                requestId: audit.requestID
            )
        )
    }

    /// Records a refusal in a transaction of its own. `flood`: a refusal anyone can cause at will
    /// (a bad token, a throttled sign-in): at most 60 a minute per address and action are written,
    /// the rest only counted (`switchyard_activity_unrecorded_total`), so a flood cannot fill the
    /// disk. Not for what a limit is counted from (failed sign-ins).
    public func recordFailure(
        _ audit: AuditContext,
        action: String,
        detail: String,
        flood: Bool = false,
        targetType: String? = nil,
        targetID: String? = nil,
        targetLabel: String? = nil
    ) async throws {
        if flood, !floodBudget.allow("\(action) \(audit.ip ?? "-")", now: clock.now) {
            Counter(label: "switchyard_activity_unrecorded_total", dimensions: [("action", action)]).increment()
            return
        }
        try await database.write { tx in
            try record(
                tx,
                audit,
                action: action,
                targetType: targetType,
                targetID: targetID,
                targetLabel: targetLabel,
                outcome: .failure,
                detail: detail
            )
        }
    }

    /// Failures of `action` since `since` by `actorLabel` or from `ip`, oldest first, for
    /// throttling: the log is shared by every process, so the count is too.
    public func recentFailures(
        action: String,
        actorLabel: String,
        ip: String?,
        since: Date
    ) async throws
        -> [(occurredAt: Date, actorLabel: String?, ip: String?)]
    {
        try await database.read { tx in
            try ActivityStore.recentFailures(tx, action: action, actorLabel: actorLabel, ip: ip, since: since)
        }
    }

    /// Deletes entries older than `days`; housekeeping calls this when a retention is set. By id
    /// (time-ordered, so the primary key finds them) and in batches, so the first sweep of a long
    /// log never holds the writer for long.
    @discardableResult
    public func deleteOlderThan(days: Int) async throws -> Int {
        let floor = ID.floor("act", at: clock.now.addingTimeInterval(-Double(days) * 86_400))
        var deleted = 0
        while true {
            let batch = try await database.write { tx in
                try ActivityStore.deleteBatch(tx, before: floor, limit: 5000)
            }
            deleted += batch
            if batch < 5000 { return deleted }
        }
    }

    public func list(_ filter: ActivityFilter) async throws -> [ActivityEntry] {
        try await database.read { tx in try ActivityStore.list(tx, filter) }
    }
}

/// Per key, how many entries this minute; the table starts afresh each minute, so it holds at most
/// the keys of one minute. Per process: with several processes each writes its own share.
final class FloodBudget: Sendable {
    private let perMinute: Int
    private let state = NIOLockedValueBox<(minute: Int64, counts: [String: Int])>((0, [:]))

    init(perMinute: Int) {
        self.perMinute = perMinute
    }

    func allow(_ key: String, now: Date) -> Bool {
        let minute = Int64((now.timeIntervalSince1970 / 60).rounded(.down))
        return state.withLockedValue { state in
            if state.minute != minute { state = (minute, [:]) }
            let count = state.counts[key, default: 0]
            guard count < perMinute else { return false }
            state.counts[key] = count + 1
            return true
        }
    }
}
