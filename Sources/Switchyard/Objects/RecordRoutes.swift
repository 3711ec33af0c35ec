import Foundation
import HTTPTypes
import Hummingbird

/// Records under `/v1/workspaces/{workspace_id}/records/{type_key}`. Answers are written by hand
/// (`RecordJSON`), each with the record's version as its ETag, for `If-Match`.
struct RecordRoutes {
    let authenticator: Authenticator
    let records: RecordService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get(":record_id", use: get)
            .patch(":record_id", use: update)
            .delete(":record_id", use: delete)
    }

    /// With an `Idempotency-Key`, a repeat within 24 hours answers as the first request did and
    /// creates nothing; keys are per caller, so two clients that pick the same key never see each
    /// other's answer.
    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        var request = request
        let key = try Idempotency.key(request.headers[.idempotencyKey])
        let input = try await request.decodeBody(RecordInput.self, limit: maximumBodySize)
        let (workspaceID, typeKey) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        let records = records
        let answer = try await authenticator.createOnce(
            caller,
            key: key,
            workspaceID: workspaceID,
            scope: { "records:\(typeKey):\($0.actorID)" },
            fingerprint: input.idempotencyFingerprint(typeKey: typeKey),
            prefetch: { tx in records.prefetchCreate(tx, workspaceID: workspaceID, typeKey: typeKey) },
            authorize: { _, principal, pending in try records.authorizeCreate(pending, by: principal) },
            create: { tx, principal, type in
                RecordJSON.render(try records.create(tx, input, type: type, by: principal, audit: caller.audit))
            }
        )
        return Self.answer(answer.body, version: answer.status == 201 ? 1 : nil, status: answer.status)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        let limit = try Validate.limit(request.query("limit"))
        var filters: [(String, String)] = []
        for (key, value) in request.queryItems where key.hasPrefix("filter[") && key.hasSuffix("]") {
            filters.append((String(key.dropFirst(7).dropLast()), value))
        }
        let page = try await records.list(
            workspaceID: try context.parameters.require("workspace_id"),
            typeKey: try context.parameters.require("type_key"),
            filters: filters,
            sort: request.query("sort"),
            limit: limit,
            after: request.query("after"),
            caller: caller
        )
        return Response.json(status: 200, body: RecordJSON.page(page))
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        let record = try await records.get(
            workspaceID: try context.parameters.require("workspace_id"),
            typeKey: try context.parameters.require("type_key"),
            id: try context.parameters.require("record_id"),
            caller: caller
        )
        return Self.answer(RecordJSON.render(record), version: record.version)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        var request = request
        let version = try Self.expectedVersion(request)
        let input = try await request.decodeBody(RecordInput.self, limit: maximumBodySize)
        let record = try await records.update(
            input,
            workspaceID: try context.parameters.require("workspace_id"),
            typeKey: try context.parameters.require("type_key"),
            id: try context.parameters.require("record_id"),
            expectedVersion: version,
            caller: caller
        )
        return Self.answer(RecordJSON.render(record), version: record.version)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        try await records.delete(
            workspaceID: try context.parameters.require("workspace_id"),
            typeKey: try context.parameters.require("type_key"),
            id: try context.parameters.require("record_id"),
            expectedVersion: try Self.expectedVersion(request),
            caller: caller
        )
        return Response(status: .noContent)
    }

    /// A record's JSON with its version as the ETag.
    static func answer(_ json: String, version: Int64?, status: Int = 200) -> Response {
        var response = Response.json(status: status, body: json)
        if let version { response.headers[.eTag] = "\"\(version)\"" }
        return response
    }

    /// `If-Match: 3`, `"3"` or `W/"3"`: the version the client last read. `*` matches any version
    /// of a record that exists (RFC 9110), so it checks nothing more than the lookup does.
    static func expectedVersion(_ request: Request) throws -> Int64? {
        guard let header = request.headers[.ifMatch] else { return nil }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { return nil }
        let bare = (trimmed.hasPrefix("W/") ? String(trimmed.dropFirst(2)) : trimmed).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard let version = Int64(bare), version > 0 else {
            throw APIError.validation("`If-Match` must be the record's version (its ETag), such as \"3\".", field: "If-Match")
        }
        return version
    }
}
