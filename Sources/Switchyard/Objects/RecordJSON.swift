import Foundation

/// Writes a record's API answer by hand. A stored record's fields are already canonical JSON, so a
/// read neither parses nor re-encodes them. The other values are ids, keys,
/// numbers and times, none of which needs escaping. Keys in the encoder's sorted order, so the
/// answer is byte-for-byte what `JSONCoding.encoder` would write for `Record`.
enum RecordJSON {
    static func render(
        id: String,
        workspaceID: String,
        type: String,
        fieldsJSON: String,
        version: Int64,
        createdAt: Date,
        updatedAt: Date,
        createdByType: String,
        createdByID: String?
    ) -> String {
        let createdBy = createdByID.map { #"{"id":"\#($0)","type":"\#(createdByType)"}"# } ?? #"{"type":"\#(createdByType)"}"#
        return #"{"created_at":"\#(RFC3339.format(createdAt))","created_by":\#(createdBy),"fields":\#(fieldsJSON),"id":"\#(id)","#
            + #""type":"\#(type)","updated_at":"\#(RFC3339.format(updatedAt))","version":\#(version),"workspace_id":"\#(workspaceID)"}"#
    }

    static func render(_ record: StoredRecord) -> String {
        render(
            id: record.id,
            workspaceID: record.workspaceId,
            type: record.type,
            fieldsJSON: record.fieldsJSON,
            version: record.version,
            createdAt: record.createdAt,
            updatedAt: record.updatedAt,
            createdByType: record.createdBy.type,
            createdByID: record.createdBy.id
        )
    }

    static func render(_ record: Record, fieldsJSON: String? = nil) -> String {
        render(StoredRecord(record, fieldsJSON: fieldsJSON ?? JSONValue.object(record.fields).jsonText))
    }

    /// A page of records as `Page` writes one.
    static func page(_ page: RecordPage) -> String {
        let items = page.records.map { render($0) }.joined(separator: ",")
        return #"{"data":[\#(items)],"next_after":\#(page.nextAfter.map { #""\#($0)""# } ?? "null")}"#
    }
}
