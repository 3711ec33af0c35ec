import Foundation
import Testing

@testable import Switchyard

extension TestApp {
    /// `json` read as a request's `subscriptions` and checked against the live workspace's types.
    func subscriptions(_ json: String) async throws -> SubscriptionList {
        let list = try SubscriptionList.parse(try JSONValue.parse(text: json))
        let catalog = services.eventTypes
        let workspaceID = liveWorkspace.id
        return try await database.read { tx in try catalog.validate(tx, list, workspaceID: workspaceID) }
    }

    /// The live workspace's events as the log stores them, oldest first.
    func storedEvents() async throws -> [Event] {
        let workspaceID = liveWorkspace.id
        return try await database.read { tx in
            try tx.query("SELECT * FROM events WHERE workspace_id = ? ORDER BY id", workspaceID).map(EventStore.event(from:))
        }
    }
}

@Suite("Webhook subscriptions")
struct SubscriptionTests {
    @Test("bad subscriptions are refused with the JSON path of the culprit")
    func refusals() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let wo = #""object_type": "work_order""#
            let cases: [(String, String)] = [
                ("[]", "subscriptions"),
                (#"{"events": ["*"]}"#, "subscriptions"),
                ("[1]", "subscriptions[0]"),
                (#"[{"events": ["*"], "colour": "red"}]"#, "subscriptions[0].colour"),
                (#"[{"object_type": "ticket", "events": ["created"]}]"#, "subscriptions[0].object_type"),
                (#"[{"object_type": "Work Order", "events": ["created"]}]"#, "subscriptions[0].object_type"),
                (#"[{\#(wo)}]"#, "subscriptions[0].events"),
                (#"[{\#(wo), "events": []}]"#, "subscriptions[0].events"),
                (#"[{\#(wo), "events": ["created", "paid"]}]"#, "subscriptions[0].events[1]"),
                (#"[{\#(wo), "events": ["work_order.created"]}]"#, "subscriptions[0].events[0]"),
                (#"[{\#(wo), "events": ["created", "created"]}]"#, "subscriptions[0].events[1]"),
                (#"[{"events": ["Invoice Paid"]}]"#, "subscriptions[0].events[0]"),
                (#"[{"events": ["invoice"]}]"#, "subscriptions[0].events[0]"),
                (#"[{"events": ["invoice.paid", "*"]}]"#, "subscriptions[0].events[1]"),
                (#"[{"events": [3]}]"#, "subscriptions[0].events[0]"),
                (#"[{"name": " ", "events": ["*"]}]"#, "subscriptions[0].name"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"colour": ["red"]}}]"#, "subscriptions[0].filters.colour"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"trade": ["Plumbing", 3]}}]"#, "subscriptions[0].filters.trade[1]"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"nte": [100, "lots"]}}]"#, "subscriptions[0].filters.nte[1]"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"category": ["repair", "fun"]}}]"#, "subscriptions[0].filters.category[1]"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"urgent": ["yes"]}}]"#, "subscriptions[0].filters.urgent[0]"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"priority": [2.5]}}]"#, "subscriptions[0].filters.priority[0]"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"status": [null]}}]"#, "subscriptions[0].filters.status[0]"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"status": "open"}}]"#, "subscriptions[0].filters.status"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"details": [1]}}]"#, "subscriptions[0].filters.details"),
                (#"[{\#(wo), "events": ["updated"], "filters": {"contact": ["a@x.com", "A@X.com"]}}]"#, "subscriptions[0].filters.contact[1]"),
                (#"[{"events": ["*"]}, {\#(wo), "events": ["updated"], "filters": {"trade": []}}]"#, "subscriptions[1].filters.trade"),
                (#"[{"events": ["work_order.updated"], "filters": {"trade": ["HVAC"]}}]"#, "subscriptions[0].filters"),
                (#"[{"events": ["work_order.updated"], "changed": ["status"]}]"#, "subscriptions[0].changed"),
                (#"[{\#(wo), "events": ["updated"], "changed": ["colour"]}]"#, "subscriptions[0].changed[0]"),
                (#"[{\#(wo), "events": ["created"], "changed": ["status"]}]"#, "subscriptions[0].changed"),
                (#"[{"events": ["*"], "created_by": {"type": "robot"}}]"#, "subscriptions[0].created_by.type"),
                (#"[{"events": ["*"], "created_by": {"id": "tok_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}]"#, "subscriptions[0].created_by.type"),
                (#"[{"events": ["*"], "created_by": {"type": "user", "id": "tok_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}]"#, "subscriptions[0].created_by.id"),
                (#"[{"events": ["*"], "created_by": {"type": "user", "name": "x"}}]"#, "subscriptions[0].created_by.name"),
            ]
            for (json, path) in cases {
                do {
                    let list = try await app.subscriptions(json)
                    Issue.record("\(json) was accepted: \(list.jsonText)")
                } catch let error as APIError {
                    #expect(error.problem == .validationFailed, "\(json)")
                    #expect(error.field == path, "\(json): \(error.detail)")
                    #expect(!error.detail.isEmpty)
                }
            }
        }
    }

    @Test("accepted subscriptions are answered in canonical form, values in their stored form, and read back as stored")
    func canonicalForm() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let list = try await app.subscriptions(
                #"""
                [{"name": "Plumbing jobs done", "object_type": "work_order", "events": ["updated", "deleted"],
                  "filters": {"trade": ["Plumbing"], "contact": ["Site@Example.com"], "priority": [3.0], "status": ["completed"]},
                  "changed": ["status"], "created_by": {"type": "api_token", "id": null}},
                 {"events": ["invoice.paid", "work_order.created"], "name": null},
                 {"events": ["*"], "created_by": {"type": "integration", "id": "int_7"}}]
                """#
            )
            let expected =
                #"[{"changed":["status"],"created_by":{"type":"api_token"},"events":["updated","deleted"],"#
                + #""filters":{"contact":["site@example.com"],"priority":[3],"status":["completed"],"trade":["Plumbing"]},"#
                + #""name":"Plumbing jobs done","object_type":"work_order"},"#
                + #"{"events":["invoice.paid","work_order.created"]},{"created_by":{"id":"int_7","type":"integration"},"events":["*"]}]"#
            #expect(list.jsonText == expected)
            #expect(try SubscriptionList(storedText: list.jsonText) == list)
            // A host event type need not have been posted; an object type key can name one too.
            _ = try await app.subscriptions(#"[{"events": ["ticket.escalated", "work_order.note_added"]}]"#)
        }
    }

    @Test("matching: filters, changed, created_by, *, host events, and a deleted record as it was")
    func matching() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let integration = try await app.makeUser("integration@example.com", role: .integrationAdmin)
            let records = "\(app.workspacePath)/records/work_order"
            let one = try await app.createWorkOrder(#"{"number": "WO-1", "trade": "Plumbing", "category": "repair"}"#)
            let two = try await app.createWorkOrder(#"{"number": "WO-2", "trade": "HVAC", "category": "emergency", "nte": 450}"#)
            let three = try await app.createWorkOrder(
                #"{"number": "WO-3", "trade": "Electrical", "category": "maintenance"}"#,
                token: integration.token
            )
            let oneID = try #require(one["id"] as? String)
            let twoID = try #require(two["id"] as? String)
            let integrationTokenID = try #require((three["created_by"] as? [String: Any])?["id"] as? String)
            _ = try await app.request(.patch, "\(records)/\(oneID)", token: app.ownerToken, json: #"{"fields": {"status": "completed"}}"#)
            _ = try await app.request(.patch, "\(records)/\(twoID)", token: app.ownerToken, json: #"{"fields": {"nte": 500}}"#)
            _ = try await app.request(.delete, "\(records)/\(twoID)", token: app.ownerToken)
            _ = try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "invoice.paid"}"#)
            let events = try await app.storedEvents()
            let names = ["WO-1 created", "WO-2 created", "WO-3 created", "WO-1 completed", "WO-2 nte", "WO-2 deleted", "invoice.paid"]
            #expect(
                events.map(\.type) == ["created", "created", "created", "updated", "updated", "deleted"].map { "work_order.\($0)" } + ["invoice.paid"]
            )

            func matched(_ json: String) async throws -> [String] {
                let compiled = try await app.subscriptions(json).compiled()
                return zip(names, events).filter { compiled.matches($1) }.map(\.0)
            }
            let wo = #""object_type": "work_order""#
            let filtered = #"[{\#(wo), "events": ["created"], "filters": {"trade": ["Plumbing", "HVAC"], "category": ["repair", "emergency"]}}]"#
            #expect(try await matched(filtered) == ["WO-1 created", "WO-2 created"])
            #expect(try await matched(#"[{\#(wo), "events": ["created"], "filters": {"trade": ["HVAC"], "category": ["repair"]}}]"#) == [])
            #expect(try await matched(#"[{\#(wo), "events": ["updated"], "changed": ["status", "urgent"]}]"#) == ["WO-1 completed"])
            #expect(
                try await matched(#"[{\#(wo), "events": ["updated"], "filters": {"status": ["completed", "in_progress"]}}]"#) == ["WO-1 completed"]
            )
            #expect(try await matched(#"[{\#(wo), "events": ["created", "updated"], "changed": ["status"]}]"#) == Array(names[0...3]))
            #expect(try await matched(#"[{\#(wo), "events": ["deleted"], "filters": {"trade": ["HVAC"], "nte": [500.0]}}]"#) == ["WO-2 deleted"])
            #expect(
                try await matched(#"[{"events": ["*"], "created_by": {"type": "api_token", "id": "\#(integrationTokenID)"}}]"#) == ["WO-3 created"]
            )
            #expect(try await matched(#"[{\#(wo), "events": ["created"], "created_by": {"type": "api_token"}}]"#) == Array(names[0...2]))
            #expect(try await matched(#"[{"events": ["*"], "created_by": {"type": "user"}}]"#) == [])
            #expect(try await matched(#"[{"events": ["invoice.paid"]}]"#) == ["invoice.paid"])
            #expect(try await matched(#"[{"events": ["*"]}]"#) == names)
            #expect(try await matched(#"[{"events": ["work_order.deleted", "invoice.paid"]}]"#) == ["WO-2 deleted", "invoice.paid"])
            // Several subscriptions: an event matches when any does, once.
            #expect(
                try await matched(#"[\#(filtered.dropFirst().dropLast()), {"events": ["invoice.paid"]}, {"events": ["invoice.paid"]}]"#) == [
                    "WO-1 created", "WO-2 created", "invoice.paid",
                ]
            )

            let compiled = try await app.subscriptions(filtered).compiled()
            #expect(compiled.mayMatch(type: "work_order.created") && !compiled.mayMatch(type: "work_order.updated"))
            #expect(compiled.readsRecordFields)
            #expect(try await app.subscriptions(#"[{"events": ["*"]}]"#).compiled().mayMatch(type: "anything.at_all"))
        }
    }

    @Test("a host event bearing a record event's name does not match a subscription by object type")
    func hostEventNamedLikeRecordEvent() async throws {
        try await TestApp.run { app in
            // Posted while `work_order` was no object type, so allowed then.
            _ = try await app.request(.post, "\(app.workspacePath)/events", token: app.ownerToken, json: #"{"type": "work_order.created"}"#)
            try await app.createWorkOrderType()
            try await app.createWorkOrder(#"{"number": "WO-1"}"#)
            let events = try await app.storedEvents()
            #expect(events.count == 2)
            let byType = try await app.subscriptions(#"[{"object_type": "work_order", "events": ["created"]}]"#).compiled()
            #expect(events.map(byType.matches) == [false, true])
            let byName = try await app.subscriptions(#"[{"events": ["work_order.created"]}]"#).compiled()
            #expect(events.map(byName.matches) == [true, true])
        }
    }
}
