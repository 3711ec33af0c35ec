import Foundation

/// Object types and their data fields: keys, limits, locking, and what changing them does to
/// existing records.
public struct ObjectTypeService: Sendable {
    let database: Database
    let clock: any WallClock
    let identity: IdentityService
    let activity: ActivityService
    let events: EventService
    let maximumFields: Int

    public init(
        database: Database,
        clock: any WallClock,
        identity: IdentityService,
        activity: ActivityService,
        events: EventService,
        maximumFields: Int
    ) {
        self.database = database
        self.clock = clock
        self.identity = identity
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
        _ = try identity.workspace(tx, id: workspaceID, by: principal)
        guard let type = try ObjectStore.objectType(tx, workspaceID: workspaceID, key: key, lock: lock, includeDeleting: includeDeleting)
        else {
            throw APIError.notFound(detail: "Workspace \(workspaceID) has no object type `\(key.prefix(63))`.")
        }
        return type
    }

    /// An enum's options: distinct, non-empty strings of at most 200 characters.
    static func checkOptions(_ options: [String], field: String) throws {
        guard !options.isEmpty, Set(options).count == options.count, options.allSatisfy({ !$0.isEmpty && $0.count <= 200 }) else {
            throw APIError.validation("`\(field)` must be distinct, non-empty strings (at most 200 characters each).", field: field)
        }
    }

    static func fieldIndex(_ type: ObjectType, _ fieldKey: String) throws -> Int {
        guard let index = type.fields.firstIndex(where: { $0.key == fieldKey }) else {
            throw APIError.notFound(detail: "`\(type.key)` has no field `\(fieldKey.prefix(63))`.")
        }
        return index
    }

    /// Checks a field definition; `path` names it in errors (`fields[3]`).
    func makeField(_ input: DataFieldInput, path: String, in tx: SQLTx, workspaceID: String, selfKey: String) throws -> DataField {
        let key = try Self.validateKey(input.key, field: "\(path).key")
        let label = try Validate.name(input.label ?? key.replacingOccurrences(of: "_", with: " ").capitalized, field: "\(path).label")
        var options: [String]?
        if input.type == .enum {
            guard let given = input.options, !given.isEmpty else {
                throw APIError.validation("`\(path).options` must list the values of an enum field.", field: "\(path).options")
            }
            try Self.checkOptions(given, field: "\(path).options")
            options = given
        } else if input.options != nil {
            throw APIError.validation("`\(path).options` is only for enum fields.", field: "\(path).options")
        }
        var reference: String?
        if input.type == .reference {
            guard let target = input.reference else {
                throw APIError.validation("`\(path).reference` must name the object type a reference field points to.", field: "\(path).reference")
            }
            // Share-locked: a concurrent delete of the target type waits, then sees this field.
            if target != selfKey, try ObjectStore.objectType(tx, workspaceID: workspaceID, key: target, lock: .share) == nil {
                throw APIError.validation(
                    "`\(path).reference`: there is no object type `\(target.prefix(63))` in this workspace.",
                    field: "\(path).reference"
                )
            }
            reference = target
        } else if input.reference != nil {
            throw APIError.validation("`\(path).reference` is only for reference fields.", field: "\(path).reference")
        }
        if input.unique == true, [.json, .boolean].contains(input.type) {
            throw APIError.validation("`\(path).unique` cannot be set on a \(input.type.rawValue) field.", field: "\(path).unique")
        }
        var field = DataField(
            key: key,
            label: label,
            type: input.type,
            required: input.required ?? false,
            defaultValue: nil,
            unique: input.unique ?? false,
            options: options,
            reference: reference
        )
        if let value = input.defaultValue {
            field.defaultValue = try RecordValidator.check(value, for: field, path: "\(path).default")
        }
        return field
    }

    /// Whether `type` names a record change of one of the workspace's object types
    /// (`work_order.created`, `.updated`, `.deleted`): such events are written by records only.
    public static func ownsEventType(_ tx: SQLTx, workspaceID: String, type: String) throws -> Bool {
        guard let dot = type.lastIndex(of: "."), ["created", "updated", "deleted"].contains(type[type.index(after: dot)...]) else {
            return false
        }
        return try ObjectStore.objectType(tx, workspaceID: workspaceID, key: String(type[..<dot]), includeDeleting: true) != nil
    }

    public func create(_ input: CreateObjectTypeInput, workspaceID: String, credentials: Credentials?, audit: AuditContext) async throws -> ObjectType
    {
        let key = try Self.validateKey(input.key, field: "key")
        let name = try Validate.name(input.name)
        let description = try input.description.map { try Validate.name($0, field: "description", maximum: 2000, multiline: true) }
        let inputs = input.fields ?? []
        if inputs.count > maximumFields {
            throw APIError.validation("An object type has at most \(maximumFields) data fields; this one has \(inputs.count).", field: "fields")
        }
        let now = clock.now
        do {
            return try await identity.write(credentials, audit: audit) { tx, principal in
                try principal.require(Role.integrationManagers, to: "manage object types")
                _ = try identity.workspace(tx, id: workspaceID, by: principal)
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
                    principal.audit(from: audit),
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

    public func list(workspaceID: String, credentials: Credentials?, audit: AuditContext, after: String?, limit: Int) async throws -> [ObjectType] {
        try await identity.read(credentials, audit: audit) { tx, principal in
            _ = try identity.workspace(tx, id: workspaceID, by: principal)
            return try ObjectStore.objectTypes(tx, workspaceID: workspaceID, after: after, limit: limit)
        }
    }

    public func get(workspaceID: String, key: String, credentials: Credentials?, audit: AuditContext) async throws -> ObjectType {
        try await identity.read(credentials, audit: audit) { tx, principal in
            try objectType(tx, workspaceID: workspaceID, key: key, by: principal)
        }
    }

    /// Runs a change to a type that is not locked, records it, and saves the result.
    private func change(
        workspaceID: String,
        key: String,
        credentials: Credentials?,
        audit: AuditContext,
        action: String,
        detail: String? = nil,
        _ body: @escaping @Sendable (SQLTx, inout ObjectType) throws -> Void
    ) async throws -> ObjectType {
        let now = clock.now
        return try await identity.write(credentials, audit: audit) { tx, principal in
            try principal.require(Role.integrationManagers, to: "manage object types")
            var type = try objectType(tx, workspaceID: workspaceID, key: key, by: principal, lock: .update)
            guard !type.locked else {
                throw APIError(
                    .conflict,
                    "object-type-locked",
                    "Object type locked",
                    detail: "`\(key)` belongs to an installed package and cannot be changed; change the package instead."
                )
            }
            try body(tx, &type)
            type.updatedAt = now
            try ObjectStore.update(tx, type)
            try activity.record(
                tx,
                principal.audit(from: audit),
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
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> ObjectType {
        let name = try input.name.map { try Validate.name($0) }
        let description = try input.description.map { try Validate.name($0, field: "description", maximum: 2000, multiline: true) }
        return try await change(workspaceID: workspaceID, key: key, credentials: credentials, audit: audit, action: "object_type.updated") {
            _,
            type in
            if let name { type.name = name }
            if let description { type.description = description }
        }
    }

    public func addField(
        _ input: DataFieldInput,
        workspaceID: String,
        key: String,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> ObjectType {
        let maximum = maximumFields
        return try await change(
            workspaceID: workspaceID,
            key: key,
            credentials: credentials,
            audit: audit,
            action: "object_type.field_added",
            detail: "\(key).\(input.key)"
        ) { tx, type in
            guard type.fields.count < maximum else {
                throw APIError.validation(
                    "`\(type.key)` has \(type.fields.count) data fields, the most an object type may have (\(maximum)).",
                    field: "key"
                )
            }
            let field = try makeField(input, path: "field", in: tx, workspaceID: workspaceID, selfKey: type.key)
            guard type.field(field.key) == nil else {
                throw APIError.conflict("`\(type.key)` has a field `\(field.key)` already.", field: "key")
            }
            if field.required, try ObjectStore.recordCount(tx, objectTypeID: type.id) > 0 {
                guard let value = field.defaultValue else {
                    throw APIError.validation(
                        "`\(type.key)` has records, which would lack this required field: give it a `default`.",
                        field: "default"
                    )
                }
                // Existing records get the default, so the field is present wherever it is required.
                try ObjectStore.fill(tx, type: type, key: field.key, value: value)
            }
            if field.unique, try ObjectStore.recordCount(tx, objectTypeID: type.id) > 0 {
                throw APIError.validation("A unique field can only be added while `\(type.key)` has no records.", field: "unique")
            }
            type.fields.append(field)
        }
    }

    public func updateField(
        _ input: UpdateFieldInput,
        workspaceID: String,
        key: String,
        fieldKey: String,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> ObjectType {
        let label = try input.label.map { try Validate.name($0, field: "label") }
        return try await change(
            workspaceID: workspaceID,
            key: key,
            credentials: credentials,
            audit: audit,
            action: "object_type.field_updated",
            detail: "\(key).\(fieldKey)"
        ) { tx, type in
            let index = try Self.fieldIndex(type, fieldKey)
            var field = type.fields[index]
            if let label { field.label = label }
            if let options = input.options {
                guard field.type == .enum else { throw APIError.validation("`options` is only for enum fields.", field: "options") }
                try Self.checkOptions(options, field: "options")
                field.options = options
                // A default must stay one of the options (records keep the values they have).
                if input.defaultValue == nil, let current = field.defaultValue {
                    field.defaultValue = try RecordValidator.check(current, for: field, path: "default")
                }
            }
            if let value = input.defaultValue {
                field.defaultValue = value == .null ? nil : try RecordValidator.check(value, for: field, path: "default")
            }
            if let required = input.required {
                if required, !field.required, try ObjectStore.recordCount(tx, objectTypeID: type.id) > 0 {
                    throw APIError.validation("`\(type.key)` has records; a field cannot become required afterwards.", field: "required")
                }
                field.required = required
            }
            type.fields[index] = field
        }
    }

    /// Removes a field and its values from every record of the type.
    public func removeField(
        workspaceID: String,
        key: String,
        fieldKey: String,
        credentials: Credentials?,
        audit: AuditContext
    ) async throws -> ObjectType {
        try await change(
            workspaceID: workspaceID,
            key: key,
            credentials: credentials,
            audit: audit,
            action: "object_type.field_removed",
            detail: "\(key).\(fieldKey)"
        ) { tx, type in
            let index = try Self.fieldIndex(type, fieldKey)
            type.fields.remove(at: index)
            try ObjectStore.removeField(tx, type: type, key: fieldKey)
        }
    }

    /// Deletes a type. With records it needs `force`, and then deletes them, each with its
    /// `*.deleted` event. This unit only checks and marks the type as being deleted, after which no
    /// record can be added to it; the records then go in batches (`deleteMarked`), so other writers
    /// run in between. A type left marked by a crash is found again here, and a repeat finishes.
    public func delete(workspaceID: String, key: String, force: Bool, credentials: Credentials?, audit: AuditContext) async throws {
        let (type, count, actor) = try await identity.write(credentials, audit: audit) { tx, principal in
            try principal.require(Role.integrationManagers, to: "manage object types")
            let type = try objectType(tx, workspaceID: workspaceID, key: key, by: principal, lock: .update, includeDeleting: true)
            guard !type.locked else {
                throw APIError(
                    .conflict,
                    "object-type-locked",
                    "Object type locked",
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
            return (type, count, principal.audit(from: audit))
        }
        try await deleteMarked(type, recordCount: count, actor: actor)
    }

    /// Locks or unlocks a type; packages (to come) own locked types, so there is no route for it.
    func setLocked(_ locked: Bool, workspaceID: String, key: String) async throws {
        try await database.write { tx in
            guard var type = try ObjectStore.objectType(tx, workspaceID: workspaceID, key: key) else {
                throw APIError.notFound(detail: "No object type `\(key.prefix(63))`.")
            }
            type.locked = locked
            try ObjectStore.update(tx, type)
        }
    }
}
