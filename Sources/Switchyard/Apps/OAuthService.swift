import Foundation
import Metrics

/// The OAuth 2.0 authorization server of apps: client credentials grants (RFC 6749 §4.4), token
/// revocation (RFC 7009), introspection (RFC 7662) and the server's metadata (RFC 8414).
///
/// A token request is one write: the secret is found by its SHA-256 (secrets are 32 random bytes,
/// so no slow hash is needed), and the token, its activity entry and the secret's last use are
/// written in the same transaction. Whatever can be done without the database (parsing, the
/// throttle's memory, the token's random part) is done before it, off the writer.
public struct OAuthService: Sendable {
    static let tokenLifetime: TimeInterval = 3600
    /// A secret's `last_used_at` is written at most this often, so that a client asking for tokens
    /// in a loop does not turn each request into two row writes.
    static let touchInterval: TimeInterval = 60

    let database: Database
    let clock: any WallClock
    let activity: ActivityService
    let publicURL: String
    let throttle = OAuthThrottle()

    public init(database: Database, clock: any WallClock, activity: ActivityService, publicURL: String) {
        self.database = database
        self.clock = clock
        self.activity = activity
        self.publicURL = publicURL
    }

    struct TokenAnswer: Encodable, Sendable {
        var accessToken: String
        var tokenType = "Bearer"
        var expiresIn = Int(OAuthService.tokenLifetime)
        var scope: String?
    }

    /// RFC 7662's answer; an inactive token shows nothing else.
    struct Introspection: Encodable, Sendable {
        var active: Bool
        var scope: String?
        var clientId: String?
        var exp: Int?
        var iat: Int?
        var tokenType: String?
        var sub: String?
    }

    // MARK: - Endpoints

    func issueToken(_ request: OAuthRequest, audit: AuditContext) async throws -> TokenAnswer {
        let parameters = request.parameters
        guard let grant = parameters["grant_type"] else {
            throw OAuthError.invalidRequest("The request lacks grant_type; send grant_type=client_credentials.")
        }
        guard grant == "client_credentials" else {
            throw OAuthError.unsupportedGrantType("Only the client_credentials grant is supported here.")
        }
        let requested = try parameters["scope"].flatMap(Self.scopes)
        let (client, keys) = try admit(request, audit: audit)
        let secretHash = client.secretHash
        let now = clock.now
        // The token's random part is made here, off the single writer; its prefix waits for the app's mode.
        let body = Self.randomBody()
        let outcome = try await database.write { [self] tx -> Result<TokenAnswer, OAuthError> in
            let (secret, app): (AppSecret, App)
            switch try authenticate(tx, client, secretHash: secretHash, keys: keys, audit: audit, now: now) {
            case .failure(let error): return .failure(error)
            case .success(let found): (secret, app) = found
            }
            let appAudit = Self.audit(audit, app: app)
            if let requested, case let missing = requested.filter({ !app.permissions.contains($0) }), !missing.isEmpty {
                try refuse(tx, appAudit, app: app, detail: "scope not granted: \(missing.joined(separator: " "))", flood: true)
                return .failure(Self.scopeError(missing: missing, app: app))
            }
            let token = Self.accessToken(body: body, mode: app.mode)
            let id = ID.make("atk", at: now)
            try AppCredentialStore.insertToken(
                tx,
                id: id,
                appID: app.id,
                secretID: secret.id,
                tokenHash: TokenFormat.hash(token),
                mode: app.mode,
                scope: requested,
                expiresAt: now.addingTimeInterval(Self.tokenLifetime),
                createdAt: now
            )
            let scope = (requested ?? app.permissions).joined(separator: " ")
            try activity.record(
                tx,
                appAudit,
                action: "app.token_issued",
                targetType: "app",
                targetID: app.id,
                targetLabel: app.name,
                detail: "token \(id) (\(client.method.rawValue), secret \(secret.id))\(requested == nil ? "" : ", scope \(scope)")"
            )
            return .success(TokenAnswer(accessToken: token, scope: scope.isEmpty ? nil : scope))
        }
        return try settle(outcome)
    }

    /// RFC 7009: the app's own token stops at once; any other token, unknown or not the app's, is
    /// left alone with the same answer, so revocation tells nothing about other apps' tokens.
    func revoke(_ request: OAuthRequest, audit: AuditContext) async throws {
        guard let token = request.parameters["token"] else { throw OAuthError.invalidRequest("The request lacks the token to revoke.") }
        let (client, keys) = try admit(request, audit: audit)
        let secretHash = client.secretHash
        let tokenHash = TokenFormat.isWellFormed(token, prefixes: AppTokenResolver.prefixes) ? TokenFormat.hash(token) : nil
        let now = clock.now
        let outcome = try await database.write { [self] tx -> Result<Bool, OAuthError> in
            let app: App
            switch try authenticate(tx, client, secretHash: secretHash, keys: keys, audit: audit, now: now) {
            case .failure(let error): return .failure(error)
            case .success(let found): app = found.1
            }
            guard let tokenHash, let row = try AppCredentialStore.tokenWithApp(tx, tokenHash: tokenHash), row.app.id == app.id,
                try AppCredentialStore.revokeToken(tx, id: row.id, at: now)
            else { return .success(false) }
            try activity.record(
                tx,
                Self.audit(audit, app: app),
                action: "app.token_revoked",
                targetType: "app",
                targetID: app.id,
                targetLabel: app.name,
                detail: "token \(row.id)"
            )
            return .success(true)
        }
        _ = try settle(outcome)
    }

    /// RFC 7662, for the calling app's own tokens: any other token is `{"active": false}`, as an
    /// unknown one is.
    func introspect(_ request: OAuthRequest, audit: AuditContext) async throws -> Introspection {
        guard let token = request.parameters["token"] else { throw OAuthError.invalidRequest("The request lacks the token to introspect.") }
        let (client, keys) = try admit(request, audit: audit)
        let secretHash = client.secretHash
        let tokenHash = TokenFormat.isWellFormed(token, prefixes: AppTokenResolver.prefixes) ? TokenFormat.hash(token) : nil
        let now = clock.now
        let outcome = try await database.write { [self] tx -> Result<Introspection, OAuthError> in
            let app: App
            switch try authenticate(tx, client, secretHash: secretHash, keys: keys, audit: audit, now: now) {
            case .failure(let error): return .failure(error)
            case .success(let found): app = found.1
            }
            guard let tokenHash, let row = try AppCredentialStore.tokenWithApp(tx, tokenHash: tokenHash), row.app.id == app.id,
                row.revokedAt == nil, row.expiresAt > now, row.app.status == .active
            else { return .success(Introspection(active: false)) }
            // What the token reaches now: the app's grants as they are, narrowed by the token's scope.
            let scope = row.app.permissions.filter { row.scope?.contains($0) ?? true }.joined(separator: " ")
            let lifetime = Int(Self.tokenLifetime)
            let exp = Int(row.expiresAt.timeIntervalSince1970)
            return .success(
                Introspection(
                    active: true,
                    scope: scope,
                    clientId: app.clientId,
                    exp: exp,
                    iat: exp - lifetime,
                    tokenType: "Bearer",
                    sub: app.id
                )
            )
        }
        return try settle(outcome)
    }

    /// Records a refusal made before the database was asked (a malformed request, a throttled one):
    /// anyone can cause these at will, so under the activity log's flood budget.
    func recordRefusal(_ error: OAuthError, audit: AuditContext) async throws {
        try await activity.recordFailure(audit, action: "app.token_refused", detail: "\(error.error): \(error.errorDescription)", flood: true)
    }

    // MARK: - Client authentication

    /// The client's credentials, checked as far as they can be without I/O, and the throttle's
    /// admission. A refusal here was not recorded yet (`recordRefusal`).
    private func admit(_ request: OAuthRequest, audit: AuditContext) throws -> (ClientCredentials, OAuthThrottle.Keys) {
        guard let client = request.client else {
            throw OAuthError.invalidClient(
                "The request does not authenticate the client: send client_id and client_secret with HTTP Basic (client_secret_basic) "
                    + "or in the body (client_secret_post)."
            )
        }
        guard ClientCredentials.isClientID(client.clientID) else {
            throw OAuthError.invalidClient("The client_id is not a Switchyard client id (cid_…); copy it from the developer portal.")
        }
        let keys = OAuthThrottle.Keys(clientID: client.clientID, ip: audit.ip)
        if let seconds = throttle.refusal(keys, now: clock.now) { throw OAuthError.throttled(seconds: seconds) }
        return (client, keys)
    }

    /// Inside the request's write: the app whose working secret this is, or the refusal, recorded
    /// in the same write. Wrong guesses are counted by the throttle, checked here against every
    /// process's refusals before the guess is answered.
    private func authenticate(
        _ tx: SQLTx,
        _ client: ClientCredentials,
        secretHash: String?,
        keys: OAuthThrottle.Keys,
        audit: AuditContext,
        now: Date
    ) throws -> Result<(AppSecret, App), OAuthError> {
        var audit = audit
        audit.actorLabel = client.clientID
        if let secretHash, let (secret, app) = try AppCredentialStore.secretWithApp(tx, secretHash: secretHash), app.clientId == client.clientID {
            guard app.status == .active else {
                try refuse(tx, audit, app: app, detail: "app \(app.status.rawValue)", flood: true)
                // invalid_client, as docs/openapi.yaml has it for every app that is not active.
                return .failure(
                    .invalidClient(
                        "The app \(app.name) is \(app.status.rawValue.replacingOccurrences(of: "_", with: " ")); only an active app gets tokens."
                    )
                )
            }
            if secret.lastUsedAt.map({ now.timeIntervalSince($0) >= Self.touchInterval }) ?? true {
                try AppCredentialStore.touchSecret(tx, id: secret.id, at: now)
            }
            return .success((secret, app))
        }
        if let seconds = try throttle.check(tx, keys, now: now) {
            try refuse(tx, audit, app: nil, detail: "throttled: too many wrong client credentials", flood: true)
            return .failure(.throttled(seconds: seconds))
        }
        let id = client.clientID
        guard let app = try AppStore.app(tx, clientID: id) else {
            try refuse(tx, audit, app: nil, detail: OAuthThrottle.countedDetails[1], flood: false)
            return .failure(.invalidClient("No app has the client id \(id)."))
        }
        if app.status == .revoked {
            try refuse(tx, audit, app: app, detail: OAuthThrottle.countedDetails[2], flood: false)
            return .failure(.invalidClient("The app \(app.name) was revoked; its credentials no longer work."))
        }
        try refuse(tx, audit, app: app, detail: OAuthThrottle.countedDetails[0], flood: false)
        return .failure(.invalidClient("The client secret is wrong for \(id), or was deleted; create a new one in the developer portal."))
    }

    /// An `app.token_refused` entry in the caller's write. `flood`: a refusal that counts toward no
    /// limit, written within the activity log's flood budget; counted refusals are always written,
    /// as the throttle counts them (and it bounds how many there can be).
    private func refuse(_ tx: SQLTx, _ audit: AuditContext, app: App?, detail: String, flood: Bool) throws {
        let action = "app.token_refused"
        if flood, !activity.floodBudget.allow("\(action) \(audit.ip ?? "-")", now: clock.now) {
            Counter(label: "switchyard_activity_unrecorded_total", dimensions: [("action", action)]).increment()
            return
        }
        try activity.record(
            tx,
            audit,
            action: action,
            targetType: app == nil ? nil : "app",
            targetID: app?.id,
            targetLabel: app?.name,
            outcome: .failure,
            detail: detail
        )
    }

    /// A write's outcome; its refusals were recorded in the write.
    private func settle<T>(_ outcome: Result<T, OAuthError>) throws -> T {
        switch outcome {
        case .success(let value):
            return value
        case .failure(var error):
            error.recorded = true
            throw error
        }
    }

    // MARK: - Helpers

    /// The app as the actor of what it did with its credentials.
    static func audit(_ audit: AuditContext, app: App) -> AuditContext {
        var audit = audit
        audit.actorType = "app"
        audit.actorID = app.id
        audit.actorLabel = app.name
        audit.appID = app.id
        return audit
    }

    /// `scope` (RFC 6749 §3.3): permissions separated by spaces, each once; nil when it names none.
    static func scopes(_ text: String) throws -> [String]? {
        var seen = Set<String>()
        var scopes: [String] = []
        for part in text.split(separator: " ", omittingEmptySubsequences: true) {
            let scope = String(part)
            guard scope.utf8.allSatisfy({ $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) }) else {
                throw OAuthError.invalidScope("The scope holds a character RFC 6749 does not allow; list permissions separated by spaces.")
            }
            if seen.insert(scope).inserted { scopes.append(scope) }
        }
        return scopes.isEmpty ? nil : scopes
    }

    static func scopeError(missing: [String], app: App) -> OAuthError {
        let shown = missing.prefix(5).map { "`\($0.prefix(80))`" }.joined(separator: ", ")
        let held = app.permissions.isEmpty ? "none" : app.permissions.joined(separator: " ")
        return .invalidScope("The app \(app.name) is not granted \(shown); the scope must be a subset of its permissions: \(held).")
    }

    /// 32 random bytes in base62: the body of an access token.
    static func randomBody() -> String {
        var rng = SystemRandomNumberGenerator()
        return TokenFormat.base62((0..<32).map { _ in rng.next() as UInt8 }, length: TokenFormat.bodyLength)
    }

    /// `sya_live_…` or `sya_test_…` with its checksum, as `TokenFormat.generate` makes them.
    static func accessToken(body: String, mode: TokenMode) -> String {
        let prefixed = AppTokenResolver.prefix(for: mode) + body
        return prefixed + TokenFormat.checksum(prefixed)
    }
}
