import Foundation
import Hummingbird

extension Workspace: ResponseEncodable {}
extension User: ResponseEncodable {}
extension APIToken: ResponseEncodable {}
extension CreatedAPIToken: ResponseEncodable {}
extension CreatedUser: ResponseEncodable {}
extension Organization: ResponseEncodable {}

extension AppRequestContext {
    /// The caller as the route group's authentication read them, not yet looked up.
    func caller() throws -> Caller {
        guard let credentials else { throw APIError.unauthenticated(Authentication.signInHint) }
        return Caller(credentials: credentials, audit: audit(), appCall: appCall)
    }
}

extension Authenticator {
    /// The caller of `context`'s request, looked up in a read of its own; 401 without valid credentials.
    func principal(_ context: AppRequestContext) async throws -> Principal {
        try await principal(try context.caller())
    }
}
