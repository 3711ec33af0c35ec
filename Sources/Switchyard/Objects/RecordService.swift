import Foundation

/// Records: validated against their type, versioned, and each change written with its event (and
/// activity entry) in one transaction.
public struct RecordService: Sendable {
    let database: Database
    let clock: any WallClock
    let identity: IdentityService
    let types: ObjectTypeService
    let activity: ActivityService
    let events: EventService

    public init(
        database: Database,
        clock: any WallClock,
        identity: IdentityService,
        types: ObjectTypeService,
        activity: ActivityService,
        events: EventService
    ) {
        self.database = database
        self.clock = clock
        self.identity = identity
        self.types = types
        self.activity = activity
        self.events = events
    }

    /// Reference fields must point at records of their type in the same workspace.
    private func checkReferences(_ tx: SQLTx, type: ObjectType, fields: [String: JSONValue], changed: Set<String>?) throws {
        for field in type.fields where field.type == .reference {
            guard changed?.contains(field.key) ?? true, let id = fields[field.key]?.stringValue, let target = field.reference else { continue }
            guard try ObjectStore.recordExists(tx, workspaceID: type.workspaceId, typeKey: target, id: id) else {
                throw APIError.validation(
                    "`fields.\(field.key)`: there is no \(target) record \(id) in this workspace.",
                    field: "fields.\(field.key)"
                )
            }
        }
    }

    private static func writer(_ principal: Principal) throws {
        try principal.require(Role.integrationManagers, to: "change records")
    }

    /// The record a PATCH or DELETE changes, locked against concurrent writers, at the version the
    /// client expects (`If-Match`), else 412.
    private func recordToChange(
        _ tx: SQLTx,
        _ principal: Principal,
        workspaceID: String,
        typeKey: String,
        id: String,
        expectedVersion: Int64?
    ) throws -> (ObjectType, Record) {
        try Self.writer(principal)
        let type = try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal, lock: .share)
        guard ID.isValid(id, prefix: "rec"), let record = try ObjectStore.record(tx, type: type, id: id, forUpdate: true) else {
            throw APIError.notFound("\(typeKey) record", id)
        }
        if let expectedVersion, expectedVersion != record.version {
            throw APIError(
                .preconditionFailed,
                "version-mismatch",
                "Version mismatch",
                detail: "The record is at version \(record.version), not \(expectedVersion): read it again and retry."
            )
        }
        return (type, record)
    }

    /// Creates a record. With an idempotency key, a repeat within 24 hours answers as the first
    /// request did and creates nothing.
    public func create(
        _ input: RecordInput,
        workspaceID: String,
        typeKey: String,
        idempotencyKey: String?,
        credentials: Credentials?,
        audit: AuditContext,
        retry: Bool = true
    ) async throws -> (status: Int, body: String) {
        let now = clock.now
        let fingerprint = Idempotency.fingerprint(typeKey, JSONValue.object(input.fields).jsonText)
        do {
            return try await identity.write(credentials, audit: audit) { tx, principal in
                try Self.writer(principal)
                let type = try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal, lock: .share)
                // Per caller: two clients that happen to pick the same key never see each other's answer.
                let scope = "records:\(typeKey):\(principal.actorID)"
                return try Idempotency.once(
                    tx,
                    workspaceID: workspaceID,
                    scope: scope,
                    key: idempotencyKey,
                    fingerprint: fingerprint,
                    now: now
                ) {
                    let fields = try RecordValidator(type: type).validateCreate(input.fields)
                    try checkReferences(tx, type: type, fields: fields, changed: nil)
                    let record = Record(
                        id: ID.make("rec", at: now),
                        workspaceId: workspaceID,
                        type: type.key,
                        fields: fields,
                        version: 1,
                        createdAt: now,
                        updatedAt: now,
                        createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID)
                    )
                    let fieldsJSON = JSONValue.object(fields).jsonText
                    try ObjectStore.insert(tx, record, fieldsJSON: fieldsJSON, objectTypeID: type.id)
                    try ObjectStore.claimUniqueValues(tx, type: type, recordID: record.id, fields: fields)
                    let actor = principal.audit(from: audit)
                    let body = RecordJSON.render(record, fieldsJSON: fieldsJSON)
                    try events.appendRecordEvent(
                        tx,
                        workspaceID: workspaceID,
                        type: "\(type.key).created",
                        record: record,
                        recordJSON: body,
                        actor: actor
                    )
                    try activity.record(tx, actor, action: "record.created", targetType: type.key, targetID: record.id, workspaceID: workspaceID)
                    return body
                }
            }
        } catch StorageError.uniqueViolation(let detail) {
            // Two concurrent requests raced for an idempotency key (the loser now finds the
            // winner's answer) or for a unique value (the retry reports the conflict properly).
            if retry {
                return try await create(
                    input,
                    workspaceID: workspaceID,
                    typeKey: typeKey,
                    idempotencyKey: idempotencyKey,
                    credentials: credentials,
                    audit: audit,
                    retry: false
                )
            }
            throw APIError.conflict("A concurrent request took a unique value or this Idempotency-Key (\(detail)); retry it.")
        }
    }

    /// A record's answer and version, from one read (authentication included): the hot path.
    public func get(
        workspaceID: String,
        typeKey: String,
        id: String,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> (json: String, version: Int64) {
        try await identity.read(credentials, audit: audit) { tx, principal in
            if ID.isValid(id, prefix: "rec"), let row = try ObjectStore.recordRow(tx, workspaceID: workspaceID, typeKey: typeKey, id: id),
                let mode = WorkspaceMode(rawValue: try row.string("workspace_mode"))
            {
                try identity.requireAccess(principal, workspaceID: workspaceID, mode: mode)
                return (try RecordJSON.render(row: row, type: typeKey), try row.int("version"))
            }
            // Say which is missing: the workspace, the type or the record.
            _ = try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal)
            throw APIError.notFound("\(typeKey) record", id)
        }
    }

    /// `filter[field]=value` (repeat for any of several values), `sort` (`created_at`,
    /// `updated_at` or a field key; `-` for descending), `limit`, `after`.
    public func list(
        workspaceID: String,
        typeKey: String,
        filters: [(String, String)],
        sort: String?,
        limit: Int,
        after: String?,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> String {
        try await identity.read(credentials, audit: audit) { tx, principal in
            let type = try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal)
            var query = try RecordQueryParser.parse(type: type, filters: filters, sort: sort, after: after)
            query.limit = limit
            let rows = try ObjectStore.recordRows(tx, type: type, query: query)
            return RecordJSON.page(
                try rows.map { try RecordJSON.render(row: $0, type: type.key) },
                nextAfter: try RecordQueryParser.nextCursor(query, rows)
            )
        }
    }

    /// A partial update. `expectedVersion` (from `If-Match`) must be the stored version, else 412.
    public func update(
        _ input: RecordInput,
        workspaceID: String,
        typeKey: String,
        id: String,
        expectedVersion: Int64?,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> Record {
        let now = clock.now
        do {
            return try await identity.write(credentials, audit: audit) { tx, principal in
                var (type, record) = try recordToChange(
                    tx,
                    principal,
                    workspaceID: workspaceID,
                    typeKey: typeKey,
                    id: id,
                    expectedVersion: expectedVersion
                )
                let previous = record.fields
                let fields = try RecordValidator(type: type).validatePatch(input.fields, onto: previous)
                var changed: [String: JSONValue] = [:]
                for key in Set(previous.keys).union(fields.keys) where previous[key] != fields[key] {
                    changed[key] = previous[key] ?? .null
                }
                guard !changed.isEmpty else { return record }
                try checkReferences(tx, type: type, fields: fields, changed: Set(changed.keys))
                let version = record.version
                record.fields = fields
                record.version += 1
                record.updatedAt = now
                guard try ObjectStore.update(tx, record, expectedVersion: version) else {
                    throw APIError(
                        .preconditionFailed,
                        "version-mismatch",
                        "Version mismatch",
                        detail: "The record changed while this update ran: read it again and retry."
                    )
                }
                if type.fields.contains(where: { $0.unique && changed[$0.key] != nil }) {
                    try ObjectStore.claimUniqueValues(tx, type: type, recordID: record.id, fields: fields)
                }
                let actor = principal.audit(from: audit)
                try events.appendRecordEvent(
                    tx,
                    workspaceID: workspaceID,
                    type: "\(type.key).updated",
                    record: record,
                    recordJSON: RecordJSON.render(record),
                    changedFields: changed,
                    actor: actor
                )
                try activity.record(
                    tx,
                    actor,
                    action: "record.updated",
                    targetType: type.key,
                    targetID: record.id,
                    workspaceID: workspaceID,
                    detail: changed.keys.sorted().joined(separator: ", ")
                )
                return record
            }
        } catch StorageError.uniqueViolation {
            throw APIError.conflict("A concurrent request took a unique value of this record; retry it.")
        }
    }

    public func delete(
        workspaceID: String,
        typeKey: String,
        id: String,
        expectedVersion: Int64?,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws {
        try await identity.write(credentials, audit: audit) { tx, principal in
            let (type, record) = try recordToChange(
                tx,
                principal,
                workspaceID: workspaceID,
                typeKey: typeKey,
                id: id,
                expectedVersion: expectedVersion
            )
            // Restrict, as a database foreign key would: a reference never dangles.
            for (other, field) in try ObjectStore.referencesTo(tx, workspaceID: workspaceID, targetKey: type.key) {
                if let referring = try ObjectStore.recordReferring(tx, type: other, field: field, to: id, except: id) {
                    throw APIError.conflict(
                        "The \(type.key) record \(id) is referenced by the \(other.key) record \(referring) "
                            + "(field `\(field.key)`); delete that record or change its `\(field.key)` first."
                    )
                }
            }
            try ObjectStore.deleteRecord(tx, id: id)
            let actor = principal.audit(from: audit)
            try events.appendRecordEvent(
                tx,
                workspaceID: workspaceID,
                type: "\(type.key).deleted",
                record: record,
                recordJSON: RecordJSON.render(record),
                actor: actor
            )
            try activity.record(tx, actor, action: "record.deleted", targetType: type.key, targetID: id, workspaceID: workspaceID)
        }
    }
}
