import Foundation

/// The event log. Record changes append their event inside their own transaction (a
/// transactional outbox): an event exists exactly when its change committed.
public struct EventService: Sendable {
    let clock: any WallClock
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    /// Whether an event type is a record change's (`work_order.created`), which only records
    /// write. Objects decides (`ObjectTypeService.ownsEventType`); passed in because Objects
    /// depends on Events, not the other way round.
    let isRecordEventType: @Sendable (SQLTx, _ workspaceID: String, _ type: String) throws -> Bool
    /// Told of every append (before its commit), so the delivery worker wakes.
    let appended: EventSignal

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

    /// A host's own event, in the caller's transaction (`authorizePost` first).
    public func post(_ tx: SQLTx, _ input: PostEventInput, workspaceID: String, by principal: Principal, audit: AuditContext) throws -> Event {
        try append(tx, workspaceID: workspaceID, type: input.type, data: input.data ?? .object([:]), actor: principal.audit(from: audit))
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
            _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
            var start: (id: String, position: Int64)?
            if let after {
                guard let position = try EventStore.position(tx, of: after, workspaceID: workspaceID) else {
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
}
