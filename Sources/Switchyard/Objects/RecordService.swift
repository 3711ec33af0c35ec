import Foundation

/// Records: validated against their type, versioned, and each change written with its event (and
/// activity entry) in one transaction.
public final class RecordService: Sendable {
    let clock: any WallClock
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let types: ObjectTypeService
    let activity: ActivityService
    let events: EventService

    init(
        clock: any WallClock,
        authenticator: Authenticator,
        workspaces: WorkspaceService,
        types: ObjectTypeService,
        activity: ActivityService,
        events: EventService
    ) {
        self.clock = clock
        self.authenticator = authenticator
        self.workspaces = workspaces
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

    /// Claims the values of the type's unique fields for a record; one another record holds is a
    /// conflict naming the field.
    private func claimUniqueValues(_ tx: SQLTx, type: ObjectType, recordID: String, fields: [String: JSONValue]) throws {
        if let taken = try ObjectStore.claimUniqueValues(tx, type: type, recordID: recordID, fields: fields) {
            throw APIError.conflict(
                "Another \(type.key) record (\(taken.holder)) has this `\(taken.field)`; it must be unique.",
                field: "fields.\(taken.field)"
            )
        }
    }

    /// Users who manage integrations write records; an app needs `type:action` (updates are
    /// checked field by field once the patch is known, `apply`).
    private static func writer(_ principal: Principal, _ typeKey: String, _ action: String) throws {
        if case .app = principal, action == "update" { return }
        try principal.require(Role.integrationManagers, or: "\(typeKey):\(action)", to: "\(action) \(typeKey) records")
    }

    private static func reader(_ principal: Principal, _ typeKey: String) throws {
        try principal.require(Role.readers, or: "\(typeKey):read", to: "read \(typeKey) records")
    }

    /// The record a PATCH or DELETE changes, locked against concurrent writers, at the version the
    /// client expects (`If-Match`), else 412.
    private func recordToChange(
        _ tx: SQLTx,
        _ principal: Principal,
        workspaceID: String,
        typeKey: String,
        id: String,
        expectedVersion: Int64?,
        action: String
    ) throws -> (ObjectType, Record) {
        try Self.writer(principal, typeKey, action)
        let type = try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal, lock: .share)
        guard ID.isValid(id, prefix: "rec"), let record = try ObjectStore.record(tx, type: type, id: id, forUpdate: true) else {
            throw APIError.notFound("\(typeKey) record", id)
        }
        if let expectedVersion, expectedVersion != record.version {
            throw APIError(
                .versionMismatch,
                detail: "The record is at version \(record.version), not \(expectedVersion): read it again and retry."
            )
        }
        return (type, record)
    }

    /// The type a create writes into, share-locked, if the caller may write records of it.
    public func authorizeCreate(_ tx: SQLTx, workspaceID: String, typeKey: String, by principal: Principal) throws -> ObjectType {
        try Self.writer(principal, typeKey, "create")
        return try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal, lock: .share)
    }

    /// What a create reads, sent before the caller's token is looked up (`Authenticator.createOnce`'s
    /// `prefetch`): the workspace and the type, share-locked.
    public func prefetchCreate(_ tx: SQLTx, workspaceID: String, typeKey: String) -> ObjectTypeService.PendingType {
        types.prefetchType(tx, workspaceID: workspaceID, key: typeKey, lock: .share)
    }

    /// `authorizeCreate` from the rows `prefetchCreate` sent.
    public func authorizeCreate(_ pending: ObjectTypeService.PendingType, by principal: Principal) throws -> ObjectType {
        try Self.writer(principal, pending.key, "create")
        return try types.objectType(pending, by: principal)
    }

    /// Creates a record of `type` in the caller's transaction (`authorizeCreate` first), with its
    /// event and activity entry. Answers it as stored: its fields are serialized once, for the
    /// row, the event and the answer alike (`StoredRecord.record()` parses them again).
    public func create(
        _ tx: SQLTx,
        _ input: RecordInput,
        type: ObjectType,
        by principal: Principal,
        audit: AuditContext
    ) throws -> StoredRecord {
        let now = clock.now
        let fields = try RecordValidator(type: type).validateCreate(input.fields)
        try checkReferences(tx, type: type, fields: fields, changed: nil)
        let record = Record(
            id: ID.make("rec", at: now),
            workspaceId: type.workspaceId,
            type: type.key,
            fields: fields,
            version: 1,
            createdAt: now,
            updatedAt: now,
            createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID)
        )
        let fieldsJSON = JSONValue.object(fields).jsonText
        try ObjectStore.insert(tx, record, fieldsJSON: fieldsJSON, objectTypeID: type.id)
        try claimUniqueValues(tx, type: type, recordID: record.id, fields: fields)
        let actor = principal.audit(from: audit)
        let stored = StoredRecord(record, fieldsJSON: fieldsJSON)
        try events.appendRecordEvent(
            tx,
            workspaceID: type.workspaceId,
            type: "\(type.key).created",
            record: record,
            recordJSON: RecordJSON.render(stored),
            actor: actor
        )
        try activity.record(tx, actor, action: "record.created", targetType: type.key, targetID: record.id, workspaceID: type.workspaceId)
        return stored
    }

    /// A record as stored, from one read (authentication included): the hot path.
    public func get(workspaceID: String, typeKey: String, id: String, caller: Caller) async throws -> StoredRecord {
        let wellFormed = ID.isValid(id, prefix: "rec")
        return try await authenticator.read(
            caller,
            prefetch: { tx in wellFormed ? ObjectStore.storedRecord(tx, workspaceID: workspaceID, typeKey: typeKey, id: id) : nil }
        ) { [self] tx, principal, pending in
            if let (record, mode) = try pending?.get() {
                try workspaces.requireAccess(principal, workspaceID: workspaceID, mode: mode)
                try Self.reader(principal, typeKey)
                return record
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
        caller: Caller
    ) async throws -> RecordPage {
        try await authenticator.read(caller) { [self] tx, principal in
            let type = try types.objectType(tx, workspaceID: workspaceID, key: typeKey, by: principal)
            try Self.reader(principal, typeKey)
            var query = try RecordQueryParser.parse(type: type, filters: filters, sort: sort, after: after)
            query.limit = limit
            return try ObjectStore.recordPage(tx, type: type, query: query)
        }
    }

    /// A partial update. `expectedVersion` (from `If-Match`) must be the stored version, else 412.
    public func update(
        _ input: RecordInput,
        workspaceID: String,
        typeKey: String,
        id: String,
        expectedVersion: Int64?,
        caller: Caller
    ) async throws -> Record {
        do {
            return try await authenticator.write(caller) { [self] tx, principal in
                let (type, record) = try recordToChange(
                    tx,
                    principal,
                    workspaceID: workspaceID,
                    typeKey: typeKey,
                    id: id,
                    expectedVersion: expectedVersion,
                    action: "update"
                )
                return try apply(input, to: record, of: type, tx: tx, by: principal, actor: principal.audit(from: caller.audit))
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
        caller: Caller
    ) async throws {
        try await authenticator.write(caller) { [self] tx, principal in
            let (type, record) = try recordToChange(
                tx,
                principal,
                workspaceID: workspaceID,
                typeKey: typeKey,
                id: id,
                expectedVersion: expectedVersion,
                action: "delete"
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
            let actor = principal.audit(from: caller.audit)
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

    /// Writes a patch that passed validation onto a locked record, with its event and activity
    /// entry; a patch that changes nothing writes nothing.
    private func apply(
        _ input: RecordInput,
        to current: Record,
        of type: ObjectType,
        tx: SQLTx,
        by principal: Principal,
        actor: AuditContext
    ) throws -> Record {
        var record = current
        let now = clock.now
        let previous = record.fields
        let fields = try RecordValidator(type: type).validatePatch(input.fields, onto: previous)
        var changed: [String: JSONValue] = [:]
        for key in Set(previous.keys).union(fields.keys) where previous[key] != fields[key] {
            changed[key] = previous[key] ?? .null
        }
        guard !changed.isEmpty else { return record }
        if case .app(let app) = principal {
            for key in changed.keys.sorted() {
                if let missing = app.grants.missingUpdate(type: type.key, field: key, value: fields[key] ?? .null) {
                    throw APIError.forbidden(
                        "The app \(app.name) may not change `\(key)` of \(type.key) records\(fields[key].map { " to \(Permission.valueText($0))" } ?? ""): "
                            + "it lacks the permission `\(missing)` (or `\(type.key):update`)."
                    )
                }
            }
        }
        try checkReferences(tx, type: type, fields: fields, changed: Set(changed.keys))
        let version = record.version
        record.fields = fields
        record.version += 1
        record.updatedAt = now
        guard try ObjectStore.update(tx, record, expectedVersion: version) else {
            throw APIError(
                .versionMismatch,
                detail: "The record changed while this update ran: read it again and retry."
            )
        }
        if type.fields.contains(where: { $0.unique && changed[$0.key] != nil }) {
            try claimUniqueValues(tx, type: type, recordID: record.id, fields: fields)
        }
        try events.appendRecordEvent(
            tx,
            workspaceID: type.workspaceId,
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
            workspaceID: type.workspaceId,
            detail: changed.keys.sorted().joined(separator: ", ")
        )
        return record
    }
}
