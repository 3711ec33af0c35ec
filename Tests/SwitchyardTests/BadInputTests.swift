import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

/// Every bad input gets a problem document with a stable type and a detail that says what to fix,
/// never a 500, and nothing is written.
@Suite("Bad input")
struct BadInputTests {
    @Test("malformed JSON, wrong types, unknown and missing fields, bad values: 4xx, and nothing written")
    func badBodies() async throws {
        try await TestApp.run { app in
            let users = try await app.count("users")
            let entries = try await app.count("activity_entries")
            let cases: [(String, HTTPResponse.Status, String, String?)] = [
                (#"{"email": "a@example.com", "role": "member""#, .badRequest, "malformed-request", nil),
                ("", .badRequest, "malformed-request", nil),
                (#"["not", "an", "object"]"#, .unprocessableContent, "validation-failed", nil),
                (#"{"email": 42, "role": "member"}"#, .unprocessableContent, "validation-failed", "email"),
                (#"{"email": "a@example.com", "role": "member", "admin": true}"#, .unprocessableContent, "validation-failed", "admin"),
                (#"{"role": "member"}"#, .unprocessableContent, "validation-failed", "email"),
                (#"{"email": "a@example.com", "role": "emperor"}"#, .unprocessableContent, "validation-failed", "role"),
                (#"{"email": "not-an-address", "role": "member"}"#, .unprocessableContent, "validation-failed", "email"),
                (#"{"email": "a@example.com", "role": "member", "password": "short"}"#, .unprocessableContent, "validation-failed", "password"),
                (#"{"email": null, "role": "member"}"#, .unprocessableContent, "validation-failed", "email"),
            ]
            for (body, status, slug, field) in cases {
                let response = try await app.request(.post, "/v1/users", token: app.ownerToken, json: body)
                response.expectProblem(status, slug, field: field)
            }
            #expect(try await app.count("users") == users)
            #expect(try await app.count("activity_entries") == entries)

            try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "x", "expires_at": "tomorrow"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "expires_at")
            try await app.request(.post, "/v1/tokens", token: app.ownerToken, json: #"{"name": "   "}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "name")
            try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "W", "mode": "staging"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "mode")
            try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": ["W"]}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "name")
        }
    }

    @Test("record and event bodies: strict JSON, and the shape checked field by field")
    func recordAndEventBodies() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let records = "\(app.workspacePath)/records/work_order"
            let events = "\(app.workspacePath)/events"
            let cases: [(String, String, HTTPResponse.Status, String, String?)] = [
                (records, #"{"fields": {"trade": "HVAC", "trade": "PLUMBING"}}"#, .badRequest, "malformed-request", nil),
                (records, #"{"fields": {"trade": "HVAC",}}"#, .badRequest, "malformed-request", nil),
                (records, #"{"fields": {"trade": "HVAC"}} x"#, .badRequest, "malformed-request", nil),
                (records, #"{"fields": null}"#, .unprocessableContent, "validation-failed", "fields"),
                (records, #"{"fields": ["trade"]}"#, .unprocessableContent, "validation-failed", "fields"),
                (records, #"{}"#, .unprocessableContent, "validation-failed", "fields"),
                (records, #"{"fields": {}, "version": 2}"#, .unprocessableContent, "validation-failed", "version"),
                (events, #"{"type": 5}"#, .unprocessableContent, "validation-failed", "type"),
                (events, #"{"data": {}}"#, .unprocessableContent, "validation-failed", "type"),
                (events, #"{"type": "invoice.paid", "data": {"a": 1, "a": 2}}"#, .badRequest, "malformed-request", nil),
            ]
            for (path, body, status, slug, field) in cases {
                let response = try await app.request(.post, path, token: app.ownerToken, json: body)
                response.expectProblem(status, slug, field: field)
                if status == .badRequest {
                    #expect((response.json["detail"] as? String)?.contains("at byte") == true, "the detail says where: \(response.body)")
                }
            }
            // Without credentials the body is not even read.
            try await app.request(.post, records, json: #"{"fields": ["trade"]}"#).expectProblem(.unauthorized, "unauthenticated")
            try await app.request(.post, events, json: "not json").expectProblem(.unauthorized, "unauthenticated")
            #expect(try await app.count("records") == 0)
            #expect(try await app.count("events") == 0)
            // `data` may be left out or null.
            #expect(try await app.request(.post, events, token: app.ownerToken, json: #"{"type": "invoice.paid", "data": null}"#).status == .created)
        }
    }

    @Test("a body over the limit is refused with 413")
    func bodyTooLarge() async throws {
        try await TestApp.run(configure: { $0.maximumBodySize = 4096 }) { app in
            let name = String(repeating: "x", count: 10_000)
            try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "\#(name)"}"#)
                .expectProblem(.contentTooLarge, "body-too-large")
            #expect(try await app.count("workspaces") == 2)
        }
    }

    @Test("unknown ids and routes get 404 problems; bad query values 422")
    func unknownThings() async throws {
        try await TestApp.run { app in
            try await app.request(.get, "/v1/workspaces/ws_01ARZ3NDEKTSV4RRFFQ69G5FAV", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.get, "/v1/workspaces/banana", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.get, "/v1/users/usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.delete, "/v1/tokens/tok_01ARZ3NDEKTSV4RRFFQ69G5FAV", token: app.ownerToken).expectProblem(.notFound, "not-found")
            try await app.request(.patch, "/v1/workspaces/ws_01ARZ3NDEKTSV4RRFFQ69G5FAV", token: app.ownerToken, json: #"{"name": "x"}"#)
                .expectProblem(.notFound, "not-found")
            try await app.request(.get, "/v1/nothing-here", token: app.ownerToken).expectProblem(.notFound, "route-not-found")
            try await app.request(.get, "/v1/workspaces/x/y/z", token: app.ownerToken).expectProblem(.notFound, "route-not-found")
            // A known path with a method it does not accept: 405, and `Allow` lists what it does.
            let wrongMethod = try await app.request(.delete, "/v1/ping", token: app.ownerToken)
            wrongMethod.expectProblem(.methodNotAllowed, "method-not-allowed")
            #expect(wrongMethod.headers[.allow] == "GET")
            let wrongOnCollection = try await app.request(.put, "/v1/workspaces/\(app.liveWorkspace.id)/object-types", token: app.ownerToken)
            wrongOnCollection.expectProblem(.methodNotAllowed, "method-not-allowed")
            #expect(wrongOnCollection.headers[.allow] == "GET, POST")
            try await app.request(.get, "/v1/workspaces?limit=0", token: app.ownerToken).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "limit"
            )
            try await app.request(.get, "/v1/workspaces?limit=abc", token: app.ownerToken).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "limit"
            )
            try await app.request(.get, "/v1/activity?since=yesterday", token: app.ownerToken).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "since"
            )
            try await app.request(.get, "/v1/outbox?status=lost", token: app.ownerToken).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "status"
            )
        }
    }

    @Test("a NUL character in a body or URL is refused, never stored or cut")
    func nulCharacters() async throws {
        try await TestApp.run { app in
            try await app.request(.post, "/v1/workspaces", token: app.ownerToken, json: #"{"name": "a\u0000b"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "name")
            try await app.request(.post, "/v1/sessions", json: #"{"email": "a\u0000@x.com", "password": "p"}"#)
                .expectProblem(.unprocessableContent, "validation-failed", field: "email")
            try await app.request(.get, "/v1/users?after=a%00", token: app.ownerToken).expectProblem(.unprocessableContent, "validation-failed")
            try await app.request(.get, "/v1/users?after=%%00", token: app.ownerToken).expectProblem(.unprocessableContent, "validation-failed")
            // `%0` followed by anything else, or `%10`, is not NUL.
            #expect(try await app.request(.get, "/v1/users?after=%010", token: app.ownerToken).status == .ok)
            #expect(try await app.request(.get, "/v1/users?after=%1000", token: app.ownerToken).status == .ok)
            #expect(try await app.count("workspaces") == 2)
        }
    }

    @Test("RFC 3339 times are read strictly")
    func times() {
        #expect(RFC3339.parse("2026-01-31T09:30:00Z") == Date(timeIntervalSince1970: 1_769_851_800))
        #expect(RFC3339.parse("2026-01-31t09:30:00.5+02:00") == Date(timeIntervalSince1970: 1_769_844_600.5))
        #expect(RFC3339.parse("0999-06-15T00:00:00Z").map(RFC3339.format) == "0999-06-15T00:00:00.000Z")
        #expect(RFC3339.parse("1582-10-10T00:00:00Z").map(RFC3339.format) == "1582-10-10T00:00:00.000Z")
        for bad in [
            "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "0000-01-01T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01",
            "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+2:00", "tomorrow",
        ] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("every answer carries a request id, errors included")
    func requestIDs() async throws {
        try await TestApp.run { app in
            for token in [nil, app.ownerToken, "sy_live_bad"] {
                for path in ["/healthz", "/v1/ping", "/v1/nowhere"] {
                    let response = try await app.request(.get, path, token: token)
                    #expect(response.headers[.requestID]?.isEmpty == false, "\(path)")
                }
            }
        }
    }
}
