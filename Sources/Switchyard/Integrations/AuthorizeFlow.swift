import Crypto
import ExtrasBase64
import Foundation

/// The start of the Authorize flow: `GET /v1/integrations/{integration_id}/authorize?workspace=ws_…`
/// makes (or keeps) the connection, a single-use state that expires in 10 minutes and names it,
/// and a PKCE verifier, and answers the provider's authorization URL.
extension ConnectionService {
    /// How long an authorization may take, from the redirect to the provider to the callback.
    public static let authorizeStateLifetime: TimeInterval = 600

    public struct AuthorizationStart: Sendable {
        /// The provider's authorization URL, with `state`, PKCE and `redirect_uri`.
        public var url: String
        public var connection: Connection
        /// When the state stops working.
        public var expiresAt: Date
    }

    public func startAuthorization(caller: Caller, integrationID: String, workspaceID: String?) async throws -> AuthorizationStart {
        guard let workspaceID else {
            throw APIError.validation("`workspace` is required: the id of the workspace to connect (ws_…).", field: "workspace")
        }
        let now = clock.now
        let state = Self.randomToken()
        let verifier = Self.randomToken()
        let sealedVerifier = try sealer.seal(verifier)
        let expiresAt = now.addingTimeInterval(Self.authorizeStateLifetime)
        let redirectURI = redirectURI
        let (integration, connection) = try await authenticator.write(caller) { [self] tx, principal in
            _ = try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            guard ID.isValid(integrationID, prefix: "int"), let integration = try IntegrationStore.integration(tx, id: integrationID) else {
                throw APIError.notFound("integration", integrationID)
            }
            try Self.requireAuthorizable(integration, workspaceID: workspaceID)
            var connection = try ConnectionStore.connection(tx, integrationID: integrationID, workspaceID: workspaceID)
            if connection == nil {
                // An active connection keeps working until the callback; a new one waits for it.
                let pending = Connection(
                    id: ID.make("con", at: now),
                    integrationId: integrationID,
                    integrationName: integration.name,
                    workspaceId: workspaceID,
                    status: .pendingAuthorization,
                    authType: .oauth2,
                    createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID),
                    createdAt: now,
                    updatedAt: now
                )
                try ConnectionStore.insert(tx, pending, sealedSecrets: nil)
                connection = pending
            }
            guard let connection else { throw APIError.notFound("connection", integrationID) }
            try AuthorizeStore.deleteExpired(tx, connectionID: connection.id, before: now.addingTimeInterval(-86_400))
            try AuthorizeStore.insert(
                tx,
                AuthorizeState(
                    stateHash: Hex.sha256(state),
                    connectionID: connection.id,
                    integrationID: integrationID,
                    workspaceID: workspaceID,
                    sealedVerifier: sealedVerifier,
                    expiresAt: expiresAt,
                    usedAt: nil,
                    createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID),
                    createdAt: now
                )
            )
            try record(
                tx,
                "connection.authorization_started",
                connection,
                audit: principal.audit(from: caller.audit),
                detail: "redirected to the provider; the state works once, until \(RFC3339.format(expiresAt))"
            )
            return (integration, connection)
        }
        let url = Self.authorizationURL(integration.auth, state: state, verifier: verifier, redirectURI: redirectURI)
        return AuthorizationStart(url: url, connection: connection, expiresAt: expiresAt)
    }

    static func requireAuthorizable(_ integration: Integration, workspaceID: String) throws {
        let spec = integration.auth
        guard spec.type == .oauth2 else {
            throw APIError.validation(
                "The integration \(integration.name) uses \(spec.type.rawValue) auth, not OAuth 2.0: connect it with "
                    + "POST /v1/workspaces/\(workspaceID)/connections and its credentials."
            )
        }
        guard spec.grant != .clientCredentials else {
            throw APIError.validation(
                "The integration \(integration.name) uses the client-credentials grant, which has no authorization step: connect it with "
                    + "POST /v1/workspaces/\(workspaceID)/connections and {\"integration\": \"\(integration.id)\"}."
            )
        }
        guard let url = spec.authorizationUrl, !url.isEmpty, spec.clientId?.isEmpty == false else {
            throw APIError.validation("The integration \(integration.name) has no `auth.authorization_url` or `auth.client_id` to authorize with.")
        }
    }

    /// The provider's authorization URL (RFC 6749 §4.1.1, RFC 7636): `response_type=code`,
    /// `client_id`, `redirect_uri`, `scope`, `state`, the S256 code challenge when PKCE is on, then
    /// the integration's `query_params` (except those names, which are ours).
    static func authorizationURL(_ spec: AuthSpec, state: String, verifier: String, redirectURI: String) -> String {
        var parameters = [("response_type", "code"), ("client_id", spec.clientId ?? ""), ("redirect_uri", redirectURI)]
        let scopes = spec.scopes ?? []
        if !scopes.isEmpty { parameters.append(("scope", scopes.joined(separator: spec.scopeSeparator ?? " "))) }
        parameters.append(("state", state))
        if spec.pkce ?? true {
            parameters += [("code_challenge", codeChallenge(verifier)), ("code_challenge_method", "S256")]
        }
        let ours = Set(parameters.map(\.0))
        let extra = spec.queryParams?.objectValue ?? [:]
        for key in extra.keys.sorted() where !ours.contains(key) {
            if let value = extra[key].flatMap(AuthScriptHost.text) { parameters.append((key, value)) }
        }
        var base = spec.authorizationUrl ?? ""
        if let hash = base.firstIndex(of: "#") { base = String(base[..<hash]) }
        let query = parameters.map { OAuthClient.queryEncode($0.0) + "=" + OAuthClient.queryEncode($0.1) }.joined(separator: "&")
        let separator = !base.contains("?") ? "?" : base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&"
        return base + separator + query
    }

    /// RFC 7636 S256: base64url(SHA-256(verifier)), without padding.
    static func codeChallenge(_ verifier: String) -> String {
        Base64.encodeToString(bytes: Array(SHA256.hash(data: Array(verifier.utf8))), options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    /// 32 random bytes in base64url: a state, or a PKCE verifier (43 characters, as RFC 7636 asks).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }
}
