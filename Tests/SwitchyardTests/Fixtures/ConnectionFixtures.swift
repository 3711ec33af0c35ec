import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import Switchyard

/// Integrations and connections for the connection tests, written through the stores (the
/// integration routes are another branch's).
extension TestApp {
    /// Runs with loopback allowed as an outbound target (the fixture providers live there).
    static func runWithProviders(_ body: @escaping @Sendable (TestApp) async throws -> Void) async throws {
        try await run(
            configure: { configuration in
                configuration.webhooks.allowedTargetNetworks = (try? IPNetwork(parsing: "127.0.0.0/8")).map { [$0] } ?? []
            },
            body
        )
    }

    var connectionsPath: String { "/v1/workspaces/\(liveWorkspace.id)/connections" }

    /// An integration as the integration routes would store it.
    @discardableResult
    func insertIntegration(
        name: String = "Provider",
        auth: AuthSpec,
        clientSecret: String? = nil,
        configuration: JSONValue = .object([:]),
        secretConfiguration: [String: String] = [:]
    ) async throws -> Integration {
        let now = clock.now
        let integration = Integration(
            id: ID.make("int", at: now),
            name: name,
            description: "",
            configuration: configuration,
            secretConfigurationKeys: secretConfiguration.keys.sorted(),
            auth: auth,
            connectors: [],
            createdBy: nil,
            createdAt: now,
            updatedAt: now
        )
        let sealer = services.sealer
        try await database.write { tx in
            try IntegrationStore.insert(
                tx,
                integration,
                sealedSecretConfiguration: try sealer.sealSecretConfiguration(secretConfiguration),
                sealedAuthSecrets: try sealer.sealAuthSecrets(clientSecret: clientSecret)
            )
        }
        return integration
    }

    /// An OAuth 2.0 (authorization code) integration of `provider`.
    func insertOAuthIntegration(
        _ provider: OAuthProviderFixture,
        name: String = "Provider",
        change: (inout AuthSpec) -> Void = { _ in }
    ) async throws -> Integration {
        var auth = AuthSpec(type: .oauth2)
        auth.authorizationUrl = provider.authorizationURL
        auth.tokenUrl = provider.tokenURL
        auth.clientId = "client-1"
        auth.clientSecretSet = true
        auth.scopes = ["read", "write"]
        change(&auth)
        return try await insertIntegration(name: name, auth: auth, clientSecret: "secret-1")
    }

    /// The Authorize flow as a browser would go through it: the authorization URL, the provider's
    /// consent (a code for the challenge it was sent), the callback. Answers the callback's page.
    func authorize(_ integration: Integration, provider: OAuthProviderFixture, workspace: Workspace? = nil) async throws -> TestResponse {
        let start = try await request(
            .get,
            "/v1/integrations/\(integration.id)/authorize?workspace=\((workspace ?? liveWorkspace).id)&format=json",
            token: ownerToken
        )
        #expect(start.status == .ok, "\(start.body)")
        let query = try Self.query(of: try #require(start["authorization_url"] as? String))
        let code = provider.issueCode(challenge: query["code_challenge"], redirectURI: try #require(query["redirect_uri"]))
        return try await callback(["code": code, "state": try #require(query["state"])])
    }

    func callback(_ parameters: [String: String]) async throws -> TestResponse {
        let query = parameters.keys.sorted().map { "\($0)=\(OAuthClient.queryEncode(parameters[$0] ?? ""))" }.joined(separator: "&")
        return try await request(.get, "/integrations/callback?\(query)")
    }

    static func query(of url: String) throws -> [String: String] {
        let items = try #require(URLComponents(string: url)?.queryItems)
        return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
    }

    /// The connection of `integration` in the live workspace, as stored.
    func storedConnection(_ integration: Integration) async throws -> Connection {
        let found = try await database.read { [liveWorkspace] tx in
            try ConnectionStore.connection(tx, integrationID: integration.id, workspaceID: liveWorkspace.id)
        }
        return try #require(found)
    }

    func connectionActivity(_ action: String) async throws -> [SQLRow] {
        try await database.read { tx in try tx.query("SELECT * FROM activity_entries WHERE action = ? ORDER BY id", action) }
    }
}

/// A script runner that answers what a test says, for the rules about what scripts return
/// (shapes, failures) without a JavaScript runtime; it records every request.
final class ScriptedRunner: ScriptRunner {
    private let answers: NIOLockedValueBox<(requests: [ScriptRequest], answer: @Sendable (ScriptRequest) -> ScriptOutcome)>

    init(_ answer: @escaping @Sendable (ScriptRequest) -> ScriptOutcome) {
        answers = NIOLockedValueBox(([], answer))
    }

    /// Succeeds with `result`.
    convenience init(returning result: JSONValue?) {
        self.init { _ in
            ScriptOutcome(status: .succeeded, result: result, logs: [ScriptLogLine(level: "log", message: "ran", at: Date())], duration: 0)
        }
    }

    var requests: [ScriptRequest] { answers.withLockedValue { $0.requests } }

    func answer(_ answer: @escaping @Sendable (ScriptRequest) -> ScriptOutcome) { answers.withLockedValue { $0.answer = answer } }

    func run(_ request: ScriptRequest, host: any ScriptHost) async -> ScriptOutcome {
        let answer = answers.withLockedValue { state in
            state.requests.append(request)
            return state.answer
        }
        return answer(request)
    }

    func check(_ source: String, entries: [String]) async -> ScriptProblem? { nil }
}

extension TestApp {
    /// A connection service over this app's database, with its own script runner or token timeout.
    func connectionService(scripts: any ScriptRunner = ScriptedRunner(returning: nil), tokenTimeout: TimeInterval = 15) -> ConnectionService {
        ConnectionService(
            database: services.database,
            clock: clock,
            sealer: services.sealer,
            authenticator: services.authenticator,
            workspaces: services.workspaces,
            activity: services.activity,
            mail: services.mail,
            outbound: services.outbound,
            scripts: scripts,
            publicURL: services.configuration.publicURL,
            tokenTimeout: tokenTimeout,
            logger: TestDatabase.logger
        )
    }

    func caller(_ token: String? = nil) -> Caller {
        Caller(credentials: .bearer(token ?? ownerToken), audit: AuditContext(actorType: "anonymous", actorID: nil, actorLabel: nil, appID: nil))
    }

    /// Mail queued to `recipient` so far.
    func mails(to recipient: String) async throws -> [(subject: String, body: String)] {
        try await database.read { tx in
            try tx.query("SELECT subject, body FROM mail_messages WHERE recipient = ? ORDER BY id", recipient).map {
                (try $0.string("subject"), try $0.string("body"))
            }
        }
    }
}
