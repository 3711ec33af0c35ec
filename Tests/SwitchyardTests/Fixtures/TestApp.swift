import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Switchyard

/// A running application over a fresh database, with an owner, a live and a sandbox workspace.
struct TestApp: Sendable {
    let services: AppServices
    let clock: ManualClock
    let ownerToken: String
    let liveWorkspace: Workspace
    let sandboxWorkspace: Workspace
    let client: any TestClientProtocol

    var database: Database { services.database }

    static func run(configure: (inout AppConfiguration) -> Void = { _ in }, _ body: @escaping @Sendable (TestApp) async throws -> Void) async throws {
        try await TestDatabase.with { database in
            var configuration = AppConfiguration(bcryptCost: 4, ownerEmail: "owner@example.com")
            configuration.scriptWorkerExecutable = ScriptTesting.workerExecutable
            configure(&configuration)
            let clock = ManualClock(Date())
            let services = AppServices(configuration: configuration, database: database, clock: clock, logger: TestDatabase.logger)
            let first = try #require(try await services.users.bootstrapIfEmpty(ownerEmail: "owner@example.com"))
            let owner = try #require(try await services.users.user(email: "owner@example.com"))
            let principal = Principal.session(owner)
            let sandbox = try await services.database.write { tx in
                try services.workspaces.create(tx, CreateWorkspaceInput(name: "Sandbox", mode: .sandbox), by: principal, audit: .system("test"))
            }
            let app = Application(router: buildRouter(services), logger: TestDatabase.logger)
            try await app.test(.router) { client in
                try await body(
                    TestApp(
                        services: services,
                        clock: clock,
                        ownerToken: first.token,
                        liveWorkspace: first.workspace,
                        sandboxWorkspace: sandbox,
                        client: client
                    )
                )
            }
        }
    }

    /// A request with a JSON body (or raw bytes), authenticated with `token` when given.
    @discardableResult
    func request(
        _ method: HTTPRequest.Method,
        _ uri: String,
        token: String? = nil,
        json: String? = nil,
        headers: HTTPFields = [:],
        body: String? = nil
    ) async throws -> TestResponse {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if json != nil { fields[.contentType] = "application/json" }
        // `body`: sent as given, with the content type `headers` name (a YAML document, a form).
        let response = try await client.execute(uri: uri, method: method, headers: fields, body: (json ?? body).map { ByteBuffer(string: $0) })
        return TestResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }

    /// Creates a user with `role` and a token for them.
    func makeUser(_ email: String, role: Role) async throws -> (user: User, token: String) {
        let created = try await services.users.create(
            CreateUserInput(email: email, role: role, password: "correct horse battery"),
            by: nil,
            audit: .system("test")
        )
        let token = try await services.tokens.create(
            CreateTokenInput(name: "test"),
            for: created.user.id,
            by: nil,
            audit: .system("test")
        )
        return (created.user, token.token)
    }

    func count(_ table: String) async throws -> Int64 {
        try await database.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM \(table)")?.int("n") ?? 0 }
    }
}

struct TestResponse {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    subscript(_ key: String) -> Any? { json[key] }

    /// Asserts a problem document: status, content type, stable type and (when given) the field.
    func expectProblem(
        _ status: HTTPResponse.Status,
        _ slug: String,
        field: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(self.status == status, "body: \(body)", sourceLocation: sourceLocation)
        #expect(headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        #expect(json["type"] as? String == "urn:switchyard:problem:\(slug)", "body: \(body)", sourceLocation: sourceLocation)
        #expect((json["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(json["status"] as? Int == Int(status.code), sourceLocation: sourceLocation)
        if let field {
            #expect(json["field"] as? String == field, "body: \(body)", sourceLocation: sourceLocation)
        }
    }
}
