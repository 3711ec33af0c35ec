import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /oauth/token`, `POST /oauth/revoke`, `POST /oauth/introspect` and
/// `GET /.well-known/oauth-authorization-server`, mounted at the router's root without the API's
/// authentication: clients authenticate here with their own credentials (HTTP Basic or the body).
/// Errors are RFC 6749's JSON, not problem+json, so that OAuth clients read them unmodified.
struct OAuthRoutes {
    let oauth: OAuthService

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("oauth/token", use: token)
            .post("oauth/revoke", use: revoke)
            .post("oauth/introspect", use: introspect)
            .get(".well-known/oauth-authorization-server", use: metadata)
    }

    @Sendable func token(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await answer(context) { audit in
            let issued = try await oauth.issueToken(try await OAuthRequest.read(request), audit: audit)
            return try Self.json(issued, context: context)
        }
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await answer(context) { audit in
            try await oauth.revoke(try await OAuthRequest.read(request), audit: audit)
            return Response(status: .ok, headers: Self.noStore(context))
        }
    }

    @Sendable func introspect(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await answer(context) { audit in
            try Self.json(try await oauth.introspect(try await OAuthRequest.read(request), audit: audit), context: context)
        }
    }

    @Sendable func metadata(_ request: Request, context: AppRequestContext) async throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[.requestID] = context.requestID
        let body = try JSONCoding.encoder.encode(OAuthMetadata(publicURL: oauth.publicURL))
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Runs an endpoint, rendering its OAuth refusals (recorded in the activity log when the
    /// endpoint's write did not already) as RFC 6749 JSON.
    private func answer(_ context: AppRequestContext, _ body: (AuditContext) async throws -> Response) async throws -> Response {
        let audit = context.audit()
        do {
            return try await body(audit)
        } catch let error as OAuthError {
            if !error.recorded { try await oauth.recordRefusal(error, audit: audit) }
            return error.response(requestID: context.requestID)
        }
    }

    /// Token answers are credentials: never cached (RFC 6749 §5.1).
    static func noStore(_ context: AppRequestContext) -> HTTPFields {
        var headers: HTTPFields = [.cacheControl: "no-store"]
        headers[.requestID] = context.requestID
        return headers
    }

    static func json(_ value: some Encodable, context: AppRequestContext) throws -> Response {
        var headers = noStore(context)
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSONCoding.encoder.encode(value))))
    }
}

/// RFC 8414's authorization server metadata; the issuer is the public URL.
struct OAuthMetadata: Encodable, Sendable {
    var issuer: String
    var tokenEndpoint: String
    var revocationEndpoint: String
    var introspectionEndpoint: String
    var grantTypesSupported = ["client_credentials"]
    /// No authorization endpoint: client credentials need none.
    var responseTypesSupported: [String] = []
    var tokenEndpointAuthMethodsSupported = [ClientCredentials.Method.basic.rawValue, ClientCredentials.Method.post.rawValue]
    var revocationEndpointAuthMethodsSupported = [ClientCredentials.Method.basic.rawValue, ClientCredentials.Method.post.rawValue]
    var introspectionEndpointAuthMethodsSupported = [ClientCredentials.Method.basic.rawValue, ClientCredentials.Method.post.rawValue]
    var serviceDocumentation: String

    init(publicURL: String) {
        let issuer = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.issuer = issuer
        tokenEndpoint = "\(issuer)/oauth/token"
        revocationEndpoint = "\(issuer)/oauth/revoke"
        introspectionEndpoint = "\(issuer)/oauth/introspect"
        serviceDocumentation = "\(issuer)/openapi.yaml"
    }
}
