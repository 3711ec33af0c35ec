import Foundation
import Logging

/// One refresh under a held lease, and what its outcome leaves in the database.
extension TokenRefresher {
    enum Attempt: Sendable {
        case tokens(TokenAnswer, [ScriptLogLine])
        /// The authentication code said the current token is still valid.
        case stillValid([ScriptLogLine])
        /// An authorization-code token without a refresh token (and no authentication code).
        case noRefreshToken
        case failure(TokenFailure, [ScriptLogLine])
    }

    /// Refreshes the connection `job` holds the lease of, and gives the lease back.
    func perform(_ job: Job, trigger: Trigger) async throws -> Outcome {
        let now = clock.now
        // Read after the claim: a refresh that finished just before it is seen here.
        let (credentials, state) = try await read(job.connectionID)
        let decision = Self.decide(credentials, state, trigger, now: now)
        guard decision == .refresh else {
            // Refreshed meanwhile, or nothing this connection can do: not picked again before it is due.
            let until = trigger == .due && decision == .current ? Self.nextLook(credentials, now: now) : nil
            try await database.write { tx in
                if let until {
                    try ConnectionStore.deferRefresh(tx, id: job.connectionID, leaseID: job.leaseID, until: until)
                } else {
                    try ConnectionStore.releaseLease(tx, id: job.connectionID, leaseID: job.leaseID)
                }
            }
            return .current(credentials)
        }
        switch await attempt(credentials) {
        case .tokens(let answer, let logs):
            return try await store(answer, logs: logs, credentials, job: job)
        case .stillValid(let logs):
            if case .unauthorized = trigger {
                let failure = TokenFailure(.script, "refresh() returned null although the provider refused the token (401)")
                return try await fail(failure, logs: logs, credentials, state: state, job: job)
            }
            let until = now.addingTimeInterval(Self.recheckInterval)
            try await database.write { tx in try ConnectionStore.deferRefresh(tx, id: job.connectionID, leaseID: job.leaseID, until: until) }
            var current = credentials
            current.authLogs += logs
            return .current(current)
        case .noRefreshToken:
            let expiresAt = credentials.connection.expiresAt ?? now
            if case .due = trigger, expiresAt > now {
                // Nothing to refresh with: the token is used until it expires, then reauthorization.
                try await database.write { tx in
                    try ConnectionStore.deferRefresh(tx, id: job.connectionID, leaseID: job.leaseID, until: expiresAt)
                }
                return .current(credentials)
            }
            let why =
                trigger == .due
                ? "The access token expired and the provider issued no refresh token; authorize the connection again."
                : "The provider refused the access token and issued no refresh token; authorize the connection again."
            return try await kill(why, credentials, failures: state.failures, job: job)
        case .failure(let failure, let logs):
            return try await fail(failure, logs: logs, credentials, state: state, job: job)
        }
    }

    /// When the scan may pick a connection again that it found not due (SQL and Swift agree to the
    /// millisecond, and a connection whose integration no longer uses OAuth 2.0 is looked at hourly).
    static func nextLook(_ credentials: ConnectionCredentials, now: Date) -> Date {
        guard credentials.integration.auth.type == .oauth2, let due = dueAt(credentials.connection) else { return now.addingTimeInterval(3600) }
        return max(due, now.addingTimeInterval(1))
    }

    /// Asks for new tokens the way the integration says: its authentication code, the
    /// client-credentials grant, or the refresh-token grant.
    func attempt(_ credentials: ConnectionCredentials) async -> Attempt {
        let spec = credentials.integration.auth
        if let code = spec.authenticationCode, !code.isEmpty {
            let context = OAuthClient.scriptContext(credentials.integration, credentials.integrationSecrets, redirectURI: redirectURI)
            let (result, logs) = await oauth.refresh(code: code, tokens: Self.scriptTokens(credentials), context: context, scripts: scripts)
            switch result {
            case .success(let answer?): return .tokens(answer, logs)
            case .success(nil): return .stillValid(logs)
            case .failure(let failure): return .failure(failure, logs)
            }
        }
        do throws(TokenFailure) {
            let client = try OAuthClient.Client(spec, secrets: credentials.integrationSecrets)
            if spec.grant == .clientCredentials { return .tokens(try await oauth.clientCredentials(client), []) }
            guard let refreshToken = credentials.secrets.objectValue?["refresh_token"]?.stringValue else { return .noRefreshToken }
            return .tokens(try await oauth.refresh(client, refreshToken: refreshToken), [])
        } catch {
            return .failure(error, [])
        }
    }

    /// The tokens as the authentication code gets them, with `expires_at`.
    static func scriptTokens(_ credentials: ConnectionCredentials) -> JSONValue {
        var tokens = credentials.secrets.objectValue ?? [:]
        tokens["expires_at"] = credentials.connection.expiresAt.map { .string(RFC3339.format($0)) } ?? .null
        return .object(tokens)
    }

    private func store(_ answer: TokenAnswer, logs: [ScriptLogLine], _ credentials: ConnectionCredentials, job: Job) async throws -> Outcome {
        let now = clock.now
        let secrets = answer.secrets(previous: credentials.secrets)
        let sealed = try sealer.sealConnectionSecrets(secrets)
        let scopes = answer.scopes(requested: credentials.connection.scopes)
        let expiresAt = answer.expiresAt(from: now)
        let stored = try await database.write { tx in
            try ConnectionStore.finishRefresh(
                tx,
                id: job.connectionID,
                leaseID: job.leaseID,
                sealedSecrets: sealed,
                scopes: scopes,
                expiresAt: expiresAt,
                at: now
            )
        }
        guard stored else {
            // Authorized again (or deleted) meanwhile: those tokens win over these.
            logger.info("token refresh discarded: the connection changed meanwhile", metadata: ["connection": "\(job.connectionID)"])
            return .current(try await read(job.connectionID).0)
        }
        logger.info("token refreshed", metadata: ["connection": "\(job.connectionID)", "workspace": "\(credentials.connection.workspaceId)"])
        var refreshed = credentials
        refreshed.secrets = secrets
        refreshed.connection.scopes = scopes
        refreshed.connection.expiresAt = expiresAt
        refreshed.connection.lastRefreshedAt = now
        refreshed.connection.lastError = nil
        refreshed.connection.updatedAt = now
        refreshed.authLogs += logs
        refreshed.authLogs.append(
            ScriptLogLine(level: "info", message: "token refreshed\(expiresAt.map { "; it expires at \(RFC3339.format($0))" } ?? "")", at: now)
        )
        return .refreshed(refreshed)
    }

    private func fail(
        _ failure: TokenFailure,
        logs: [ScriptLogLine],
        _ credentials: ConnectionCredentials,
        state: ConnectionRefreshState,
        job: Job
    ) async throws -> Outcome {
        let failures = state.failures + 1
        if failure.isInvalidGrant {
            let why = "The provider refused the refresh token (\(failure.description)); authorize the connection again."
            return try await kill(why, credentials, failures: failures, job: job, logs: logs)
        }
        let now = clock.now
        guard let next = schedule.nextAttempt(after: failures, now: now) else {
            let why = "Refreshing the token failed \(failures) times in a row (last: \(failure.description)); authorize the connection again."
            return try await kill(why, credentials, failures: failures, job: job, logs: logs)
        }
        let message =
            "Refreshing the token failed: \(failure.description). Try \(failures) of \(Self.maximumFailures); the next is at \(RFC3339.format(next))."
        let connection = credentials.connection
        try await database.write { [activity] tx in
            guard
                try ConnectionStore.recordRefreshFailure(
                    tx,
                    id: job.connectionID,
                    leaseID: job.leaseID,
                    failures: failures,
                    notBefore: next,
                    error: message,
                    at: now
                )
            else { return }
            try activity.record(
                tx,
                .system("token refresher"),
                action: "connection.refresh_failed",
                targetType: "connection",
                targetID: connection.id,
                targetLabel: connection.integrationName,
                workspaceID: connection.workspaceId,
                outcome: .failure,
                detail: message
            )
        }
        logger.warning("token refresh failed", metadata: ["connection": "\(connection.id)", "failures": "\(failures)", "error": "\(failure)"])
        var current = credentials
        current.authLogs += logs
        current.connection.lastError = Connection.LastError(message: message, at: now)
        return .failed(current, message)
    }

    /// The connection needs reauthorization: status, activity entry and the managers' mail in one
    /// transaction (so each happens exactly when the change does).
    private func kill(
        _ why: String,
        _ credentials: ConnectionCredentials,
        failures: Int,
        job: Job,
        logs: [ScriptLogLine] = []
    ) async throws -> Outcome {
        let now = clock.now
        let connection = credentials.connection
        let integration = credentials.integration
        let publicURL = publicURL
        try await database.write { [activity, mail] tx in
            guard try ConnectionStore.requireReauthorization(tx, id: job.connectionID, leaseID: job.leaseID, failures: failures, error: why, at: now)
            else { return }
            try activity.record(
                tx,
                .system("token refresher"),
                action: "connection.needs_reauthorization",
                targetType: "connection",
                targetID: connection.id,
                targetLabel: connection.integrationName,
                workspaceID: connection.workspaceId,
                outcome: .failure,
                detail: why
            )
            let workspace = try WorkspaceStore.workspace(tx, id: connection.workspaceId)
            let place = workspace.map { "\($0.name) (\($0.id))" } ?? connection.workspaceId
            let how =
                integration.auth.grant == .clientCredentials
                ? """
                Check the integration's client credentials, then connect again:

                  curl -X POST \(publicURL)/v1/workspaces/\(connection.workspaceId)/connections \\
                    -H "Authorization: Bearer $TOKEN" -d '{"integration": "\(integration.id)"}'
                """
                : """
                Authorize it again: open this address signed in to Switchyard as an owner, admin or
                integration admin, and sign in to the provider when it asks:

                  \(publicURL)/v1/integrations/\(integration.id)/authorize?workspace=\(connection.workspaceId)
                """
            let body = """
                The connection of the integration \(integration.name) (\(integration.id)) in the workspace \(place)
                needs to be authorized again. Until then its connectors cannot call the provider.

                Why: \(why)

                \(how)
                """
            for recipient in try UserStore.emails(tx, roles: Role.integrationManagers) {
                try mail.enqueue(tx, to: recipient, subject: "Integration \(integration.name) needs to be authorized again", body: body)
            }
        }
        logger.warning("connection needs reauthorization", metadata: ["connection": "\(connection.id)", "reason": "\(why)"])
        var dead = credentials
        dead.authLogs += logs
        dead.connection.status = .needsReauthorization
        dead.connection.lastError = Connection.LastError(message: why, at: now)
        return .dead(dead, why)
    }
}
