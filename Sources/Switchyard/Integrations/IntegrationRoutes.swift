import Foundation
import Hummingbird

extension Integration: ResponseEncodable {}
extension Connector: ResponseEncodable {}

struct ConnectorList: ResponseEncodable {
    var data: [Connector]
}

/// `/v1/integrations…`: integrations, their connectors, test runs and their history.
struct IntegrationRoutes {
    let authenticator: Authenticator
    let integrations: IntegrationService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("integrations", use: create)
            .get("integrations", use: list)
            .get("integrations/:integration_id", use: get)
            .patch("integrations/:integration_id", use: update)
            .delete("integrations/:integration_id", use: delete)
            .get("integrations/:integration_id/connectors", use: connectors)
            .post("integrations/:integration_id/connectors", use: createConnector)
            .get("integrations/:integration_id/connectors/:connector_key", use: connector)
            .put("integrations/:integration_id/connectors/:connector_key", use: putConnector)
            .delete("integrations/:integration_id/connectors/:connector_key", use: deleteConnector)
            .post("integrations/:integration_id/test", use: test)
            .get("integrations/:integration_id/test-runs", use: testRuns)
    }

    /// With an `Idempotency-Key`, a repeat within 24 hours answers as the first request did and
    /// creates nothing. The answer holds no secret (only the secret configuration's keys).
    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        var request = request
        let key = try Idempotency.key(request.headers[.idempotencyKey])
        let input = try await request.decodeBody(CreateIntegrationInput.self, limit: maximumBodySize)
        let integrations = integrations
        try IntegrationService.requireManager(try await authenticator.principal(caller))
        try await integrations.prepare(input)
        let answer = try await authenticator.createOnce(
            caller,
            key: key,
            workspaceID: "organization",
            scope: { "integrations:\($0.actorID)" },
            fingerprint: input.idempotencyFingerprint,
            authorize: { _, principal in try IntegrationService.requireManager(principal) },
            create: { tx, principal, _ in
                try JSONCoding.encodeText(try integrations.create(tx, input, by: principal, audit: caller.audit))
            }
        )
        return Response.json(status: answer.status, body: answer.body)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<Integration> {
        let limit = try Validate.limit(request.query("limit"))
        let found = try await integrations.list(caller: try context.caller(), query: request.query("q"), after: request.query("after"), limit: limit)
        return Page(found, limit: limit, cursor: \.id)
    }

    /// `…/{id}.yaml` may reach this handler too (the router files `{id}.yaml` and `:id` under one
    /// node in the running server): the path's suffix decides, so the export is always YAML.
    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        if request.uri.path.hasSuffix(".yaml") {
            return try await IntegrationDocumentRoutes(integrations: integrations, maximumBodySize: maximumBodySize).export(request, context: context)
        }
        let integration = try await integrations.integration(caller: try context.caller(), id: try context.parameters.require("integration_id"))
        return try integration.response(from: request, context: context)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Integration {
        var request = request
        let input = try await request.decodeBody(UpdateIntegrationInput.self, limit: maximumBodySize)
        return try await integrations.update(caller: try context.caller(), id: try context.parameters.require("integration_id"), input)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await integrations.delete(caller: try context.caller(), id: try context.parameters.require("integration_id"))
        return Response(status: .noContent)
    }

    @Sendable func connectors(_ request: Request, context: AppRequestContext) async throws -> ConnectorList {
        let id = try context.parameters.require("integration_id")
        return ConnectorList(data: try await integrations.connectors(caller: try context.caller(), integrationID: id))
    }

    @Sendable func createConnector(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try context.caller()
        let integrationID = try context.parameters.require("integration_id")
        var request = request
        let key = try Idempotency.key(request.headers[.idempotencyKey])
        let body = try await request.decodeBody(ConnectorBody.self, limit: maximumBodySize)
        let integrations = integrations
        try IntegrationService.requireManager(try await authenticator.principal(caller))
        let input = try await integrations.prepareConnector(body, pathKey: nil)
        let answer = try await authenticator.createOnce(
            caller,
            key: key,
            workspaceID: "organization",
            scope: { "connectors:\($0.actorID):\(integrationID)" },
            fingerprint: body.fingerprint,
            authorize: { tx, principal in try integrations.authorizeConnectorChange(tx, integrationID: integrationID, by: principal) },
            create: { tx, principal, integration in
                try JSONCoding.encodeText(try integrations.createConnector(tx, input, integration: integration, by: principal, audit: caller.audit))
            }
        )
        return Response.json(status: answer.status, body: answer.body)
    }

    @Sendable func connector(_ request: Request, context: AppRequestContext) async throws -> Connector {
        let (id, key) = try Self.connectorIDs(context)
        return try await integrations.connector(caller: try context.caller(), integrationID: id, key: key)
    }

    @Sendable func putConnector(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<Connector> {
        let (id, key) = try Self.connectorIDs(context)
        var request = request
        let body = try await request.decodeBody(ConnectorBody.self, limit: maximumBodySize)
        let saved = try await integrations.putConnector(caller: try context.caller(), integrationID: id, key: key, body)
        return EditedResponse(status: saved.created ? .created : .ok, response: saved.connector)
    }

    @Sendable func deleteConnector(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (id, key) = try Self.connectorIDs(context)
        try await integrations.deleteConnector(caller: try context.caller(), integrationID: id, key: key)
        return Response(status: .noContent)
    }

    /// 200 whatever the script did: the run says it.
    @Sendable func test(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("integration_id")
        var request = request
        let input = try await request.decodeBody(TestRunInput.self, limit: maximumBodySize)
        let run = try await integrations.test(caller: try context.caller(), integrationID: id, input)
        return Response.json(status: 200, body: run.json.jsonText)
    }

    @Sendable func testRuns(_ request: Request, context: AppRequestContext) async throws -> Page<JSONValue> {
        let id = try context.parameters.require("integration_id")
        let limit = try Validate.limit(request.query("limit"))
        let runs = try await integrations.testRuns(caller: try context.caller(), integrationID: id, after: request.query("after"), limit: limit)
        return Page(runs.map(\.json), limit: limit, cursor: Self.id)
    }

    static func connectorIDs(_ context: AppRequestContext) throws -> (String, String) {
        (try context.parameters.require("integration_id"), try context.parameters.require("connector_key"))
    }

    /// The id of a run rendered as JSON, for `Page`'s `next_after`.
    static func id(_ item: JSONValue) -> String { item.objectValue?["id"]?.stringValue ?? "" }
}
