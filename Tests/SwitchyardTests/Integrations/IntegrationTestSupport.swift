import Foundation
import Testing

@testable import Switchyard

extension TestApp {
    /// Connectors reach the tests' third-party stand-ins on loopback (LoopbackReceiver), which
    /// production refuses unless the operator allows it: 127.0.0.0/8 is allowed here.
    static func runWithIntegrations(_ body: @escaping @Sendable (TestApp) async throws -> Void) async throws {
        try await run(
            configure: { configuration in
                configuration.webhooks.allowedTargetNetworks = (try? IPNetwork(parsing: "127.0.0.0/8")).map { [$0] } ?? []
            },
            body
        )
    }

    /// Creates an integration as the owner; answers its JSON.
    @discardableResult
    func createIntegration(_ body: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let created = try await request(.post, "/v1/integrations", token: ownerToken, json: body)
        #expect(created.status == .created, "\(created.body)", sourceLocation: sourceLocation)
        return created.json
    }

    func integrationID(_ body: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        try #require(try await createIntegration(body, sourceLocation: sourceLocation)["id"] as? String, sourceLocation: sourceLocation)
    }

    /// `POST /v1/integrations/{id}/test` as the owner; a 200 is expected.
    func testRun(
        _ integrationID: String,
        _ body: String,
        token: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws
        -> TestResponse
    {
        let answer = try await request(.post, "/v1/integrations/\(integrationID)/test", token: token ?? ownerToken, json: body)
        #expect(answer.status == .ok, "\(answer.body)", sourceLocation: sourceLocation)
        return answer
    }

    /// A connection written straight to the store (the connections API has tests of its own),
    /// its credentials or tokens sealed as ConnectionService opens them.
    func makeConnection(
        integrationID: String,
        workspaceID: String? = nil,
        secrets: JSONValue,
        status: Connection.Status = .active
    ) async throws -> Connection {
        let now = clock.now
        let sealed = try services.sealer.sealConnectionSecrets(secrets)
        let workspace = workspaceID ?? liveWorkspace.id
        let id = ID.make("con", at: now)
        let row = try await database.write { tx -> Connection in
            let integration = try #require(try IntegrationStore.integrationOnly(tx, id: integrationID))
            let connection = Connection(
                id: id,
                integrationId: integrationID,
                integrationName: integration.name,
                workspaceId: workspace,
                status: status,
                authType: integration.auth.type,
                scopes: nil,
                expiresAt: nil,
                lastAuthorizedAt: now,
                lastRefreshedAt: nil,
                lastError: nil,
                createdBy: Record.CreatedBy(type: "user", id: nil),
                createdAt: now,
                updatedAt: now
            )
            try ConnectionStore.insert(tx, connection, sealedSecrets: sealed)
            return connection
        }
        return row
    }

    /// A personal token of the owner limited to `workspaces`.
    func limitedToken(_ workspaces: [String], mode: TokenMode = .live) async throws -> String {
        let owner = try #require(try await services.users.user(email: "owner@example.com"))
        return try await services.tokens.create(
            CreateTokenInput(name: "limited", mode: mode, workspaces: workspaces),
            for: owner.id,
            by: nil,
            audit: .system("test")
        )
        .token
    }

    func activityEntries(targetID: String) async throws -> [(action: String, detail: String?)] {
        try await database.read { tx in
            try tx.query("SELECT action, detail FROM activity_entries WHERE target_id = ? ORDER BY id", targetID).map {
                (try $0.string("action"), $0.optionalString("detail"))
            }
        }
    }
}

extension TestResponse {
    /// `key` of the JSON answer as an object.
    func object(_ key: String) -> [String: Any] { json[key] as? [String: Any] ?? [:] }
    func objects(_ key: String) -> [[String: Any]] { json[key] as? [[String: Any]] ?? [] }
}

/// A JSON string literal of `text`, for code put inside request bodies.
func jsonString(_ text: String) -> String { JSONValue.string(text).jsonText }
