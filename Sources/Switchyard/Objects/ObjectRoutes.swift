import Foundation
import Hummingbird

extension ObjectType: ResponseEncodable {}
extension Record: ResponseEncodable {}

/// Object types and their fields under `/v1/workspaces/{workspace_id}/object-types`.
struct ObjectRoutes {
    let authenticator: Authenticator
    let types: ObjectTypeService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get(":type_key", use: get)
            .patch(":type_key", use: update)
            .delete(":type_key", use: delete)
            .post(":type_key/fields", use: addField)
            .patch(":type_key/fields/:field_key", use: updateField)
            .delete(":type_key/fields/:field_key", use: removeField)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<ObjectType> {
        let caller = try context.caller()
        var request = request
        let input = try await request.decodeBody(CreateObjectTypeInput.self, limit: maximumBodySize)
        let type = try await types.create(input, workspaceID: try context.parameters.require("workspace_id"), caller: caller)
        return EditedResponse(status: .created, response: type)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<ObjectType> {
        let caller = try context.caller()
        let limit = try Validate.limit(request.query("limit"))
        let workspaceID = try context.parameters.require("workspace_id")
        let list = try await types.list(workspaceID: workspaceID, caller: caller, after: request.query("after"), limit: limit)
        return Page(list, limit: limit, cursor: \.key)
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> ObjectType {
        let caller = try context.caller()
        let (workspaceID, key) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        return try await types.get(workspaceID: workspaceID, key: key, caller: caller)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> ObjectType {
        let caller = try context.caller()
        var request = request
        let input = try await request.decodeBody(UpdateObjectTypeInput.self, limit: maximumBodySize)
        let (workspaceID, key) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        return try await types.update(input, workspaceID: workspaceID, key: key, caller: caller)
    }

    /// `?force=true` deletes the type's records too.
    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        let force = try Validate.flag(request.query("force"), name: "force")
        let (workspaceID, key) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        try await types.delete(workspaceID: workspaceID, key: key, force: force, caller: caller)
        return Response(status: .noContent)
    }

    @Sendable func addField(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<ObjectType> {
        let caller = try context.caller()
        var request = request
        let input = try await request.decodeBody(AddFieldInput.self, limit: maximumBodySize)
        let (workspaceID, key) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        let type = try await types.addField(input.field, workspaceID: workspaceID, key: key, caller: caller)
        return EditedResponse(status: .created, response: type)
    }

    @Sendable func updateField(_ request: Request, context: AppRequestContext) async throws -> ObjectType {
        let caller = try context.caller()
        var request = request
        let input = try await request.decodeBody(UpdateFieldInput.self, limit: maximumBodySize)
        let (workspaceID, key) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        let fieldKey = try context.parameters.require("field_key")
        return try await types.updateField(input, workspaceID: workspaceID, key: key, fieldKey: fieldKey, caller: caller)
    }

    @Sendable func removeField(_ request: Request, context: AppRequestContext) async throws -> ObjectType {
        let caller = try context.caller()
        let (workspaceID, key) = (try context.parameters.require("workspace_id"), try context.parameters.require("type_key"))
        let fieldKey = try context.parameters.require("field_key")
        return try await types.removeField(workspaceID: workspaceID, key: key, fieldKey: fieldKey, caller: caller)
    }
}
