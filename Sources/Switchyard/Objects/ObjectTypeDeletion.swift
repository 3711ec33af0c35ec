import Foundation

/// The batches of a forced type delete. One write unit per batch: on SQLite a unit holds the single
/// writer, and a type with a hundred thousand records in one unit would stop every other write for
/// its whole length.
extension ObjectTypeService {
    /// Records per write unit: each costs an event row and its rendering, so a batch stays in the
    /// milliseconds on SQLite (and a few hundred round trips on PostgreSQL).
    static let deleteBatchSize = 500

    /// Deletes the records of a type marked `deleting`, a batch at a time, then the type itself in
    /// the unit of the last batch. Each batch appends the `*.deleted` events of exactly the records it
    /// deletes, so whatever a crash leaves is consistent and a repeat carries on where it stopped.
    func deleteMarked(_ type: ObjectType, recordCount: Int64, actor: AuditContext) async throws {
        while try await deleteBatch(type, recordCount: recordCount, actor: actor) == false {}
    }

    /// One batch; true once the type is gone (deleted by this batch, or by a concurrent repeat).
    func deleteBatch(_ type: ObjectType, recordCount: Int64, actor: AuditContext) async throws -> Bool {
        let batchSize = Self.deleteBatchSize
        return try await database.write { [self] tx in
            // Locked: two deletes of one type run their batches one after the other.
            guard
                let current = try ObjectStore.objectType(
                    tx,
                    workspaceID: type.workspaceId,
                    key: type.key,
                    lock: .update,
                    includeDeleting: true
                ), current.id == type.id
            else { return true }
            let page = try ObjectStore.records(tx, type: type, query: RecordQuery(limit: batchSize))
            for record in page {
                try events.appendRecordEvent(
                    tx,
                    workspaceID: type.workspaceId,
                    type: "\(type.key).deleted",
                    record: record,
                    recordJSON: RecordJSON.render(record),
                    actor: actor
                )
            }
            try ObjectStore.deleteRecords(tx, objectTypeID: type.id, ids: page.map(\.id))
            guard page.count < batchSize else { return false }
            try ObjectStore.delete(tx, objectTypeID: type.id)
            try activity.record(
                tx,
                actor,
                action: "object_type.deleted",
                targetType: "object_type",
                targetID: type.id,
                workspaceID: type.workspaceId,
                detail: "\(type.key), \(recordCount) records"
            )
            return true
        }
    }
}
