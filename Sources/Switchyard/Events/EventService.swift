import Foundation

/// The event log. Record changes append their event inside their own transaction (a
/// transactional outbox): an event exists exactly when its change committed.
public struct EventService: Sendable {
    let database: Database
    let clock: any WallClock
    let identity: IdentityService
    /// Whether an event type is a record change's (`work_order.created`), which only records
    /// write. Objects decides (`ObjectTypeService.ownsEventType`); passed in because Objects
    /// depends on Events, not the other way round.
    let isRecordEventType: @Sendable (SQLTx, _ workspaceID: String, _ type: String) throws -> Bool

    public init(
        database: Database,
        clock: any WallClock,
        identity: IdentityService,
        isRecordEventType: @escaping @Sendable (SQLTx, String, String) throws -> Bool
    ) {
        self.database = database
        self.clock = clock
        self.identity = identity
        self.isRecordEventType = isRecordEventType
    }

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

    /// A host's own event. With an idempotency key, a repeat within 24 hours returns the first
    /// event and creates nothing.
    public func post(
        _ input: PostEventInput,
        workspaceID: String,
        credentials: Credentials?,
        idempotencyKey: String?,
        audit: AuditContext
    ) async throws -> (status: Int, body: String) {
        do {
            return try await postOnce(input, workspaceID: workspaceID, credentials: credentials, idempotencyKey: idempotencyKey, audit: audit)
        } catch StorageError.uniqueViolation {
            // A concurrent request with the same key won; its answer is now stored.
            return try await postOnce(input, workspaceID: workspaceID, credentials: credentials, idempotencyKey: idempotencyKey, audit: audit)
        }
    }

    private func postOnce(
        _ input: PostEventInput,
        workspaceID: String,
        credentials: Credentials?,
        idempotencyKey: String?,
        audit: AuditContext
    ) async throws -> (status: Int, body: String) {
        let type = try Self.validateType(input.type)
        let data = input.data ?? .object([:])
        let fingerprint = Idempotency.fingerprint(type, data.jsonText)
        let now = clock.now
        return try await identity.write(credentials, audit: audit) { tx, principal in
            try principal.require(Role.integrationManagers, to: "post events")
            _ = try identity.workspace(tx, id: workspaceID, by: principal)
            if try isRecordEventType(tx, workspaceID, type) {
                throw APIError.validation("`\(type)` is the event of a record change; those are written by the records themselves.", field: "type")
            }
            return try Idempotency.once(
                tx,
                workspaceID: workspaceID,
                scope: "events:\(principal.actorID)",
                key: idempotencyKey,
                fingerprint: fingerprint,
                now: now
            ) {
                let event = try append(tx, workspaceID: workspaceID, type: type, data: data, actor: principal.audit(from: audit))
                return try JSONCoding.encodeText(event)
            }
        }
    }

    public func list(
        workspaceID: String,
        credentials: Credentials?,
        audit: AuditContext,
        after: String?,
        types: [String],
        limit: Int
    ) async throws -> [Event] {
        guard types.count <= 50 else { throw APIError.validation("`type` takes at most 50 values.", field: "type") }
        if let after, !ID.isValid(after, prefix: "evt") {
            throw APIError.validation("`after` must be an event id (the `next_after` of the previous page).", field: "after")
        }
        return try await identity.read(credentials, audit: audit) { tx, principal in
            _ = try identity.workspace(tx, id: workspaceID, by: principal)
            return try EventStore.list(tx, workspaceID: workspaceID, after: after, types: types, limit: limit)
        }
    }
}
