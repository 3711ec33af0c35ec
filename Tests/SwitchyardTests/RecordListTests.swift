import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

@Suite("Record lists")
struct RecordListTests {
    @Test("lists filter (several values = any), sort, and page with a cursor")
    func listing() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let statuses = ["open", "in_progress", "completed", "open", "completed", "open"]
            for (n, status) in statuses.enumerated() {
                try await app.createWorkOrder(#"{"number": "WO-\#(n)", "status": "\#(status)", "nte": \#(n * 100), "urgent": \#(n % 2 == 0)}"#)
            }
            let base = "\(app.workspacePath)/records/work_order"
            func numbers(_ query: String) async throws -> [String] {
                let page = try await app.request(.get, "\(base)?\(query)", token: app.ownerToken)
                #expect(page.status == .ok, "\(page.body)")
                return (page["data"] as? [[String: Any]] ?? []).compactMap { ($0["fields"] as? [String: Any])?["number"] as? String }
            }
            #expect(try await numbers("filter[status]=open") == ["WO-0", "WO-3", "WO-5"])
            #expect(try await numbers("filter[status]=in_progress&filter[status]=completed") == ["WO-1", "WO-2", "WO-4"])
            #expect(try await numbers("filter[status]=open&filter[urgent]=true") == ["WO-0"])
            #expect(try await numbers("filter[nte]=300") == ["WO-3"])
            // Names percent-encoded, as browsers and Python send them.
            #expect(try await numbers("filter%5Bstatus%5D=in_progress") == ["WO-1"])
            try await app.request(.get, "\(base)?filter[status]=lost", token: app.ownerToken).expectProblem(
                .unprocessableContent,
                "validation-failed"
            )
            #expect(try await numbers("sort=-nte&limit=2") == ["WO-5", "WO-4"])
            #expect(try await numbers("sort=-created_at&limit=3") == ["WO-5", "WO-4", "WO-3"])

            var seen: [String] = []
            var after: String?
            for sort in ["created_at", "nte"] {
                seen = []
                after = nil
                repeat {
                    let page = try await app.request(
                        .get,
                        "\(base)?sort=\(sort)&limit=4" + (after.map { "&after=\($0)" } ?? ""),
                        token: app.ownerToken
                    )
                    seen += (page["data"] as? [[String: Any]] ?? []).compactMap { ($0["fields"] as? [String: Any])?["number"] as? String }
                    after = page["next_after"] as? String
                } while after != nil
                #expect(seen == (0..<6).map { "WO-\($0)" }, "sort \(sort)")
            }
            try await app.request(.get, "\(base)?filter[colour]=red", token: app.ownerToken).expectProblem(.unprocessableContent, "validation-failed")
            try await app.request(.get, "\(base)?filter[nte]=lots", token: app.ownerToken).expectProblem(.unprocessableContent, "validation-failed")
            try await app.request(.get, "\(base)?sort=colour", token: app.ownerToken).expectProblem(
                .unprocessableContent,
                "validation-failed",
                field: "sort"
            )
        }
    }

    @Test("every sort pages through all records exactly once, also while records change between pages")
    func keysetPaging() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            let base = "\(app.workspacePath)/records/work_order"
            var created = 0
            func create(_ fields: [String: String]) async throws {
                let body = (fields.merging(["number": #""WO-\#(created)""#]) { $1 }).map { #""\#($0)": \#($1)"# }
                created += 1
                #expect(try await app.createWorkOrder("{\(body.joined(separator: ", "))}").status == .created)
            }
            func page(_ sort: String, _ limit: Int, _ after: String?) async throws -> (ids: [String], next: String?) {
                let page = try await app.request(
                    .get,
                    "\(base)?sort=\(sort)&limit=\(limit)" + (after.map { "&after=\($0)" } ?? ""),
                    token: app.ownerToken
                )
                #expect(page.status == .ok, "\(page.body)")
                return ((page["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }, page["next_after"] as? String)
            }
            func rest(_ sort: String, _ limit: Int, after start: String?) async throws -> [String] {
                var ids: [String] = []
                var after = start
                for _ in 0..<100 where after != nil {
                    let next = try await page(sort, limit, after)
                    ids += next.ids
                    after = next.next
                }
                return ids
            }
            func all(_ sort: String, _ limit: Int) async throws -> [String] {
                let first = try await page(sort, limit, nil)
                return first.ids + (try await rest(sort, limit, after: first.next))
            }
            // Duplicate values and unset fields in every sorted field; updated_at in groups of four.
            for n in 0..<12 {
                try await create(
                    [
                        "trade": [#""hvac""#, nil, #""plumbing""#, #""hvac""#, #""electrical""#, nil][n % 6],
                        "nte": ["100", nil, "250.5", "100", "-3", nil, "100"][n % 7], "urgent": ["true", "false", nil][n % 3],
                        "category": [#""repair""#, nil, #""emergency""#, #""repair""#, #""maintenance""#][n % 5],
                    ].compactMapValues { $0 }
                )
                if n % 4 == 3 { app.clock.advance(by: 1) }
            }
            // The field each sort reads, and values that sort first and last when ascending.
            let sorts: [(sort: String, field: String, low: String, high: String)] = ["", "-"].flatMap { dir in
                [
                    ("\(dir)trade", "trade", #""aaa""#, #""zzz""#), ("\(dir)nte", "nte", "-1000", "1000"),
                    ("\(dir)urgent", "urgent", "false", "true"),
                    ("\(dir)category", "category", #""emergency""#, #""repair""#), ("\(dir)updated_at", "trade", #""aaa""#, #""zzz""#),
                ]
            }
            for (sort, _, _, _) in sorts {
                let unpaged = try await page(sort, 200, nil).ids
                #expect(unpaged.count == 12 && Set(unpaged).count == 12, "sort \(sort)")
                for limit in [2, 3] {
                    #expect(try await all(sort, limit) == unpaged, "sort \(sort), limit \(limit)")
                }
            }
            for (round, (sort, field, low, high)) in sorts.enumerated() {
                let before = try await page(sort, 200, nil).ids
                let first = try await page(sort, 3, nil)
                // Move read records past the cursor and unread ones before it, unset one, delete a
                // read one, and add records at both ends and unset: an offset would now be off.
                app.clock.advance(by: 1)
                let vary = { (value: String) in
                    field != "trade" && field != "nte" ? value : value.hasPrefix("\"") ? "\(value.dropLast())\(round)\"" : "\(value)\(round)"
                }
                let n = before.count
                let changes = [
                    (before[1], vary(low)), (before[4], vary(high)), (before[n - 1], vary(low)), (before[n - 2], vary(high)), (before[n - 3], "null"),
                ]
                for (id, value) in changes {
                    let patched = try await app.request(
                        .patch,
                        "\(base)/\(id)",
                        token: app.ownerToken,
                        json: #"{"fields": {"\#(field)": \#(value)}}"#
                    )
                    #expect(patched.status == .ok, "\(patched.body)")
                }
                #expect(try await app.request(.delete, "\(base)/\(before[2])", token: app.ownerToken).status == .noContent)
                for value in [vary(low), vary(high), nil] { try await create(value.map { [field: $0] } ?? [:]) }
                let seen = first.ids + (try await rest(sort, 3, after: first.next))
                let untouched = before.filter { id in id != before[2] && !changes.contains { $0.0 == id } }
                #expect(seen.filter { untouched.contains($0) } == untouched, "sort \(sort): \(seen) against \(before)")
                #expect(seen.allSatisfy { id in seen.filter { $0 == id }.count == 1 || changes.contains { $0.0 == id } }, "sort \(sort)")
            }
        }
    }

    @Test("an `after` that is not the `next_after` of a page is refused")
    func malformedCursor() async throws {
        try await TestApp.run { app in
            try await app.createWorkOrderType()
            try await app.createWorkOrder(#"{"number": "WO-1", "trade": "hvac"}"#)
            let base = "\(app.workspacePath)/records/work_order"
            let id = ID.make("rec")
            func keyset(_ json: String) -> String {
                "k."
                    + Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            }
            let page = try await app.request(.get, "\(base)?sort=trade&limit=1", token: app.ownerToken)
            let last = try #require((page["data"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(page["next_after"] as? String == keyset(#"["hvac","\#(last)"]"#))
            let valid = [
                ("trade", keyset(#"["hvac","\#(id)"]"#)), ("-nte", keyset(#"[2.5,"\#(id)"]"#)), ("nte", keyset(#"[null,"\#(id)"]"#)),
                ("urgent", keyset(#"[1,"\#(id)"]"#)), ("updated_at", keyset(#"[1790000000000,"\#(id)"]"#)), ("created_at", id),
            ]
            for (sort, after) in valid {
                let answer = try await app.request(.get, "\(base)?sort=\(sort)&after=\(after)", token: app.ownerToken)
                #expect(answer.status == .ok, "\(sort) \(after): \(answer.body)")
            }
            let invalid = [
                ("trade", "o.5"), ("trade", "k.!!!"), ("trade", "k."), ("trade", keyset("not json")), ("trade", keyset(#"["hvac"]"#)),
                ("trade", keyset(#"["hvac","\#(id)",1]"#)), ("trade", keyset(#"{"hvac":"\#(id)"}"#)), ("trade", keyset(#"["hvac","rec_1"]"#)),
                ("trade", keyset(#"[1,"\#(id)"]"#)), ("trade", keyset(#"["hvac","\#(id)"]"#) + "%3D"), ("trade", id),
                ("nte", keyset(#"["1","\#(id)"]"#)), ("urgent", keyset(#"[2,"\#(id)"]"#)), ("urgent", keyset(#"[true,"\#(id)"]"#)),
                ("updated_at", keyset(#"[null,"\#(id)"]"#)), ("updated_at", keyset(#"[1.5,"\#(id)"]"#)),
                ("created_at", keyset(#"["hvac","\#(id)"]"#)),
            ]
            for (sort, after) in invalid {
                try await app.request(.get, "\(base)?sort=\(sort)&after=\(after)", token: app.ownerToken)
                    .expectProblem(.unprocessableContent, "validation-failed", field: "after")
            }
        }
    }
}
