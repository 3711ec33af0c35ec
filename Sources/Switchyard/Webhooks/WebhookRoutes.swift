import Foundation
import Hummingbird

/// `/v1/workspaces/{workspace_id}/webhooks`: endpoints, their secrets, pings and delivery log.
struct WebhookRoutes {
    let authenticator: Authenticator
    let webhooks: WebhookService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get(":endpoint_id", use: get)
            .patch(":endpoint_id", use: update)
            .delete(":endpoint_id", use: delete)
            .get(":endpoint_id/secret", use: secret)
            .post(":endpoint_id/rotate-secret", use: rotateSecret)
            .post(":endpoint_id/ping", use: ping)
            .post(":endpoint_id/recover", use: recover)
            .get(":endpoint_id/deliveries", use: deliveries)
            .get(":endpoint_id/deliveries/:delivery_id/attempts", use: attempts)
            .post(":endpoint_id/deliveries/:delivery_id/retry", use: retry)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        var request = request
        let key = try Idempotency.key(request.headers[.idempotencyKey])
        let input = try await request.decodeBody(CreateEndpointInput.self, limit: maximumBodySize)
        let workspaceID = try context.parameters.require("workspace_id")
        let webhooks = webhooks
        try await webhooks.checkURL(input.url)
        if let code = input.fields.transformation ?? nil { try await webhooks.checkTransformation(code) }
        let answer = try await authenticator.createOnce(
            caller,
            key: key,
            workspaceID: workspaceID,
            scope: { "webhooks:\($0.actorID)" },
            fingerprint: input.idempotencyFingerprint,
            authorize: { tx, principal in try webhooks.authorizeManage(tx, workspaceID: workspaceID, by: principal) },
            create: { tx, principal, _ in
                try webhooks.create(tx, input, workspaceID: workspaceID, by: principal, audit: caller.audit).jsonText
            }
        )
        return Response.json(status: answer.status, body: try await webhooks.withSecret(answer.body, workspaceID: workspaceID))
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<JSONValue> {
        let limit = try Validate.limit(request.query("limit"))
        let status: Endpoint.Status? = try Validate.choice(request.query("status"), field: "status")
        let endpoints = try await webhooks.list(
            caller: try context.caller(),
            workspaceID: try context.parameters.require("workspace_id"),
            status: status,
            after: request.query("after"),
            limit: limit
        )
        return Page(endpoints.map(\.json), limit: limit, cursor: Self.id)
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        return Self.json(try await webhooks.endpoint(caller: try context.caller(), workspaceID: workspaceID, id: id).json)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        var request = request
        let input = try await request.decodeBody(UpdateEndpointInput.self, limit: maximumBodySize)
        return Self.json(try await webhooks.update(caller: try context.caller(), workspaceID: workspaceID, id: id, input).json)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        try await webhooks.delete(caller: try context.caller(), workspaceID: workspaceID, id: id)
        return Response(status: .noContent)
    }

    @Sendable func secret(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        let secret = try await webhooks.secret(caller: try context.caller(), workspaceID: workspaceID, id: id)
        return Self.json(.object(["secret": .string(secret)]))
    }

    @Sendable func rotateSecret(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        let secret = try await webhooks.rotateSecret(caller: try context.caller(), workspaceID: workspaceID, id: id)
        return Self.json(.object(["secret": .string(secret)]))
    }

    @Sendable func ping(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        return Self.json(try await webhooks.ping(caller: try context.caller(), workspaceID: workspaceID, id: id).json)
    }

    struct RecoverInput: JSONObjectBody {
        static let keys: Set<String> = ["since"]
        var since: Date
        init(json object: [String: JSONValue]) throws {
            let text = try JSONBody.required(object, "since", "an RFC 3339 time such as 2026-12-01T10:00:00Z") { $0.stringValue }
            guard let since = RFC3339.parse(text) else {
                throw APIError.validation("`since` must be an RFC 3339 time such as 2026-12-01T10:00:00Z.", field: "since")
            }
            self.since = since
        }
        init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
    }

    @Sendable func recover(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        var request = request
        let input = try await request.decodeBody(RecoverInput.self, limit: maximumBodySize)
        let count = try await webhooks.recover(caller: try context.caller(), workspaceID: workspaceID, id: id, since: input.since)
        return Self.json(.object(["deliveries": .int(Int64(count))]), status: 202)
    }

    @Sendable func deliveries(_ request: Request, context: AppRequestContext) async throws -> Page<JSONValue> {
        let (workspaceID, id) = try Self.ids(context)
        let limit = try Validate.limit(request.query("limit"))
        let status: Delivery.Status? = try Validate.choice(request.query("status"), field: "status")
        let deliveries = try await webhooks.deliveries(
            caller: try context.caller(),
            workspaceID: workspaceID,
            id: id,
            status: status,
            after: request.query("after"),
            limit: limit
        )
        return Page(deliveries.map(\.json), limit: limit, cursor: Self.id)
    }

    @Sendable func attempts(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        let deliveryID = try context.parameters.require("delivery_id")
        let attempts = try await webhooks.attempts(caller: try context.caller(), workspaceID: workspaceID, id: id, deliveryID: deliveryID)
        return Self.json(.object(["data": .array(attempts.map(\.json))]))
    }

    @Sendable func retry(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (workspaceID, id) = try Self.ids(context)
        let deliveryID = try context.parameters.require("delivery_id")
        let delivery = try await webhooks.retry(caller: try context.caller(), workspaceID: workspaceID, id: id, deliveryID: deliveryID)
        return Self.json(delivery.json, status: 202)
    }

    static func ids(_ context: AppRequestContext) throws -> (String, String) {
        (try context.parameters.require("workspace_id"), try context.parameters.require("endpoint_id"))
    }

    static func json(_ value: JSONValue, status: Int = 200) -> Response { Response.json(status: status, body: value.jsonText) }

    /// The id of an item rendered as JSON, for `Page`'s `next_after`.
    static func id(_ item: JSONValue) -> String { item.objectValue?["id"]?.stringValue ?? "" }
}
