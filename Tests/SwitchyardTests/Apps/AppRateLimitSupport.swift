import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Switchyard

/// Access tokens written straight to the store, and a second "process" over the test's database,
/// for the rate-limit tests (the OAuth token endpoint has tests of its own).
extension TestApp {
    /// Another process on the same database and clock: its own services (rate-limit shares, entry
    /// batcher) and router.
    func otherProcess(_ body: @escaping @Sendable (AppServices, any TestClientProtocol) async throws -> Void) async throws {
        let services = AppServices(configuration: self.services.configuration, database: database, clock: clock, logger: TestDatabase.logger)
        let application = Application(router: buildRouter(services), logger: TestDatabase.logger)
        try await application.test(.router) { client in try await body(services, client) }
    }

    /// The app's workspace read (which apps may make): the call these tests count.
    var workspaceRead: String { "/v1/workspaces/\(liveWorkspace.id)" }

    /// The shared bucket's tokens as stored.
    func storedTokens(_ appID: String) async throws -> Double? {
        try await database.read { tx in try AppRateLimitStore.storedTokens(tx, appID: appID) }
    }
}

extension TestClientProtocol {
    /// GET `uri` with a bearer token.
    func get(_ uri: String, token: String) async throws -> TestResponse {
        let response = try await execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"], body: nil)
        return TestResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
    }
}
