import Foundation
import Testing

@testable import Switchyard

@Suite("Connectors")
struct ConnectorTests {
    static let echo = jsonString("export async function run(input, ctx) { return { text: input.text }; }")

    @Test("add, read, list in order, replace (created_at kept), delete; activity entries")
    func lifecycle() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await app.integrationID(eSignIntegration)
            let base = "/v1/integrations/\(id)/connectors"
            let added = try await app.request(
                .post,
                base,
                token: app.ownerToken,
                json:
                    #"{"key": "echo", "name": "Echo", "inputs": [{"name": "text", "type": "string", "required": true, "description": "What to echo"}], "code": \#(Self.echo)}"#
            )
            #expect(added.status == .created, "\(added.body)")
            #expect(added["key"] as? String == "echo")
            #expect(added["description"] as? String == "")
            #expect((added["outputs"] as? [Any])?.isEmpty == true)
            try await app.request(.post, base, token: app.ownerToken, json: #"{"key": "echo", "name": "Echo 2", "code": \#(Self.echo)}"#)
                .expectProblem(.conflict, "conflict", field: "key")

            let list = try await app.request(.get, base, token: app.ownerToken)
            #expect(list.objects("data").map { $0["key"] as? String } == ["send_for_esign", "echo"])
            let read = try await app.request(.get, "\(base)/echo", token: app.ownerToken)
            #expect(read.objects("inputs").first?["description"] as? String == "What to echo")

            app.clock.advance(by: 5)
            let replaced = try await app.request(.put, "\(base)/echo", token: app.ownerToken, json: #"{"name": "Echo again", "code": \#(Self.echo)}"#)
            #expect(replaced.status == .ok, "\(replaced.body)")
            #expect(replaced["name"] as? String == "Echo again")
            #expect(replaced["created_at"] as? String == added["created_at"] as? String)
            #expect(replaced["updated_at"] as? String != added["updated_at"] as? String)
            let created = try await app.request(
                .put,
                "\(base)/lookup",
                token: app.ownerToken,
                json: #"{"key": "lookup", "name": "Lookup", "code": \#(Self.echo)}"#
            )
            #expect(created.status == .created, "\(created.body)")
            try await app.request(.put, "\(base)/other", token: app.ownerToken, json: #"{"key": "lookup", "name": "Lookup", "code": \#(Self.echo)}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "key")
            try await app.request(.put, "\(base)/Not-A-Key", token: app.ownerToken, json: #"{"name": "Lookup", "code": \#(Self.echo)}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "connector_key")
            try await app.request(
                .put,
                "\(base)/bad",
                token: app.ownerToken,
                json: #"{"name": "Lookup", "code": \#(jsonString("export function run( {"))}"#
            )
            .expectProblem(.unprocessableContent, "validation-failed", field: "code")
            #expect(
                try await app.request(.get, base, token: app.ownerToken).objects("data").map { $0["key"] as? String } == [
                    "send_for_esign", "echo", "lookup",
                ]
            )

            #expect(try await app.request(.delete, "\(base)/echo", token: app.ownerToken).status == .noContent)
            try await app.request(.delete, "\(base)/echo", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.get, "\(base)/echo", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.get, "/v1/integrations/int_01ARZ3NDEKTSV4RRFFQ69G5FAV/connectors", token: app.ownerToken)
                .expectProblem(.notFound, "not-found")
            try await app.request(
                .put,
                "/v1/integrations/int_01ARZ3NDEKTSV4RRFFQ69G5FAV/connectors/x",
                token: app.ownerToken,
                json: #"{"name": "X", "code": \#(Self.echo)}"#
            )
            .expectProblem(.notFound, "not-found")
            let integration = try await app.request(.get, "/v1/integrations/\(id)", token: app.ownerToken)
            #expect(integration.objects("connectors").map { $0["key"] as? String } == ["send_for_esign", "lookup"])
            let entries = try await app.activityEntries(targetID: id)
            #expect(
                entries.map { "\($0.action) \($0.detail ?? "")" } == [
                    "integration.created auth oauth2, 1 connector", "connector.saved connector echo created",
                    "connector.saved connector echo replaced",
                    "connector.saved connector lookup created", "connector.deleted connector echo",
                ]
            )
        }
    }

    @Test("POST with an Idempotency-Key adds once; members read connectors but cannot change them")
    func idempotencyAndRoles() async throws {
        try await TestApp.runWithIntegrations { app in
            let id = try await app.integrationID(#"{"name": "A", "auth": {"type": "none"}}"#)
            let base = "/v1/integrations/\(id)/connectors"
            let body = #"{"key": "echo", "name": "Echo", "code": \#(Self.echo)}"#
            let first = try await app.request(.post, base, token: app.ownerToken, json: body, headers: [.idempotencyKey: "c-1"])
            let again = try await app.request(.post, base, token: app.ownerToken, json: body, headers: [.idempotencyKey: "c-1"])
            #expect(first.status == .created)
            #expect(again.status == .created)
            #expect(again.body == first.body)
            #expect(try await app.count("connectors") == 1)

            let (_, member) = try await app.makeUser("member@example.com", role: .member)
            #expect(try await app.request(.get, base, token: member).status == .ok)
            #expect(try await app.request(.get, "\(base)/echo", token: member).status == .ok)
            try await app.request(.post, base, token: member, json: #"{"key": "x", "name": "X", "code": \#(Self.echo)}"#).expectProblem(
                .forbidden,
                "forbidden"
            )
            try await app.request(.put, "\(base)/echo", token: member, json: body).expectProblem(.forbidden, "forbidden")
            try await app.request(.delete, "\(base)/echo", token: member).expectProblem(.forbidden, "forbidden")
            #expect(try await app.request(.get, "\(base)/echo", token: member)["name"] as? String == "Echo")
        }
    }
}
