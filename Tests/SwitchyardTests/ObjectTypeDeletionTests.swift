import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import Switchyard

let bulkType = #"{"key": "bulk", "name": "Bulk", "fields": [{"key": "n", "type": "integer"}]}"#

extension TestApp {
    /// A `bulk` type with `count` records, written in one unit (the API would take a request each).
    func makeBulkType(records count: Int) async throws -> ObjectType {
        #expect(try await request(.post, "\(workspacePath)/object-types", token: ownerToken, json: bulkType).status == .created)
        let workspaceID = liveWorkspace.id
        return try await database.write { tx in
            guard let type = try ObjectStore.objectType(tx, workspaceID: workspaceID, key: "bulk") else {
                throw StorageError.missingColumn("bulk")
            }
            for n in 0..<count {
                let now = Date()
                let record = Record(
                    id: ID.make("rec", at: now),
                    workspaceId: workspaceID,
                    type: "bulk",
                    fields: ["n": .int(Int64(n))],
                    version: 1,
                    createdAt: now,
                    updatedAt: now,
                    createdBy: Record.CreatedBy(type: "system", id: nil)
                )
                try ObjectStore.insert(tx, record, fieldsJSON: #"{"n":\#(n)}"#, objectTypeID: type.id)
            }
            return type
        }
    }

    /// Records of the type left, its `bulk.deleted` events, and the distinct records those name.
    func deletionState(_ type: ObjectType) async throws -> (records: Int64, events: Int64, distinct: Int64) {
        try await database.read { tx in
            let records = try tx.queryOne("SELECT COUNT(*) AS n FROM records WHERE object_type_id = ?", type.id)?.int("n") ?? -1
            let events = try tx.queryOne(
                "SELECT COUNT(*) AS n, COUNT(DISTINCT record_id) AS d FROM events WHERE workspace_id = ? AND type = 'bulk.deleted'",
                type.workspaceId
            )
            return (records, try events?.int("n") ?? -1, try events?.int("d") ?? -1)
        }
    }
}

@Suite("Object type deletion in batches")
struct ObjectTypeDeletionTests {
    @Test("a forced delete of 1,200 records runs in batches: all gone, 1,200 events, other writes run in between")
    func batches() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let type = try await app.makeBulkType(records: 1_200)
            let database = app.database
            let deleting = NIOLockedValueBox(true)
            // Writers from other tasks, each counting in its own unit the records still there: a
            // count strictly between 0 and 1,200 is a write that ran between two batches.
            async let seen: Set<Int64> = withThrowingTaskGroup(of: Set<Int64>.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        var counts: Set<Int64> = []
                        while deleting.withLockedValue({ $0 }) {
                            counts.insert(
                                try await database.write { tx in
                                    try tx.queryOne("SELECT COUNT(*) AS n FROM records WHERE object_type_id = ?", type.id)?.int("n") ?? -1
                                }
                            )
                        }
                        return counts
                    }
                }
                return try await group.reduce(into: []) { $0.formUnion($1) }
            }
            let path = "\(app.workspacePath)/object-types/bulk?force=true"
            async let deleted = app.request(.delete, path, token: app.ownerToken)
            // A record write through the API, meanwhile, is not held up behind the whole delete.
            #expect(try await app.createWorkOrder(#"{"number": "WO-1"}"#).status == .created)
            #expect(try await deleted.status == .noContent)
            deleting.withLockedValue { $0 = false }
            let counts = try await seen
            #expect(counts.contains { $0 > 0 && $0 < 1_200 }, "no write ran between batches: \(counts.sorted())")
            let state = try await app.deletionState(type)
            #expect(state.records == 0)
            #expect(state.events == 1_200)
            #expect(state.distinct == 1_200)
            #expect(try await app.count("object_types") == 1)
            #expect(try await app.count("records") == 1)
            let entries = try await app.database.read { tx in
                try tx.query("SELECT detail FROM activity_entries WHERE action = 'object_type.deleted'").map { try $0.string("detail") }
            }
            #expect(entries == ["bulk, 1200 records"])
        }
    }

    @Test("after a crash mid-delete the type is gone for every request, and a repeated delete finishes the job")
    func crashInTheMiddle() async throws {
        try await TestApp.run { app in
            let type = try await app.makeBulkType(records: 1_200)
            let recordID = try await app.database.read { tx in
                try tx.queryOne("SELECT id FROM records WHERE object_type_id = ? ORDER BY id DESC LIMIT 1", type.id)?.string("id")
            }
            // What a process killed after the mark and one batch leaves behind.
            try await app.database.write { tx in try ObjectStore.markDeleting(tx, objectTypeID: type.id) }
            let done = try await app.services.objectTypes.deleteBatch(type, recordCount: 1_200, actor: .system("test"))
            #expect(!done)
            #expect(try await app.deletionState(type) == (700, 500, 500))

            let types = "\(app.workspacePath)/object-types"
            try await app.request(.get, "\(types)/bulk", token: app.ownerToken).expectProblem(.notFound, "not-found")
            let list = try await app.request(.get, types, token: app.ownerToken)
            #expect((list["data"] as? [Any])?.isEmpty == true, "\(list.body)")
            let records = "\(app.workspacePath)/records/bulk"
            try await app.request(.post, records, token: app.ownerToken, json: #"{"fields": {"n": 1}}"#).expectProblem(.notFound, "not-found")
            try await app.request(.get, "\(records)/\(recordID ?? "")", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.get, records, token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "bulk.deleted"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "type")
            try await app.request(.post, types, token: app.ownerToken, json: bulkType).expectProblem(.conflict, "conflict")
            #expect(try await app.deletionState(type) == (700, 500, 500))

            // The rules are those of any delete: records left need force.
            try await app.request(.delete, "\(types)/bulk", token: app.ownerToken).expectProblem(.conflict, "conflict")
            #expect(try await app.request(.delete, "\(types)/bulk?force=true", token: app.ownerToken).status == .noContent)
            #expect(try await app.deletionState(type) == (0, 1_200, 1_200))
            #expect(try await app.count("object_types") == 0)
            try await app.request(.delete, "\(types)/bulk?force=true", token: app.ownerToken).expectProblem(.notFound, "not-found")
            // The key is free again.
            #expect(try await app.request(.post, types, token: app.ownerToken, json: bulkType).status == .created)
        }
    }

    @Test("members cannot delete a type, and a missing one is a 404, as before")
    func permissions() async throws {
        try await TestApp.run { app in
            let type = try await app.makeBulkType(records: 3)
            let (_, member) = try await app.makeUser("m@example.com", role: .member)
            let path = "\(app.workspacePath)/object-types/bulk?force=true"
            try await app.request(.delete, path, token: member).expectProblem(.forbidden, "forbidden")
            try await app.request(.delete, "\(app.workspacePath)/object-types/nothing", token: app.ownerToken).expectProblem(.notFound, "not-found")
            #expect(try await app.deletionState(type) == (3, 0, 0))
            #expect(try await app.request(.get, "\(app.workspacePath)/object-types/bulk", token: member).status == .ok)
        }
    }
}
