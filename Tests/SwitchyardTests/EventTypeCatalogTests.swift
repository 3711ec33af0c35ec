import Foundation
import Testing

@testable import Switchyard

@Suite("Event type catalog")
struct EventTypeCatalogTests {
    @Test("three event types per object type, with a JSON Schema of data built from its fields")
    func recordEventTypes() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let member = try await app.makeUser("member@example.com", role: .member)
            let answer = try await app.request(.get, "\(app.workspacePath)/event-types", token: member.token)
            #expect(answer.status == .ok, "\(answer.body)")
            let data = try #require(answer["data"] as? [[String: Any]])
            #expect(data.map { $0["type"] as? String } == ["work_order.created", "work_order.updated", "work_order.deleted"])
            #expect(data.allSatisfy { $0["object_type"] as? String == "work_order" && ($0["description"] as? String)?.isEmpty == false })

            let schema = try #require(data[1]["schema"] as? [String: Any])
            #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
            #expect(schema["type"] as? String == "object")
            let properties = try #require(schema["properties"] as? [String: Any])
            #expect((properties["type"] as? [String: Any])?["const"] as? String == "work_order")
            let fieldsSchema = try #require(properties["fields"] as? [String: Any])
            #expect(fieldsSchema["required"] as? [String] == ["number", "status"])
            let fields = try #require(fieldsSchema["properties"] as? [String: [String: Any]])
            #expect(
                fields.keys.sorted() == ["category", "contact", "details", "nte", "number", "priority", "scheduled_on", "status", "trade", "urgent"]
            )
            #expect(fields["status"]?["enum"] as? [String] == ["open", "in_progress", "completed"])
            #expect(fields["status"]?["default"] as? String == "open")
            #expect(fields["nte"]?["type"] as? String == "number")
            #expect(fields["nte"]?["title"] as? String == "Not to exceed")
            #expect(fields["priority"]?["type"] as? String == "integer")
            #expect(fields["urgent"]?["type"] as? String == "boolean")
            #expect(fields["scheduled_on"]?["format"] as? String == "date")
            #expect(fields["contact"]?["format"] as? String == "email")
            #expect(fields["details"]?["type"] == nil, "a json field takes any value")

            // A field added later is in the schema at once.
            _ = try await app.request(
                .post,
                "\(app.workspacePath)/object-types/work_order/fields",
                token: app.ownerToken,
                json: #"{"key": "source", "type": "enum", "options": ["portal", "phone"]}"#
            )
            let again = try await app.request(.get, "\(app.workspacePath)/event-types", token: member.token)
            let created = try #require((again["data"] as? [[String: Any]])?.first?["schema"] as? [String: Any])
            let source = ((created["properties"] as? [String: Any])?["fields"] as? [String: Any])?["properties"] as? [String: [String: Any]]
            #expect(source?["source"]?["enum"] as? [String] == ["portal", "phone"])
        }
    }

    @Test("host event types appear once posted, without a schema; other workspaces do not see them")
    func hostEventTypes() async throws {
        try await TestApp.run { app in
            let path = "\(app.workspacePath)/event-types"
            #expect((try await app.request(.get, path, token: app.ownerToken)["data"] as? [Any])?.isEmpty == true)
            for type in ["invoice.paid", "invoice.paid", "site.opened"] {
                _ = try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "\#(type)"}"#)
            }
            let answer = try await app.request(.get, path, token: app.ownerToken)
            #expect(answer.body.contains(#""object_type":null"#) && answer.body.contains(#""schema":null"#), "\(answer.body)")
            let data = try #require(answer["data"] as? [[String: Any]])
            #expect(data.map { $0["type"] as? String } == ["invoice.paid", "site.opened"])
            #expect(try await app.count("host_event_types") == 2)
            let sandbox = try await app.request(.get, "/v1/workspaces/\(app.sandboxWorkspace.id)/event-types", token: app.ownerToken)
            #expect((sandbox["data"] as? [Any])?.isEmpty == true)

            // The type is noted once per process and workspace: the ingest path skips the insert after.
            _ = try await app.database.write { tx in try tx.execute("DELETE FROM host_event_types") }
            _ = try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            #expect(try await app.count("host_event_types") == 0, "known to this process already")
            _ = try await app.request(
                .post,
                "/v1/workspaces/\(app.sandboxWorkspace.id)/events",
                token: app.ownerToken,
                json: #"{"type": "invoice.paid"}"#
            )
            #expect(try await app.count("host_event_types") == 1)
        }
    }

    @Test("the catalog needs a caller who can reach the workspace")
    func access() async throws {
        try await TestApp.run { app in
            try await app.request(.get, "\(app.workspacePath)/event-types").expectProblem(.unauthorized, "unauthenticated")
            let test = try #require(
                try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "t", "mode": "test"}"#)["token"] as? String
            )
            try await app.request(.get, "\(app.workspacePath)/event-types", token: test).expectProblem(.forbidden, "forbidden")
        }
    }
}
