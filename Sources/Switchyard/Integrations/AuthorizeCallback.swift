import Foundation

/// The end of the Authorize flow: `GET /integrations/callback?code&state`, where the provider
/// sends the browser back. Needs no credentials of ours: the state (single-use, 10 minutes)
/// names the connection. Every outcome is a page; every failure leaves the connection's
/// `last_error` and an activity entry, and changes nothing else (an active connection keeps its
/// tokens). Tokens are stored, sealed, only once the exchange succeeded.
extension ConnectionService {
    public enum CallbackOutcome: Sendable {
        case connected(Connection, integrationName: String, workspaceName: String)
        /// `title` and `message` for the page; `message` names no secret.
        case refused(title: String, message: String)
    }

    public func completeAuthorization(query: [String: String], audit: AuditContext) async throws -> CallbackOutcome {
        let now = clock.now
        guard let stateText = query["state"], !stateText.isEmpty else {
            return try await anonymousRefusal(
                "No state",
                "The provider's answer has no `state`, so it cannot be matched to an authorization. Start again from Authorize.",
                audit: audit
            )
        }
        let hash = Hex.sha256(stateText)
        guard try await database.write({ tx in try AuthorizeStore.consume(tx, hash: hash, now: now) }) else {
            guard let state = try await database.read({ tx in try AuthorizeStore.state(tx, hash: hash) }) else {
                return try await anonymousRefusal(
                    "Unknown state",
                    "This answer's `state` belongs to no authorization (it may have been tampered with, or the connection was deleted). "
                        + "Start again from Authorize.",
                    audit: audit
                )
            }
            let message =
                state.usedAt != nil
                ? "The provider's answer was refused: its state was used already (a replayed or repeated callback). Start again from Authorize."
                : "The provider's answer was refused: its state expired (an authorization must finish within 10 minutes). Start again from Authorize."
            return try await refuse(state, title: state.usedAt != nil ? "Authorization already used" : "Authorization expired", message, audit: audit)
        }
        guard let state = try await database.read({ tx in try AuthorizeStore.state(tx, hash: hash) }) else {
            return .refused(title: "Unknown state", message: "The authorization was deleted meanwhile. Start again from Authorize.")
        }
        let sealer = sealer
        let credentials: ConnectionCredentials
        do {
            credentials = try await database.read { tx in try ConnectionCredentials.read(tx, connectionID: state.connectionID, sealer: sealer) }
        } catch let error as APIError where error.problem == .notFound {
            return .refused(title: "Connection deleted", message: "The connection being authorized was deleted meanwhile. Nothing was stored.")
        }
        if let error = query["error"], !error.isEmpty {
            let description = query["error_description"].map { ": " + OAuthClient.oneLine($0, maximum: 300) } ?? ""
            let code = OAuthClient.oneLine(error, maximum: 60)
            let message =
                code == "access_denied"
                ? "Access was denied at the provider (access_denied\(description)). Nothing was changed; authorize again to retry."
                : "The provider refused the authorization (\(code)\(description)). Nothing was changed."
            return try await refuse(state, title: code == "access_denied" ? "Access denied" : "Authorization refused", message, audit: audit)
        }
        guard let code = query["code"], !code.isEmpty else {
            return try await refuse(state, title: "No authorization code", "The provider's answer has neither a `code` nor an `error`.", audit: audit)
        }
        let verifier = try state.sealedVerifier.map { try sealer.open($0) }
        let usesPKCE = credentials.integration.auth.pkce ?? true
        let (result, _) = await exchange(credentials, code: code, verifier: usesPKCE ? verifier : nil)
        let answer: TokenAnswer
        switch result {
        case .success(let tokens): answer = tokens
        case .failure(let failure):
            let hint = failure.isInvalidGrant ? " The code may have been used already or expired; authorize again." : ""
            return try await refuse(
                state,
                title: "Authorization failed",
                "The authorization code could not be exchanged for tokens: \(failure.description).\(hint) Nothing was stored.",
                audit: audit
            )
        }
        let sealed = try sealer.sealConnectionSecrets(answer.secrets())
        let scopes = answer.scopes(requested: credentials.integration.auth.scopes)
        let expiresAt = answer.expiresAt(from: clock.now)
        let actor = Self.actor(of: state, audit: audit)
        let (connection, workspaceName) = try await database.write { [self] tx in
            try ConnectionStore.authorize(tx, id: state.connectionID, sealedSecrets: sealed, scopes: scopes, expiresAt: expiresAt, at: clock.now)
            guard let connection = try ConnectionStore.connection(tx, id: state.connectionID) else {
                throw APIError.notFound("connection", state.connectionID)
            }
            let detail = "authorized at the provider\(scopes.map { "; scopes: \($0.joined(separator: " "))" } ?? "")"
            try record(tx, "connection.authorized", connection, audit: actor, detail: detail)
            return (connection, try WorkspaceStore.workspace(tx, id: connection.workspaceId)?.name ?? connection.workspaceId)
        }
        logger.info("connection authorized", metadata: ["connection": "\(connection.id)", "workspace": "\(connection.workspaceId)"])
        return .connected(connection, integrationName: credentials.integration.name, workspaceName: workspaceName)
    }

    /// The code exchanged by the integration's callback code, or by the standard token request.
    func exchange(_ credentials: ConnectionCredentials, code: String, verifier: String?) async -> (Result<TokenAnswer, TokenFailure>, [ScriptLogLine])
    {
        let integration = credentials.integration
        if let source = integration.auth.callbackCode, !source.isEmpty {
            let params = JSONValue.object([
                "code": .string(code), "code_verifier": verifier.map(JSONValue.string) ?? .null, "redirect_uri": .string(redirectURI),
                "config": OAuthClient.scriptConfig(integration, credentials.integrationSecrets),
            ])
            let context = OAuthClient.scriptContext(integration, credentials.integrationSecrets, redirectURI: redirectURI)
            return await oauth.exchange(code: source, params: params, context: context, scripts: scripts)
        }
        do throws(TokenFailure) {
            let client = try OAuthClient.Client(integration.auth, secrets: credentials.integrationSecrets)
            return (.success(try await oauth.authorizationCode(client, code: code, verifier: verifier, redirectURI: redirectURI)), [])
        } catch {
            return (.failure(error), [])
        }
    }

    /// The person who started the flow is the actor of what the callback records.
    static func actor(of state: AuthorizeState, audit: AuditContext) -> AuditContext {
        var actor = audit
        if let createdBy = state.createdBy {
            actor.actorType = createdBy.type
            actor.actorID = createdBy.id
        }
        return actor
    }

    /// A refused callback of a known flow: the connection's `last_error` and an activity entry.
    private func refuse(_ state: AuthorizeState, title: String, _ message: String, audit: AuditContext) async throws -> CallbackOutcome {
        let now = clock.now
        let actor = Self.actor(of: state, audit: audit)
        try await database.write { [self] tx in
            guard let connection = try ConnectionStore.connection(tx, id: state.connectionID) else { return }
            try ConnectionStore.setError(tx, id: connection.id, message, at: now)
            try record(tx, "connection.authorization_failed", connection, audit: actor, failed: true, detail: message)
        }
        logger.info("authorization refused", metadata: ["connection": "\(state.connectionID)", "reason": "\(title)"])
        return .refused(title: title, message: message)
    }

    /// A callback that names no authorization: recorded (at most 60 a minute per address, as
    /// anyone can send these) without a connection.
    private func anonymousRefusal(_ title: String, _ message: String, audit: AuditContext) async throws -> CallbackOutcome {
        try await activity.recordFailure(audit, action: "connection.callback_refused", detail: message, flood: true)
        return .refused(title: title, message: message)
    }
}
