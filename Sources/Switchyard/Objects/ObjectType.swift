import Foundation

/// The kind of a data field's values.
public enum FieldType: String, APIEnum, Sendable {
    case text, number, integer, boolean, date, datetime
    case `enum`
    case email, url, reference, json
}

/// One field of an object type, like a column: `status` (enum), `due_on` (date), `site` (reference).
public struct DataField: Codable, Sendable, Equatable {
    public var key: String
    public var label: String
    public var type: FieldType
    public var required: Bool
    /// Applied when a record is created without this field.
    public var defaultValue: JSONValue?
    /// No two records of the type share a value (a sync's primary key).
    public var unique: Bool
    /// The allowed values of an `enum` field.
    public var options: [String]?
    /// The object type key a `reference` field points to.
    public var reference: String?

    enum CodingKeys: String, CodingKey {
        case key, label, type, required, unique, options, reference
        case defaultValue = "default"
    }
}

/// A kind of record in a workspace: a contract, a work order, an invoice.
public struct ObjectType: Codable, Sendable {
    public var id: String
    public var workspaceId: String
    public var key: String
    public var name: String
    public var description: String?
    public var fields: [DataField]
    /// Owned by a package: its fields cannot change through the API.
    public var locked: Bool
    public var createdAt: Date
    public var updatedAt: Date

    public func field(_ key: String) -> DataField? { fields.first { $0.key == key } }
}

/// A record: one instance of an object type, with its fields as JSON.
public struct Record: Codable, Sendable {
    public struct CreatedBy: Codable, Sendable, Equatable {
        /// `user`, `api_token`, `app`, `integration` or `system`.
        public var type: String
        public var id: String?
    }

    public var id: String
    public var workspaceId: String
    public var type: String
    public var fields: [String: JSONValue]
    public var version: Int64
    public var createdAt: Date
    public var updatedAt: Date
    public var createdBy: CreatedBy
}

/// A record as stored, its fields still the canonical JSON text they were saved as: reads hand it to
/// the route, which writes the answer around that text without parsing it (a record read is the
/// hottest request there is).
public struct StoredRecord: Sendable {
    public var id: String
    public var workspaceId: String
    public var type: String
    public var fieldsJSON: String
    public var version: Int64
    public var createdAt: Date
    public var updatedAt: Date
    public var createdBy: Record.CreatedBy

    /// The record with its fields parsed, for code that reads them.
    public func record() throws -> Record {
        Record(
            id: id,
            workspaceId: workspaceId,
            type: type,
            fields: try JSONValue.parse(text: fieldsJSON).objectValue ?? [:],
            version: version,
            createdAt: createdAt,
            updatedAt: updatedAt,
            createdBy: createdBy
        )
    }
}

extension StoredRecord {
    /// `record` with its fields already serialized as `fieldsJSON`.
    public init(_ record: Record, fieldsJSON: String) {
        id = record.id
        workspaceId = record.workspaceId
        type = record.type
        self.fieldsJSON = fieldsJSON
        version = record.version
        createdAt = record.createdAt
        updatedAt = record.updatedAt
        createdBy = record.createdBy
    }
}

/// A page of records and the cursor of the next (`k.…` for keyset sorts), nil on the last.
public struct RecordPage: Sendable {
    public var records: [StoredRecord]
    public var nextAfter: String?
}

// MARK: inputs

public struct DataFieldInput: Codable, Sendable {
    public var key: String
    public var label: String?
    public var type: FieldType
    public var required: Bool?
    public var defaultValue: JSONValue?
    public var unique: Bool?
    public var options: [String]?
    public var reference: String?

    static let keys: Set<String> = ["key", "label", "type", "required", "default", "unique", "options", "reference"]

    enum CodingKeys: String, CodingKey {
        case key, label, type, required, unique, options, reference
        case defaultValue = "default"
    }

    public init(
        key: String,
        label: String? = nil,
        type: FieldType,
        required: Bool? = nil,
        defaultValue: JSONValue? = nil,
        unique: Bool? = nil,
        options: [String]? = nil,
        reference: String? = nil
    ) {
        self.key = key
        self.label = label
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
        self.unique = unique
        self.options = options
        self.reference = reference
    }

    public init(from decoder: Decoder) throws {
        try JSONBody.refuseUnknownKeys(decoder, known: Self.keys)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decode(String.self, forKey: .key)
        label = try container.decodeIfPresent(String.self, forKey: .label)
        type = try container.decode(FieldType.self, forKey: .type)
        required = try container.decodeIfPresent(Bool.self, forKey: .required)
        // `"default": null` means no default, like leaving it out.
        defaultValue = try container.decodeIfPresent(JSONValue.self, forKey: .defaultValue).flatMap { $0 == .null ? nil : $0 }
        unique = try container.decodeIfPresent(Bool.self, forKey: .unique)
        options = try container.decodeIfPresent([String].self, forKey: .options)
        reference = try container.decodeIfPresent(String.self, forKey: .reference)
    }
}

public struct CreateObjectTypeInput: RequestBody {
    public static let keys: Set<String> = ["key", "name", "description", "fields"]
    public var key: String
    public var name: String
    public var description: String?
    public var fields: [DataFieldInput]?
}

public struct UpdateObjectTypeInput: RequestBody {
    public static let keys: Set<String> = ["name", "description"]
    public var name: String?
    public var description: String?
}

public struct AddFieldInput: RequestBody {
    public static let keys = DataFieldInput.keys
    public var field: DataFieldInput

    public init(from decoder: Decoder) throws { field = try DataFieldInput(from: decoder) }
}

/// Only the label (and, for an enum, its options) of an existing field can change: its key and
/// type are what records and syncs rely on.
public struct UpdateFieldInput: RequestBody {
    public static let keys: Set<String> = ["label", "required", "default", "options"]
    public var label: String?
    public var required: Bool?
    public var defaultValue: JSONValue?
    public var options: [String]?

    enum CodingKeys: String, CodingKey {
        case label, required, options
        case defaultValue = "default"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        label = try container.decodeIfPresent(String.self, forKey: .label)
        required = try container.decodeIfPresent(Bool.self, forKey: .required)
        options = try container.decodeIfPresent([String].self, forKey: .options)
        // `"default": null` removes the default; leaving the key out keeps it.
        if container.contains(.defaultValue) {
            defaultValue = try container.decodeNil(forKey: .defaultValue) ? .null : try container.decode(JSONValue.self, forKey: .defaultValue)
        }
    }
}

public struct RecordInput: JSONObjectBody {
    public static let keys: Set<String> = ["fields"]
    public var fields: [String: JSONValue]

    public init(json object: [String: JSONValue]) throws {
        fields = try JSONBody.required(object, "fields", "an object") { $0.objectValue }
    }

    /// What makes two creates the same request, for `Idempotency-Key`.
    public func idempotencyFingerprint(typeKey: String) -> String {
        Idempotency.fingerprint(typeKey, JSONValue.object(fields).jsonText)
    }
}
