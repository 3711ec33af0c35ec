import Foundation
import NIOConcurrencyHelpers

/// The event log. Record changes append their event inside their own transaction (a
/// transactional outbox): an event exists exactly when its change committed.
public struct EventService: Sendable {
    let database: Database
    let clock: any WallClock
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    /// Whether an event type is a record change's (`work_order.created`), which only records
    /// write. Objects decides (`ObjectTypeService.ownsEventType`); passed in because Objects
    /// depends on Events, not the other way round.
    let isRecordEventType: @Sendable (SQLTx, _ workspaceID: String, _ type: String) throws -> Bool
    /// Told of every append (before its commit), so the delivery worker wakes.
    let appended: EventSignal
    /// Days events are kept (`--event-retention-days`); nil keeps the log whole.
    var retentionDays: Int? = nil
    /// The host event types this process knows are in `host_event_types` already.
    let hostTypes = HostEventTypeCache()

    /// Appends an event in the caller's transaction.
    @discardableResult
    public func append(
        _ tx: SQLTx,
        workspaceID: String,
        type: String,
        objectType: String? = nil,
        recordID: String? = nil,
        data: JSONValue,
        changedFields: [String: JSONValue]? = nil,
        actor: AuditContext,
        createdBy: Record.CreatedBy? = nil
    ) throws -> Event {
        let now = clock.now
        let event = Event(
            id: ID.make("evt", at: now),
            workspaceId: workspaceID,
            type: type,
            objectType: objectType,
            recordId: recordID,
            data: data,
            changedFields: changedFields,
            actor: Event.Actor(type: actor.actorType, id: actor.actorID),
            createdBy: createdBy,
            occurredAt: now
        )
        try EventStore.insert(tx, event, dataJSON: data.jsonText)
        appended.signal()
        return event
    }

    /// A record's event, with its data already written as JSON (the record's own answer), so a
    /// write encodes the record once.
    public func appendRecordEvent(
        _ tx: SQLTx,
        workspaceID: String,
        type: String,
        record: Record,
        recordJSON: String,
        changedFields: [String: JSONValue]? = nil,
        actor: AuditContext
    ) throws {
        let now = clock.now
        let event = Event(
            id: ID.make("evt", at: now),
            workspaceId: workspaceID,
            type: type,
            objectType: record.type,
            recordId: record.id,
            data: .null,
            changedFields: changedFields,
            actor: Event.Actor(type: actor.actorType, id: actor.actorID),
            createdBy: record.createdBy,
            occurredAt: now
        )
        try EventStore.insert(tx, event, dataJSON: recordJSON)
        appended.signal()
    }

    /// `invoice.paid`, `work_order.note_added`: lower-case words joined by dots, at least two.
    static func validateType(_ type: String) throws -> String {
        let parts = type.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            type.count <= 100 && parts.count >= 2
            && parts.allSatisfy { part in
                guard let first = part.first, first.isLowercase, first.isASCII else { return false }
                return part.allSatisfy { ($0.isLowercase || $0.isNumber || $0 == "_") && $0.isASCII }
            }
        guard valid else {
            throw APIError.validation("`type` must be dotted lower-case words such as `invoice.paid` (a-z, 0-9, _).", field: "type")
        }
        return type
    }

    /// Whether the caller may post `input` in the workspace: integration managers, and never a
    /// record change's event type.
    public func authorizePost(_ tx: SQLTx, _ input: PostEventInput, workspaceID: String, by principal: Principal) throws {
        try principal.require(Role.integrationManagers, to: "post events")
        _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
        if try isRecordEventType(tx, workspaceID, input.type) {
            throw APIError.validation("`\(input.type)` is the event of a record change; those are written by the records themselves.", field: "type")
        }
    }

    /// A host's own event, in the caller's transaction (`authorizePost` first). Its type is noted
    /// for the event type catalog the first time this process sees it; `didCommitPost` after the
    /// transaction tells the process it need not note it again.
    public func post(_ tx: SQLTx, _ input: PostEventInput, workspaceID: String, by principal: Principal, audit: AuditContext) throws -> Event {
        let event = try append(tx, workspaceID: workspaceID, type: input.type, data: input.data ?? .object([:]), actor: principal.audit(from: audit))
        if !hostTypes.contains(workspaceID: workspaceID, type: input.type) {
            try EventStore.recordHostType(tx, workspaceID: workspaceID, type: input.type, at: event.occurredAt)
        }
        return event
    }

    /// After a post committed: its type is in `host_event_types`, so later posts skip the insert.
    /// Only then, so that a post rolled back after its insert cannot hide the type.
    public func didCommitPost(_ input: PostEventInput, workspaceID: String) {
        hostTypes.insert(workspaceID: workspaceID, type: input.type)
    }

    /// The host event types the workspace has posted (any time, even if their events are gone), by type.
    public func hostEventTypes(_ tx: SQLTx, workspaceID: String) throws -> [(type: String, firstPostedAt: Date)] {
        try EventStore.hostTypes(tx, workspaceID: workspaceID)
    }

    public func list(
        workspaceID: String,
        caller: Caller,
        after: String?,
        types: [String],
        limit: Int
    ) async throws -> [Event] {
        guard types.count <= 50 else { throw APIError.validation("`type` takes at most 50 values.", field: "type") }
        if let after, !ID.isValid(after, prefix: "evt") {
            throw APIError.validation("`after` must be an event id (the `next_after` of the previous page).", field: "after")
        }
        return try await authenticator.read(caller) { tx, principal in
            try principal.require(Role.readers, or: "events:read", to: "read events")
            _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
            var start: (id: String, position: Int64)?
            if let after {
                guard let position = try EventStore.position(tx, of: after, workspaceID: workspaceID) else {
                    if try isExpired(tx, after, workspaceID: workspaceID) {
                        throw APIError(
                            .cursorExpired,
                            detail:
                                "Event \(after) is no longer in the log (events are kept \(retentionDays.map { "\($0) days" } ?? "for a limited time")): "
                                + "start again from the oldest event, without `after`.",
                            field: "after"
                        )
                    }
                    throw APIError.validation("`after` must be the id of an event of this workspace (the `next_after` of a page).", field: "after")
                }
                start = (after, position)
            }
            return try EventStore.list(tx, workspaceID: workspaceID, after: start, types: types, limit: limit)
        }
    }

    /// The log of every workspace in commit order after `after`, for the delivery worker.
    public func log(_ tx: SQLTx, after: (position: Int64, id: String), limit: Int) throws -> [(event: Event, position: Int64)] {
        try EventStore.log(tx, after: after, limit: limit)
    }

    public func head(_ tx: SQLTx) throws -> (position: Int64, id: String) { try EventStore.head(tx) }

    public func events(_ tx: SQLTx, ids: [String]) throws -> [String: Event] {
        Dictionary(try EventStore.events(tx, ids: ids).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether `after`, an event id the log does not hold, names one that retention removed: it is
    /// older than the oldest event left, or (retention on) made before the retention cutoff, which
    /// also covers a log that retention emptied.
    private func isExpired(_ tx: SQLTx, _ after: String, workspaceID: String) throws -> Bool {
        if let oldest = try EventStore.oldestID(tx, workspaceID: workspaceID), after < oldest { return true }
        guard let retentionDays else { return false }
        return after < ID.floor("evt", at: clock.now.addingTimeInterval(-Double(retentionDays) * 86_400))
    }

    /// Removes events older than `days` once they are of no more use: every delivery finished and
    /// the webhook fan-out past them; their deliveries and attempts go with them. In batches, so a
    /// first sweep of a long log never holds the writer for long. Housekeeping runs it.
    @discardableResult
    public func deleteExpired(olderThanDays days: Int) async throws -> Int {
        try await deleteExpired(before: ID.floor("evt", at: clock.now.addingTimeInterval(-Double(days) * 86_400)))
    }

    /// `deleteExpired` for the events with an id below `floor`.
    func deleteExpired(before floor: String, batchSize: Int = 1000) async throws -> Int {
        var deleted = 0
        while true {
            let batch = try await database.write { tx in try EventStore.deleteExpired(tx, before: floor, limit: batchSize) }
            deleted += batch
            if batch < batchSize { return deleted }
        }
    }
}

/// Host event types known to be recorded, per process: posting events is a hot path, and the
/// insert that notes a type is needed once per workspace and type.
final class HostEventTypeCache: Sendable {
    private let known = NIOLockedValueBox<Set<String>>([])

    func contains(workspaceID: String, type: String) -> Bool {
        known.withLockedValue { $0.contains(workspaceID + " " + type) }
    }

    func insert(workspaceID: String, type: String) {
        known.withLockedValue { known in
            // A bound, not a policy: forgetting only costs an insert that does nothing.
            if known.count >= 100_000 { known.removeAll() }
            known.insert(workspaceID + " " + type)
        }
    }
}
