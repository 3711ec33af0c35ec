import Foundation

/// Object types and their data fields: keys, limits, locking, and what changing them does to
/// existing records.
public final class ObjectTypeService: Sendable {
    let database: Database
    let clock: any WallClock
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let activity: ActivityService
    let events: EventService
    let maximumFields: Int

    init(
        database: Database,
        clock: any WallClock,
        authenticator: Authenticator,
        workspaces: WorkspaceService,
        activity: ActivityService,
        events: EventService,
        maximumFields: Int
    ) {
        self.database = database
        self.clock = clock
        self.authenticator = authenticator
        self.workspaces = workspaces
        self.activity = activity
        self.events = events
        self.maximumFields = maximumFields
    }

    /// `work_order`, `due_on`: a lower-case letter, then letters, digits or `_`, at most 63.
    static func validateKey(_ key: String, field: String) throws -> String {
        guard let first = key.first, first.isASCII, first.isLowercase, key.count <= 63,
            key.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
        else {
            throw APIError.validation("`\(field)` must start with a lower-case letter and hold only a-z, 0-9 and _ (at most 63).", field: field)
        }
        return key
    }

    /// The type, if it exists in the workspace (which the caller must reach).
    /// The type, if it exists in the workspace (which the caller must reach). Writers lock it: a
    /// change to the type waits for record writes (`share`) and they for it (`update`), so a
    /// field list is never read half-changed on PostgreSQL.
    func objectType(
        _ tx: SQLTx,
        workspaceID: String,
        key: String,
        by principal: Principal,
        lock: ObjectStore.Lock = .none,
        includeDeleting: Bool = false
    ) throws -> ObjectType {
        _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
        guard let type = try ObjectStore.objectType(tx, workspaceID: workspaceID, key: key, lock: lock, includeDeleting: includeDeleting)
        else {
            throw APIError.notFound(detail: "Workspace \(workspaceID) has no object type `\(key.prefix(63))`.")
        }
        return type
    }

    /// The workspace's and the type's rows, sent before the caller is known (`SQLTx.prefetch`), so
    /// a record create reads them in the round trip of the caller's token.
    public struct PendingType: Sendable {
        let workspaceID: String
        let key: String
        let workspace: SQLPending?
        let type: SQLPending?
    }

    func prefetchType(_ tx: SQLTx, workspaceID: String, key: String, lock: ObjectStore.Lock = .none) -> PendingType {
        guard ID.isValid(workspaceID, prefix: "ws") else { return PendingType(workspaceID: workspaceID, key: key, workspace: nil, type: nil) }
        return PendingType(
            workspaceID: workspaceID,
            key: key,
            workspace: workspaces.prefetchWorkspace(tx, id: workspaceID),
            type: ObjectStore.prefetchObjectType(tx, workspaceID: workspaceID, key: key, lock: lock)
        )
    }

    /// `objectType(_:workspaceID:key:by:)` from the rows `prefetchType` sent.
    func objectType(_ pending: PendingType, by principal: Principal) throws -> ObjectType {
        guard let workspace = pending.workspace, let type = pending.type else {
            // As `workspace(_:id:by:)` answers a malformed id: the role first, then 404.
            try principal.requireReader(to: "use workspaces")
            throw APIError.notFound("workspace", pending.workspaceID)
        }
        _ = try workspaces.workspace(workspace, id: pending.workspaceID, by: principal)
        guard let found = try type.one(ObjectStore.objectType(from:)) else {
            throw APIError.notFound(detail: "Workspace \(pending.workspaceID) has no object type `\(pending.key.prefix(63))`.")
        }
        return found
    }

    /// Whether `type` names a record change of one of the workspace's object types
    /// (`work_order.created`, `.updated`, `.deleted`): such events are written by records only.
    public static func ownsEventType(_ tx: SQLTx, workspaceID: String, type: String) throws -> Bool {
        guard let dot = type.lastIndex(of: "."), ["created", "updated", "deleted"].contains(type[type.index(after: dot)...]) else {
            return false
        }
        return try ObjectStore.objectType(tx, workspaceID: workspaceID, key: String(type[..<dot]), includeDeleting: true) != nil
    }

    /// Every type of the workspace, by key, in the caller's transaction (which has checked the
    /// caller may reach the workspace): webhook subscriptions and the event type catalog read them.
    public func objectTypes(_ tx: SQLTx, workspaceID: String) throws -> [ObjectType] {
        try ObjectStore.objectTypes(tx, workspaceID: workspaceID, after: nil, limit: 100_000)
    }

    public func create(_ input: CreateObjectTypeInput, workspaceID: String, caller: Caller) async throws -> ObjectType {
        let key = try Self.validateKey(input.key, field: "key")
        let name = try Validate.name(input.name)
        let description = try input.description.map { try Validate.name($0, field: "description", maximum: 2000, multiline: true) }
        let inputs = input.fields ?? []
        if inputs.count > maximumFields {
            throw APIError.validation("An object type has at most \(maximumFields) data fields; this one has \(inputs.count).", field: "fields")
        }
        let now = clock.now
        do {
            return try await authenticator.write(caller) { [self] tx, principal in
                try principal.require(Role.integrationManagers, to: "manage object types")
                _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
                var fields: [DataField] = []
                for (index, fieldInput) in inputs.enumerated() {
                    let field = try makeField(fieldInput, path: "fields[\(index)]", in: tx, workspaceID: workspaceID, selfKey: key)
                    if fields.contains(where: { $0.key == field.key }) {
                        throw APIError.validation("`fields[\(index)].key`: `\(field.key)` is used twice.", field: "fields[\(index)].key")
                    }
                    fields.append(field)
                }
                let type = ObjectType(
                    id: ID.make("ot", at: now),
                    workspaceId: workspaceID,
                    key: key,
                    name: name,
                    description: description,
                    fields: fields,
                    locked: false,
                    createdAt: now,
                    updatedAt: now
                )
                try ObjectStore.insert(tx, type)
                try activity.record(
                    tx,
                    principal.audit(from: caller.audit),
                    action: "object_type.created",
                    targetType: "object_type",
                    targetID: type.id,
                    workspaceID: workspaceID,
                    detail: key
                )
                return type
            }
        } catch StorageError.uniqueViolation {
            throw APIError.conflict("Workspace \(workspaceID) has an object type `\(key)` already.", field: "key")
        }
    }

    public func list(workspaceID: String, caller: Caller, after: String?, limit: Int) async throws -> [ObjectType] {
        try await authenticator.read(caller) { [self] tx, principal in
            _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
            let types = try ObjectStore.objectTypes(tx, workspaceID: workspaceID, after: after, limit: limit)
            // An app sees the types it holds a permission of.
            guard case .app(let app) = principal else { return types }
            return types.filter { Self.isGranted($0.key, to: app) }
        }
    }

    public func get(workspaceID: String, key: String, caller: Caller) async throws -> ObjectType {
        try await authenticator.read(caller) { [self] tx, principal in
            let type = try objectType(tx, workspaceID: workspaceID, key: key, by: principal)
            if case .app(let app) = principal, !Self.isGranted(key, to: app) {
                throw APIError.forbidden("The app \(app.name) holds no permission of the object type `\(key)`.")
            }
            return type
        }
    }

    static func isGranted(_ key: String, to app: AppPrincipal) -> Bool {
        app.permissions.contains { Permission($0)?.objectType == key }
    }

    /// Runs a change to a type that is not locked, records it, and saves the result.
    func change(
        workspaceID: String,
        key: String,
        caller: Caller,
        action: String,
        detail: String? = nil,
        _ body: @escaping @Sendable (SQLTx, inout ObjectType) throws -> Void
    ) async throws -> ObjectType {
        let now = clock.now
        return try await authenticator.write(caller) { [self] tx, principal in
            try principal.require(Role.integrationManagers, to: "manage object types")
            var type = try objectType(tx, workspaceID: workspaceID, key: key, by: principal, lock: .update)
            guard !type.locked else {
                throw APIError(
                    .objectTypeLocked,
                    detail: "`\(key)` belongs to an installed package and cannot be changed; change the package instead."
                )
            }
            try body(tx, &type)
            type.updatedAt = now
            try ObjectStore.update(tx, type)
            try activity.record(
                tx,
                principal.audit(from: caller.audit),
                action: action,
                targetType: "object_type",
                targetID: type.id,
                workspaceID: workspaceID,
                detail: detail ?? key
            )
            return type
        }
    }

    public func update(
        _ input: UpdateObjectTypeInput,
        workspaceID: String,
        key: String,
        caller: Caller
    ) async throws -> ObjectType {
        let name = try input.name.map { try Validate.name($0) }
        let description = try input.description.map { try Validate.name($0, field: "description", maximum: 2000, multiline: true) }
        return try await change(workspaceID: workspaceID, key: key, caller: caller, action: "object_type.updated") {
            _,
            type in
            if let name { type.name = name }
            if let description { type.description = description }
        }
    }

    /// Deletes a type. With records it needs `force`, and then deletes them, each with its
    /// `*.deleted` event. This unit only checks and marks the type as being deleted, after which no
    /// record can be added to it; the records then go in batches (`deleteMarked`), so other writers
    /// run in between. A type left marked by a crash is found again here, and a repeat finishes.
    public func delete(workspaceID: String, key: String, force: Bool, caller: Caller) async throws {
        let (type, count, actor) = try await authenticator.write(caller) { [self] tx, principal in
            try principal.require(Role.integrationManagers, to: "manage object types")
            let type = try objectType(tx, workspaceID: workspaceID, key: key, by: principal, lock: .update, includeDeleting: true)
            guard !type.locked else {
                throw APIError(
                    .objectTypeLocked,
                    detail: "`\(key)` belongs to an installed package and cannot be deleted on its own."
                )
            }
            if let (other, field) = try ObjectStore.referencesTo(tx, workspaceID: workspaceID, targetKey: key).first(where: { $0.type.key != key }) {
                throw APIError.conflict("`\(other.key).\(field.key)` refers to `\(key)`; remove that field (or delete `\(other.key)`) first.")
            }
            let count = try ObjectStore.recordCount(tx, objectTypeID: type.id)
            if count > 0 && !force {
                throw APIError.conflict("`\(key)` has \(count) records; delete with ?force=true to delete them too.")
            }
            try ObjectStore.markDeleting(tx, objectTypeID: type.id)
            return (type, count, principal.audit(from: caller.audit))
        }
        try await deleteMarked(type, recordCount: count, actor: actor)
    }

    /// Locks or unlocks a type; packages (to come) own locked types, so there is no route for it.
    func setLocked(_ locked: Bool, workspaceID: String, key: String) async throws {
        try await database.write { [self] tx in
            guard var type = try ObjectStore.objectType(tx, workspaceID: workspaceID, key: key) else {
                throw APIError.notFound(detail: "No object type `\(key.prefix(63))`.")
            }
            type.locked = locked
            try ObjectStore.update(tx, type)
        }
    }
}
