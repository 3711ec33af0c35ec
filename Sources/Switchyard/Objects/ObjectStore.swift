import Foundation
import NIOConcurrencyHelpers

/// SQL for object types, records and the unique-value index.
enum ObjectStore {
    // MARK: object types

    static func insert(_ tx: SQLTx, _ type: ObjectType) throws {
        try tx.execute(
            """
            INSERT INTO object_types (id, workspace_id, key, name, description, fields, locked, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            type.id,
            type.workspaceId,
            type.key,
            type.name,
            type.description,
            try fieldsText(type.fields),
            type.locked,
            type.createdAt,
            type.updatedAt
        )
    }

    static func update(_ tx: SQLTx, _ type: ObjectType) throws {
        try tx.execute(
            "UPDATE object_types SET name = ?, description = ?, fields = ?, locked = ?, updated_at = ? WHERE id = ?",
            type.name,
            type.description,
            try fieldsText(type.fields),
            type.locked,
            type.updatedAt,
            type.id
        )
    }

    enum Lock { case none, share, update }

    /// The type by key. One being deleted (`deleting`) is gone for everything but its deletion:
    /// on PostgreSQL a record write waiting on the mark re-reads the row and finds nothing.
    static func objectType(
        _ tx: SQLTx,
        workspaceID: String,
        key: String,
        lock: Lock = .none,
        includeDeleting: Bool = false
    ) throws -> ObjectType? {
        try prefetchObjectType(tx, workspaceID: workspaceID, key: key, lock: lock, includeDeleting: includeDeleting).one(objectType(from:))
    }

    /// The type's row, sent now and read later (`SQLTx.prefetch`).
    static func prefetchObjectType(_ tx: SQLTx, workspaceID: String, key: String, lock: Lock = .none, includeDeleting: Bool = false) -> SQLPending {
        let clause = lock == .update ? tx.dialect.forUpdate : lock == .share ? tx.dialect.forShare : ""
        let live = includeDeleting ? "" : " AND deleting = 0"
        return tx.prefetch("SELECT * FROM object_types WHERE workspace_id = ? AND key = ?\(live)\(clause)", workspaceID, key)
    }

    static func objectTypes(_ tx: SQLTx, workspaceID: String, after: String?, limit: Int) throws -> [ObjectType] {
        try tx.query(
            "SELECT * FROM object_types WHERE workspace_id = ? AND key > ? AND deleting = 0 ORDER BY key LIMIT ?",
            workspaceID,
            after ?? "",
            limit
        ).map(objectType(from:))
    }

    /// The reference fields of the workspace's types that point to `targetKey`, with their type.
    static func referencesTo(_ tx: SQLTx, workspaceID: String, targetKey: String) throws -> [(type: ObjectType, field: DataField)] {
        // Types are few per workspace; their fields live in one JSON column, so filter here.
        try tx.query("SELECT * FROM object_types WHERE workspace_id = ? ORDER BY key", workspaceID).map(objectType(from:))
            .flatMap { type in
                type.fields.filter { $0.type == .reference && $0.reference == targetKey }.map { (type, $0) }
            }
    }

    /// A record of `type` whose reference `field` holds `id`, if any. Scans the type's records (no
    /// index on field values): deletes only.
    static func recordReferring(_ tx: SQLTx, type: ObjectType, field: DataField, to id: String, except: String) throws -> String? {
        try tx.queryOne(
            "SELECT id FROM records WHERE object_type_id = ? AND \(tx.dialect.jsonText("data", field.key)) = ? AND id <> ? LIMIT 1",
            type.id,
            id,
            except
        )?.string("id")
    }

    /// Marks a type as being deleted, before its records go in batches (ObjectTypeService.delete).
    static func markDeleting(_ tx: SQLTx, objectTypeID: String) throws {
        try tx.execute("UPDATE object_types SET deleting = 1 WHERE id = ?", objectTypeID)
    }

    /// Deletes records of a type by id, with their unique values: one batch of a type's deletion.
    static func deleteRecords(_ tx: SQLTx, objectTypeID: String, ids: [String]) throws {
        guard !ids.isEmpty else { return }
        let arguments = [SQLValue.text(objectTypeID)] + ids.map(SQLValue.text)
        let list = tx.placeholders(ids.count)
        try tx.execute("DELETE FROM record_unique_values WHERE object_type_id = ? AND record_id IN (\(list))", arguments)
        try tx.execute("DELETE FROM records WHERE object_type_id = ? AND id IN (\(list))", arguments)
    }

    static func delete(_ tx: SQLTx, objectTypeID: String) throws {
        try tx.execute("DELETE FROM record_unique_values WHERE object_type_id = ?", objectTypeID)
        try tx.execute("DELETE FROM records WHERE object_type_id = ?", objectTypeID)
        try tx.execute("DELETE FROM object_types WHERE id = ?", objectTypeID)
    }

    static func fieldsText(_ fields: [DataField]) throws -> String {
        String(decoding: try JSONEncoder().encode(fields), as: UTF8.self)
    }

    /// Decoded field lists by their stored text: every record write reads its type, and decoding
    /// the same JSON each time showed in profiles. Keyed by content, so it can never be stale.
    private static let decodedFields = NIOLockedValueBox<[String: [DataField]]>([:])

    static func fields(_ text: String) throws -> [DataField] {
        if let cached = decodedFields.withLockedValue({ $0[text] }) { return cached }
        let fields = try JSONDecoder().decode([DataField].self, from: Data(text.utf8))
        decodedFields.withLockedValue { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[text] = fields
        }
        return fields
    }

    static func objectType(from row: SQLRow) throws -> ObjectType {
        ObjectType(
            id: try row.string("id"),
            workspaceId: try row.string("workspace_id"),
            key: try row.string("key"),
            name: try row.string("name"),
            description: row.optionalString("description"),
            fields: try fields(try row.string("fields")),
            locked: row.bool("locked"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }

    // MARK: records

    /// Sent without waiting (`SQLTx.send`): a record create waits only for its reads.
    static func insert(_ tx: SQLTx, _ record: Record, fieldsJSON: String, objectTypeID: String) throws {
        try tx.send(
            """
            INSERT INTO records (id, workspace_id, object_type_id, data, version, created_at, updated_at, created_by_type, created_by_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            record.id,
            record.workspaceId,
            objectTypeID,
            fieldsJSON,
            record.version,
            record.createdAt,
            record.updatedAt,
            record.createdBy.type,
            record.createdBy.id
        )
    }

    /// Writes new fields if the stored version is still `expectedVersion`; false when it is not.
    static func update(_ tx: SQLTx, _ record: Record, expectedVersion: Int64) throws -> Bool {
        try tx.execute(
            "UPDATE records SET data = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?",
            JSONValue.object(record.fields).jsonText,
            record.version,
            record.updatedAt,
            record.id,
            expectedVersion
        ) == 1
    }

    static func deleteRecord(_ tx: SQLTx, id: String) throws {
        try tx.execute("DELETE FROM record_unique_values WHERE record_id = ?", id)
        try tx.execute("DELETE FROM records WHERE id = ?", id)
    }

    static func record(_ tx: SQLTx, type: ObjectType, id: String, forUpdate: Bool = false) throws -> Record? {
        try tx.queryOne("SELECT * FROM records WHERE id = ? AND object_type_id = ?\(forUpdate ? tx.dialect.forUpdate : "")", id, type.id)
            .map { try record(from: $0, type: type.key) }
    }

    /// A record with its workspace's mode, found by workspace, type key and id in one query: a
    /// record read is the hottest request there is. The query is sent now and read by `get()`, so
    /// it shares a round trip with the caller's credentials (`Authenticator.read(_:prefetch:_:)`).
    static func storedRecord(_ tx: SQLTx, workspaceID: String, typeKey: String, id: String) -> PendingStoredRecord {
        PendingStoredRecord(
            typeKey: typeKey,
            rows: tx.prefetch(
                """
                SELECT r.*, w.mode AS workspace_mode FROM records r
                JOIN object_types t ON t.id = r.object_type_id JOIN workspaces w ON w.id = t.workspace_id
                WHERE r.id = ? AND t.workspace_id = ? AND t.key = ? AND t.deleting = 0
                """,
                id,
                workspaceID,
                typeKey
            )
        )
    }

    struct PendingStoredRecord: Sendable {
        let typeKey: String
        let rows: SQLPending

        func get() throws -> (StoredRecord, WorkspaceMode)? {
            guard let row = try rows.one(), let mode = WorkspaceMode(rawValue: try row.string("workspace_mode")) else { return nil }
            return (try storedRecord(from: row, type: typeKey), mode)
        }
    }

    /// Locks the record found (PostgreSQL: FOR SHARE), so a concurrent delete, which checks for
    /// references under FOR UPDATE, waits for the referring write and then sees it.
    static func recordExists(_ tx: SQLTx, workspaceID: String, typeKey: String, id: String) throws -> Bool {
        try tx.queryOne(
            """
            SELECT r.id FROM records r JOIN object_types t ON t.id = r.object_type_id
            WHERE r.id = ? AND t.workspace_id = ? AND t.key = ? AND t.deleting = 0\(tx.dialect == .postgres ? " FOR SHARE OF r" : "")
            """,
            id,
            workspaceID,
            typeKey
        ) != nil
    }

    static func recordCount(_ tx: SQLTx, objectTypeID: String) throws -> Int64 {
        try tx.queryOne("SELECT COUNT(*) AS n FROM records WHERE object_type_id = ?", objectTypeID)?.int("n") ?? 0
    }

    /// A page of `query`'s records with the cursor of the next.
    static func recordPage(_ tx: SQLTx, type: ObjectType, query: RecordQuery) throws -> RecordPage {
        let rows = try recordRows(tx, type: type, query: query)
        return RecordPage(
            records: try rows.map { try storedRecord(from: $0, type: type.key) },
            nextAfter: try RecordQueryParser.nextCursor(query, rows)
        )
    }

    static func records(_ tx: SQLTx, type: ObjectType, query: RecordQuery) throws -> [Record] {
        try recordRows(tx, type: type, query: query).map { try record(from: $0, type: type.key) }
    }

    /// The extra column of a list row holding its sort value, for the next page's cursor: read back
    /// from the database, it compares exactly as the database compares it.
    static let sortValueColumn = "sort_value"

    private static func recordRows(_ tx: SQLTx, type: ObjectType, query: RecordQuery) throws -> [SQLRow] {
        var conditions = ["object_type_id = ?"]
        var arguments: [SQLValue] = [.text(type.id)]
        for filter in query.filters {
            let expression: String
            switch filter.field.type {
            case .number, .integer: expression = tx.dialect.jsonNumber("data", filter.field.key)
            case .boolean: expression = tx.dialect.jsonBool("data", filter.field.key)
            default: expression = tx.dialect.jsonText("data", filter.field.key)
            }
            conditions.append("\(expression) IN (\(tx.placeholders(filter.values.count)))")
            arguments += filter.values
        }
        let columns: String
        let order: String
        switch query.sort {
        case .created(let descending):
            if let after = query.after {
                conditions.append(descending ? "id < ?" : "id > ?")
                arguments.append(.text(after))
            }
            columns = "*"
            order = descending ? "id DESC" : "id"
        case .updated(let descending):
            if let position = query.position {
                conditions.append("(updated_at \(descending ? "<" : ">") ? OR (updated_at = ? AND id > ?))")
                arguments += [position.value, position.value, .text(position.id)]
            }
            columns = "*, updated_at AS \(sortValueColumn)"
            order = "updated_at \(descending ? "DESC" : "ASC"), id"
        case .field(let field, let descending):
            let expression = sortExpression(tx.dialect, field)
            // The keyset follows the order below: a position among the values, then the unset ones.
            if let position = query.position {
                if position.value == .null {
                    conditions.append("(\(expression) IS NULL AND id > ?)")
                    arguments.append(.text(position.id))
                } else {
                    conditions.append(
                        "(\(expression) \(descending ? "<" : ">") ? OR (\(expression) = ? AND id > ?) OR \(expression) IS NULL)"
                    )
                    arguments += [position.value, position.value, .text(position.id)]
                }
            }
            columns = "*, \(expression) AS \(sortValueColumn)"
            // Unset values last either way, on both engines.
            order = "(\(expression) IS NULL), \(expression) \(descending ? "DESC" : "ASC"), id"
        }
        arguments.append(.int(Int64(query.limit)))
        return try tx.query(
            "SELECT \(columns) FROM records WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order) LIMIT ?",
            arguments
        )
    }

    /// A field's sort expression. Booleans as 1/0, not as text: PostgreSQL's text is 'false'/'true'
    /// and SQLite's is 0/1, and a cursor value must bind the same way on both (the order is the same).
    private static func sortExpression(_ dialect: SQLDialect, _ field: DataField) -> String {
        switch RecordQuery.SortValue(field) {
        case .number: return dialect.jsonNumber("data", field.key)
        case .boolean: return dialect.jsonBool("data", field.key)
        default: return dialect.jsonText("data", field.key)
        }
    }

    static func storedRecord(from row: SQLRow, type: String) throws -> StoredRecord {
        StoredRecord(
            id: try row.string("id"),
            workspaceId: try row.string("workspace_id"),
            type: type,
            fieldsJSON: try row.string("data"),
            version: try row.int("version"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            createdBy: Record.CreatedBy(type: try row.string("created_by_type"), id: row.optionalString("created_by_id"))
        )
    }

    static func record(from row: SQLRow, type: String) throws -> Record {
        try storedRecord(from: row, type: type).record()
    }

    // MARK: unique values

    /// Claims the values of the type's unique fields for a record, releasing its old ones; a value
    /// another record holds is a conflict naming the field.
    /// The first value another record holds is answered (field key and holder), with the claim
    /// left half-done: the caller's unit must fail.
    static func claimUniqueValues(
        _ tx: SQLTx,
        type: ObjectType,
        recordID: String,
        fields: [String: JSONValue]
    ) throws -> (field: String, holder: String)? {
        let unique = type.fields.filter(\.unique)
        guard !unique.isEmpty else { return nil }
        try tx.execute("DELETE FROM record_unique_values WHERE record_id = ?", recordID)
        for field in unique {
            guard let value = fields[field.key], value != .null else { continue }
            // Hashed: a PostgreSQL index entry holds about 2.7 kB, and a unique text may be 64 KiB.
            let text = Hex.sha256(value.stringValue ?? value.jsonText)
            if let holder = try tx.queryOne(
                "SELECT record_id FROM record_unique_values WHERE object_type_id = ? AND field_key = ? AND value = ?",
                type.id,
                field.key,
                text
            ) {
                return (field.key, try holder.string("record_id"))
            }
            try tx.execute(
                "INSERT INTO record_unique_values (object_type_id, field_key, value, record_id) VALUES (?, ?, ?, ?)",
                type.id,
                field.key,
                text,
                recordID
            )
        }
        return nil
    }

    /// Gives every record of the type that lacks the field the value `value`.
    static func fill(_ tx: SQLTx, type: ObjectType, key: String, value: JSONValue) throws {
        try tx.execute(
            "UPDATE records SET data = \(tx.dialect.jsonSetIfAbsent("data", key)) WHERE object_type_id = ?",
            value.jsonText,
            type.id
        )
    }

    static func removeField(_ tx: SQLTx, type: ObjectType, key: String) throws {
        try tx.execute("UPDATE records SET data = \(tx.dialect.jsonRemove("data", key)) WHERE object_type_id = ?", type.id)
        try tx.execute("DELETE FROM record_unique_values WHERE object_type_id = ? AND field_key = ?", type.id, key)
    }
}
