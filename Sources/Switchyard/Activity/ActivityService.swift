import Foundation

/// The activity log. Changes record their entry inside their own transaction, so an entry exists
/// exactly when the change does; refusals (bad sign-in, bad token) are recorded on their own.
public struct ActivityService: Sendable {
    let database: Database
    let clock: any WallClock

    public init(database: Database, clock: any WallClock) {
        self.database = database
        self.clock = clock
    }

    /// Records an entry inside the caller's transaction.
    public func record(_ tx: SQLTx, _ audit: AuditContext, action: String, targetType: String? = nil, targetID: String? = nil,
                       workspaceID: String? = nil, outcome: ActivityEntry.Outcome = .success, detail: String? = nil) throws {
        let now = clock.now
        try ActivityStore.insert(tx, ActivityEntry(
            id: ID.make("act", at: now), occurredAt: now, actorType: audit.actorType, actorId: audit.actorID,
            actorLabel: audit.actorLabel, action: action, targetType: targetType, targetId: targetID,
            workspaceId: workspaceID, appId: audit.appID, ip: audit.ip, outcome: outcome, detail: detail,
            requestId: audit.requestID))
    }

    /// Records a refusal in a transaction of its own.
    public func recordFailure(_ audit: AuditContext, action: String, detail: String) async throws {
        try await database.write { tx in
            try record(tx, audit, action: action, outcome: .failure, detail: detail)
        }
    }

    /// Failures of `action` since `since` by `actorLabel` or from `ip`, oldest first, for
    /// throttling: the log is shared by every process, so the count is too.
    public func recentFailures(action: String, actorLabel: String, ip: String?, since: Date) async throws
        -> [(occurredAt: Date, actorLabel: String?, ip: String?)] {
        try await database.read { tx in
            try ActivityStore.recentFailures(tx, action: action, actorLabel: actorLabel, ip: ip, since: since)
        }
    }

    public func list(_ filter: ActivityFilter) async throws -> [ActivityEntry] {
        try await database.read { tx in try ActivityStore.list(tx, filter) }
    }
}
