import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension ObjectType: ResponseEncodable {}
extension Record: ResponseEncodable {}

/// Object types and their fields under `/v1/workspaces/{workspace_id}/object-types`, records under
/// `/v1/workspaces/{workspace_id}/records/{type_key}`.
struct ObjectRoutes {
    let types: ObjectTypeService
    let records: RecordService
    let maximumBodySize: Int

    func add(to router: Router<AppRequestContext>) {
        let typesPath = router.group("v1/workspaces/:workspace_id/object-types")
        typesPath.post { request, context in
            var request = request
            let input = try await request.decodeBody(CreateObjectTypeInput.self, limit: maximumBodySize)
            let type = try await types.create(
                input,
                workspaceID: try context.parameters.require("workspace_id"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            return EditedResponse(status: .created, response: type)
        }
        typesPath.get { request, context in
            let limit = try Validate.limit(request.query("limit"))
            let list = try await types.list(
                workspaceID: try context.parameters.require("workspace_id"),
                credentials: context.credentials,
                audit: context.audit(nil),
                after: request.query("after"),
                limit: limit
            )
            return Page(list, limit: limit, cursor: \.key)
        }
        typesPath.get(":type_key") { _, context in
            try await types.get(
                workspaceID: try context.parameters.require("workspace_id"),
                key: try context.parameters.require("type_key"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
        }
        typesPath.patch(":type_key") { request, context in
            var request = request
            let input = try await request.decodeBody(UpdateObjectTypeInput.self, limit: maximumBodySize)
            return try await types.update(
                input,
                workspaceID: try context.parameters.require("workspace_id"),
                key: try context.parameters.require("type_key"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
        }
        typesPath.delete(":type_key") { request, context -> Response in
            let force = try IdentityRoutes.flag(request.query("force"), name: "force")
            try await types.delete(
                workspaceID: try context.parameters.require("workspace_id"),
                key: try context.parameters.require("type_key"),
                force: force,
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            return Response(status: .noContent)
        }
        typesPath.post(":type_key/fields") { request, context in
            var request = request
            let input = try await request.decodeBody(AddFieldInput.self, limit: maximumBodySize)
            let type = try await types.addField(
                input.field,
                workspaceID: try context.parameters.require("workspace_id"),
                key: try context.parameters.require("type_key"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            return EditedResponse(status: .created, response: type)
        }
        typesPath.patch(":type_key/fields/:field_key") { request, context in
            var request = request
            let input = try await request.decodeBody(UpdateFieldInput.self, limit: maximumBodySize)
            return try await types.updateField(
                input,
                workspaceID: try context.parameters.require("workspace_id"),
                key: try context.parameters.require("type_key"),
                fieldKey: try context.parameters.require("field_key"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
        }
        typesPath.delete(":type_key/fields/:field_key") { _, context in
            try await types.removeField(
                workspaceID: try context.parameters.require("workspace_id"),
                key: try context.parameters.require("type_key"),
                fieldKey: try context.parameters.require("field_key"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
        }

        let recordsPath = router.group("v1/workspaces/:workspace_id/records/:type_key")
        recordsPath.post { request, context -> Response in
            var request = request
            let key = try Idempotency.key(request.headers[.idempotencyKey])
            let input = try await request.decodeBody(RecordInput.self, limit: maximumBodySize)
            let (status, body) = try await records.create(
                input,
                workspaceID: try context.parameters.require("workspace_id"),
                typeKey: try context.parameters.require("type_key"),
                idempotencyKey: key,
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            var response = Response.json(status: status, body: body)
            if status == 201 { response.headers[.eTag] = "\"1\"" }
            return response
        }
        recordsPath.get { request, context in
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
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            return Response.json(status: 200, body: page)
        }
        recordsPath.get(":record_id") { _, context -> Response in
            let (json, version) = try await records.get(
                workspaceID: try context.parameters.require("workspace_id"),
                typeKey: try context.parameters.require("type_key"),
                id: try context.parameters.require("record_id"),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            var response = Response.json(status: 200, body: json)
            response.headers[.eTag] = "\"\(version)\""
            return response
        }
        recordsPath.patch(":record_id") { request, context -> Response in
            var request = request
            let version = try Self.expectedVersion(request)
            let input = try await request.decodeBody(RecordInput.self, limit: maximumBodySize)
            let record = try await records.update(
                input,
                workspaceID: try context.parameters.require("workspace_id"),
                typeKey: try context.parameters.require("type_key"),
                id: try context.parameters.require("record_id"),
                expectedVersion: version,
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            return try Self.recordResponse(record, status: .ok)
        }
        recordsPath.delete(":record_id") { request, context -> Response in
            try await records.delete(
                workspaceID: try context.parameters.require("workspace_id"),
                typeKey: try context.parameters.require("type_key"),
                id: try context.parameters.require("record_id"),
                expectedVersion: try Self.expectedVersion(request),
                credentials: context.credentials,
                audit: context.audit(nil)
            )
            return Response(status: .noContent)
        }
    }

    /// A record with its version as the ETag, for `If-Match`.
    static func recordResponse(_ record: Record, status: HTTPResponse.Status) throws -> Response {
        var response = Response.json(status: Int(status.code), body: RecordJSON.render(record))
        response.headers[.eTag] = "\"\(record.version)\""
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
