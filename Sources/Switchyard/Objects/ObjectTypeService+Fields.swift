import Foundation

/// Data fields of an object type: checked definitions, and adding, changing and removing them.
extension ObjectTypeService {
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

    public func addField(
        _ input: DataFieldInput,
        workspaceID: String,
        key: String,
        caller: Caller
    ) async throws -> ObjectType {
        let maximum = maximumFields
        return try await change(
            workspaceID: workspaceID,
            key: key,
            caller: caller,
            action: "object_type.field_added",
            detail: "\(key).\(input.key)"
        ) { [self] tx, type in
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
        caller: Caller
    ) async throws -> ObjectType {
        let label = try input.label.map { try Validate.name($0, field: "label") }
        return try await change(
            workspaceID: workspaceID,
            key: key,
            caller: caller,
            action: "object_type.field_updated",
            detail: "\(key).\(fieldKey)"
        ) { [self] tx, type in
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
        caller: Caller
    ) async throws -> ObjectType {
        try await change(
            workspaceID: workspaceID,
            key: key,
            caller: caller,
            action: "object_type.field_removed",
            detail: "\(key).\(fieldKey)"
        ) { [self] tx, type in
            let index = try Self.fieldIndex(type, fieldKey)
            type.fields.remove(at: index)
            try ObjectStore.removeField(tx, type: type, key: fieldKey)
        }
    }
}
