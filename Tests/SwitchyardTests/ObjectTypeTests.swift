import Foundation
import Testing

@testable import Switchyard

/// A work order as ServiceChannel's subscribers see one: status, trade, category, and notes.
let workOrderType = #"""
    {"key": "work_order", "name": "Work order", "description": "A job at a site", "fields": [
      {"key": "number", "type": "text", "required": true, "unique": true},
      {"key": "status", "type": "enum", "options": ["open", "in_progress", "completed"], "required": true, "default": "open"},
      {"key": "trade", "type": "text"},
      {"key": "category", "type": "enum", "options": ["repair", "maintenance", "emergency"]},
      {"key": "nte", "label": "Not to exceed", "type": "number"},
      {"key": "priority", "type": "integer", "default": 3},
      {"key": "urgent", "type": "boolean"},
      {"key": "scheduled_on", "type": "date"},
      {"key": "contact", "type": "email"},
      {"key": "details", "type": "json"}
    ]}
    """#

let noteType = #"""
    {"key": "note", "name": "Note", "fields": [
      {"key": "work_order", "type": "reference", "reference": "work_order", "required": true},
      {"key": "body", "type": "text", "required": true}
    ]}
    """#

extension TestApp {
    var workspacePath: String { "/v1/workspaces/\(liveWorkspace.id)" }

    /// The event log page for `query` once it holds `count` events. On PostgreSQL an event shows
    /// once every older transaction in the database has ended (other tests' included), so a
    /// reader waits briefly rather than expecting it at once.
    func events(_ query: String = "", count: Int, workspace: String? = nil) async throws -> TestResponse {
        let path = "/v1/workspaces/\(workspace ?? liveWorkspace.id)/events\(query)"
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let page = try await request(.get, path, token: ownerToken)
            if (page["data"] as? [Any])?.count ?? 0 >= count || ContinuousClock.now > deadline { return page }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func createWorkOrderType() async throws {
        let created = try await request(.post, "\(workspacePath)/object-types", token: ownerToken, json: workOrderType)
        #expect(created.status == .created, "\(created.body)")
    }

    @discardableResult
    func createWorkOrder(_ fields: String, token: String? = nil) async throws -> TestResponse {
        try await request(.post, "\(workspacePath)/records/work_order", token: token ?? ownerToken, json: #"{"fields": \#(fields)}"#)
    }
}

@Suite("Object types")
struct ObjectTypeTests {
    @Test("create, read, list, rename; fields added, relabelled and removed")
    func lifecycle() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let type = try await app.request(.get, "\(app.workspacePath)/object-types/work_order", token: app.ownerToken)
            let fields = try #require(type["fields"] as? [[String: Any]])
            #expect(fields.count == 10)
            #expect(fields[1]["default"] as? String == "open")
            #expect(fields[4]["label"] as? String == "Not to exceed")
            let list = try await app.request(.get, "\(app.workspacePath)/object-types", token: app.ownerToken)
            #expect((list["data"] as? [[String: Any]])?.map { $0["key"] as? String } == ["work_order"])

            #expect(
                try await app.request(
                    .patch,
                    "\(app.workspacePath)/object-types/work_order",
                    token: app.ownerToken,
                    json: #"{"name": "Job"}"#
                )["name"] as? String == "Job"
            )
            // A description may run over several lines; other control characters are refused.
            let described = try await app.request(
                .patch,
                "\(app.workspacePath)/object-types/work_order",
                token: app.ownerToken,
                json: #"{"description": "A job at a site.\n\nOpened by the store."}"#
            )
            #expect(described["description"] as? String == "A job at a site.\n\nOpened by the store.")
            try await app.request(
                .patch,
                "\(app.workspacePath)/object-types/work_order",
                token: app.ownerToken,
                json: #"{"description": "bell\u0007"}"#
            ).expectProblem(.unprocessableContent, "validation-failed", field: "description")
            let added = try await app.request(
                .post,
                "\(app.workspacePath)/object-types/work_order/fields",
                token: app.ownerToken,
                json: #"{"key": "site", "type": "text"}"#
            )
            #expect(added.status == .created)
            try await app.createWorkOrder(#"{"number": "WO-1", "site": "Store 12", "trade": "HVAC"}"#)
            let relabelled = try await app.request(
                .patch,
                "\(app.workspacePath)/object-types/work_order/fields/site",
                token: app.ownerToken,
                json: #"{"label": "Store"}"#
            )
            #expect((relabelled["fields"] as? [[String: Any]])?.last?["label"] as? String == "Store")
            let removed = try await app.request(.delete, "\(app.workspacePath)/object-types/work_order/fields/site", token: app.ownerToken)
            #expect(removed.status == .ok)
            // The value went with the field.
            let records = try await app.request(.get, "\(app.workspacePath)/records/work_order", token: app.ownerToken)
            let record = try #require((records["data"] as? [[String: Any]])?.first)
            #expect((record["fields"] as? [String: Any])?["site"] == nil)
            #expect((record["fields"] as? [String: Any])?["trade"] as? String == "HVAC")
        }
    }

    @Test("a required field added later fills its default into existing records")
    func requiredFieldFillsExistingRecords() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.createWorkOrder(#"{"number": "WO-1"}"#)
            try await app.createWorkOrder(#"{"number": "WO-2"}"#)
            let path = "\(app.workspacePath)/object-types/work_order/fields"
            try await app.request(.post, path, token: app.ownerToken, json: #"{"key": "region", "type": "text", "required": true}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "default")
            let added = try await app.request(
                .post,
                path,
                token: app.ownerToken,
                json: #"{"key": "region", "type": "text", "required": true, "default": "north"}"#
            )
            #expect(added.status == .created)
            let list = try await app.request(.get, "\(app.workspacePath)/records/work_order?filter[region]=north", token: app.ownerToken)
            #expect((list["data"] as? [Any])?.count == 2)
            // `"default": null` removes a default.
            let cleared = try await app.request(.patch, "\(path)/priority", token: app.ownerToken, json: #"{"default": null}"#)
            #expect((cleared["fields"] as? [[String: Any]])?.first { $0["key"] as? String == "priority" }?["default"] == nil)
            // An enum's default must stay one of its options.
            try await app.request(.patch, "\(path)/status", token: app.ownerToken, json: #"{"options": ["in_progress", "completed"]}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "default")
        }
    }

    @Test("bad definitions are refused with the field path, and nothing is created")
    func badDefinitions() async throws {
        try await TestApp.run { app in
            let path = "\(app.workspacePath)/object-types"
            let cases: [(String, String)] = [
                (#"{"key": "Work Order", "name": "W"}"#, "key"),
                (#"{"key": "w", "name": "W", "fields": [{"key": "s", "type": "enum"}]}"#, "fields[0].options"),
                (#"{"key": "w", "name": "W", "fields": [{"key": "s", "type": "colour"}]}"#, "fields[0].type"),
                (#"{"key": "w", "name": "W", "fields": [{"key": "s", "type": "text", "requird": true}]}"#, "fields[0].requird"),
                (#"{"key": "w", "name": "W", "fields": [{"key": "a", "type": "text"}, {"key": "a", "type": "text"}]}"#, "fields[1].key"),
                (#"{"key": "w", "name": "W", "fields": [{"key": "r", "type": "reference", "reference": "nothing"}]}"#, "fields[0].reference"),
                (#"{"key": "w", "name": "W", "fields": [{"key": "n", "type": "integer", "default": "three"}]}"#, "fields[0].default"),
            ]
            for (body, field) in cases {
                try await app.request(.post, path, token: app.ownerToken, json: body).expectProblem(
                    .unprocessableContent,
                    "validation-failed",
                    field: field
                )
            }
            #expect(try await app.count("object_types") == 0)
            try await app.createWorkOrderType()
            try await app.request(.post, path, token: app.ownerToken, json: workOrderType).expectProblem(.conflict, "conflict", field: "key")
            try await app.request(.get, "\(path)/nothing", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.post, "/v1/workspaces/ws_01ARZ3NDEKTSV4RRFFQ69G5FAV/object-types", token: app.ownerToken, json: workOrderType)
                .expectProblem(.notFound, "not-found")
        }
    }

    @Test("at most 150 data fields by default, and the limit is a setting")
    func fieldLimit() async throws {
        @Sendable func definition(_ count: Int) -> String {
            let fields = (1...count).map { #"{"key": "f\#($0)", "type": "text"}"# }.joined(separator: ",")
            return #"{"key": "wide", "name": "Wide", "fields": [\#(fields)]}"#
        }
        try await TestApp.run { app in
            let path = "\(app.workspacePath)/object-types"
            try await app.request(.post, path, token: app.ownerToken, json: definition(151)).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "fields"
            )
            #expect(try await app.request(.post, path, token: app.ownerToken, json: definition(150)).status == .created)
            try await app.request(.post, "\(path)/wide/fields", token: app.ownerToken, json: #"{"key": "f151", "type": "text"}"#)
                .expectProblem(.unprocessableContent, "validation-failed")
            let fields = try await app.request(.get, "\(path)/wide", token: app.ownerToken)["fields"] as? [Any]
            #expect(fields?.count == 150)
        }
        try await TestApp.run(configure: { $0.maximumDataFields = 200 }) { app in
            let wide = try await app.request(.post, "\(app.workspacePath)/object-types", token: app.ownerToken, json: definition(151))
            #expect(wide.status == .created)
        }
    }

    @Test("references never dangle: a referenced record, or a referenced type, cannot be deleted")
    func referencesRestrict() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let types = "\(app.workspacePath)/object-types"
            #expect(try await app.request(.post, types, token: app.ownerToken, json: noteType).status == .created)
            let order = try #require(try await app.createWorkOrder(#"{"number": "WO-1"}"#)["id"] as? String)
            let note = try await app.request(
                .post,
                "\(app.workspacePath)/records/note",
                token: app.ownerToken,
                json: #"{"fields": {"work_order": "\#(order)", "body": "Tech on site"}}"#
            )
            let noteID = try #require(note["id"] as? String)
            let events = try await app.count("events")

            try await app.request(.delete, "\(app.workspacePath)/records/work_order/\(order)", token: app.ownerToken)
                .expectProblem(.conflict, "conflict")
            try await app.request(.delete, "\(types)/work_order?force=true", token: app.ownerToken).expectProblem(.conflict, "conflict")
            #expect(try await app.count("records") == 2)
            #expect(try await app.count("events") == events)

            #expect(try await app.request(.delete, "\(app.workspacePath)/records/note/\(noteID)", token: app.ownerToken).status == .noContent)
            #expect(try await app.request(.delete, "\(app.workspacePath)/records/work_order/\(order)", token: app.ownerToken).status == .noContent)
            #expect(try await app.request(.delete, "\(types)/note", token: app.ownerToken).status == .noContent)
            #expect(try await app.request(.delete, "\(types)/work_order", token: app.ownerToken).status == .noContent)
        }
    }

    @Test("a locked type refuses changes with a clear error")
    func lockedType() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.services.objectTypes.setLocked(true, workspaceID: app.liveWorkspace.id, key: "work_order")
            let path = "\(app.workspacePath)/object-types/work_order"
            try await app.request(.post, "\(path)/fields", token: app.ownerToken, json: #"{"key": "x", "type": "text"}"#)
                .expectProblem(.conflict, "object-type-locked")
            try await app.request(.patch, "\(path)/fields/trade", token: app.ownerToken, json: #"{"label": "T"}"#)
                .expectProblem(.conflict, "object-type-locked")
            try await app.request(.delete, "\(path)/fields/trade", token: app.ownerToken).expectProblem(.conflict, "object-type-locked")
            try await app.request(.delete, path, token: app.ownerToken).expectProblem(.conflict, "object-type-locked")
            // Records of a locked type are still written as usual.
            #expect(try await app.createWorkOrder(#"{"number": "WO-1"}"#).status == .created)
        }
    }

    @Test("deleting a type with records needs force, and records each deletion as an event")
    func deleteWithForce() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            for n in 1...3 { try await app.createWorkOrder(#"{"number": "WO-\#(n)"}"#) }
            let path = "\(app.workspacePath)/object-types/work_order"
            try await app.request(.delete, path, token: app.ownerToken).expectProblem(.conflict, "conflict")
            #expect(try await app.count("records") == 3)
            #expect(try await app.request(.delete, "\(path)?force=true", token: app.ownerToken).status == .noContent)
            #expect(try await app.count("records") == 0)
            #expect(try await app.count("object_types") == 0)
            let deleted = try await app.events("?type=work_order.deleted", count: 3)
            #expect((deleted["data"] as? [Any])?.count == 3)
        }
    }

    @Test("members read object types but cannot change them")
    func permissions() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let (_, member) = try await app.makeUser("m@example.com", role: .member)
            #expect(try await app.request(.get, "\(app.workspacePath)/object-types/work_order", token: member).status == .ok)
            try await app.request(.post, "\(app.workspacePath)/object-types", token: member, json: noteType).expectProblem(.forbidden, "forbidden")
            try await app.createWorkOrder(#"{"number": "WO-1"}"#, token: member).expectProblem(.forbidden, "forbidden")
        }
    }
}
