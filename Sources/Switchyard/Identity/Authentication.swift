import Foundation

/// What a request presented, parsed without I/O by `AuthenticationMiddleware`.
public enum Credentials: Sendable {
    case bearer(String)
    case session(String)
}

/// The outcome of looking credentials up, decided inside a read transaction so that a hot route
/// can authenticate and fetch in one read; `settle` then does the rare writes it implies.
public enum Authentication: Sendable {
    case anonymous
    case principal(Principal, touchToken: Bool)
    case refused(reason: String, detail: String)

    /// The principal, or the 401 a caller without one gets.
    public func require() throws -> Principal {
        switch self {
        case .principal(let principal, _): return principal
        case .refused(_, let detail): throw APIError.unauthenticated(detail)
        case .anonymous:
            throw APIError.unauthenticated("Send an API token as `Authorization: Bearer sy_…`, or sign in with POST /v1/sessions.")
        }
    }
}

extension IdentityService {
    /// Looks credentials up in the caller's transaction. Never writes.
    public func authenticate(_ tx: SQLTx, _ credentials: Credentials?, now: Date) throws -> Authentication {
        switch credentials {
        case nil:
            return .anonymous
        case .session(let secret):
            // An unknown or expired cookie is no credential at all: the caller is anonymous.
            guard TokenFormat.isWellFormed(secret, prefixes: [Self.sessionPrefix]),
                let session = try IdentityStore.sessionWithUser(tx, secretHash: TokenFormat.hash(secret)),
                session.expiresAt > now
            else { return .anonymous }
            return .principal(Principal(user: session.user, sessionID: session.id), touchToken: false)
        case .bearer(let token):
            guard TokenFormat.isWellFormed(token) else {
                return .refused(reason: "malformed token", detail: "The token is not a Switchyard API token (sy_live_… or sy_test_…).")
            }
            guard let (record, user) = try IdentityStore.tokenWithUser(tx, secretHash: TokenFormat.hash(token)) else {
                return .refused(reason: "unknown token …\(token.suffix(4))", detail: "The API token is not valid.")
            }
            if record.revokedAt != nil {
                return .refused(reason: "revoked token \(record.id)", detail: "The API token was revoked.")
            }
            if let expiresAt = record.expiresAt, expiresAt <= now {
                return .refused(reason: "expired token \(record.id)", detail: "The API token expired at \(RFC3339.format(expiresAt)).")
            }
            let principal = Principal(
                user: user,
                tokenID: record.id,
                tokenName: record.name,
                tokenMode: record.mode,
                tokenWorkspaces: record.workspaces,
                tokenExpiresAt: record.expiresAt
            )
            // Last use is a write; once a minute per token is precise enough and keeps reads cheap.
            return .principal(principal, touchToken: record.lastUsedAt.map { now.timeIntervalSince($0) > 60 } ?? true)
        }
    }

    /// Records a refusal in the activity log (with at most the token's last four characters) and
    /// notes a token's last use; call after `authenticate(_:_:now:)`, outside its transaction.
    public func settle(_ authentication: Authentication, audit: AuditContext) async throws {
        switch authentication {
        case .refused(let reason, _):
            try await activity.recordFailure(audit, action: "api_token.rejected", detail: reason, flood: true)
        case .principal(let principal, touchToken: true):
            if let id = principal.tokenID {
                let now = clock.now
                try await database.write { tx in try IdentityStore.touchToken(tx, id: id, at: now) }
            }
        default:
            break
        }
    }

    /// The caller of a request, in a read of its own: for routes that do not read anything else
    /// on their hot path. 401 when there are no valid credentials.
    public func principal(_ credentials: Credentials?, audit: AuditContext) async throws -> Principal {
        guard credentials != nil else { return try Authentication.anonymous.require() }
        let now = clock.now
        let authentication = try await database.read { tx in try authenticate(tx, credentials, now: now) }
        try await settle(authentication, audit: audit)
        return try authentication.require()
    }
}

extension IdentityService {
    /// The caller of `context`'s request; 401 without valid credentials.
    public func principal(_ context: AppRequestContext) async throws -> Principal {
        try await principal(context.credentials, audit: context.audit(nil))
    }
}

extension IdentityService {
    /// Authenticates and runs `body` in one read transaction: a hot read costs one hop.
    public func read<T: Sendable>(
        _ credentials: Credentials?,
        audit: AuditContext,
        _ body: @escaping @Sendable (SQLTx, Principal) throws -> T
    ) async throws -> T {
        let now = clock.now
        let (authentication, result) = try await database.read { tx -> (Authentication, Result<T, Error>) in
            let authentication = try authenticate(tx, credentials, now: now)
            guard case .principal(let principal, _) = authentication else {
                return (authentication, .failure(APIError.unauthenticated("")))
            }
            do { return (authentication, .success(try body(tx, principal))) } catch { return (authentication, .failure(error)) }
        }
        try await settle(authentication, audit: audit)
        _ = try authentication.require()
        return try result.get()
    }

    /// Authenticates and runs `body` in one write transaction; a refusal is recorded after it.
    public func write<T: Sendable>(
        _ credentials: Credentials?,
        audit: AuditContext,
        _ body: @escaping @Sendable (SQLTx, Principal) throws -> T
    ) async throws -> T {
        let now = clock.now
        let (authentication, result) = try await database.write { tx -> (Authentication, T?) in
            let authentication = try authenticate(tx, credentials, now: now)
            guard case .principal(let principal, let touch) = authentication else { return (authentication, nil) }
            if touch, let id = principal.tokenID { try IdentityStore.touchToken(tx, id: id, at: now) }
            return (.principal(principal, touchToken: false), try body(tx, principal))
        }
        try await settle(authentication, audit: audit)
        _ = try authentication.require()
        guard let result else { throw APIError.unauthenticated("The credentials were not accepted.") }
        return result
    }

    /// Whether the caller may use a workspace known to exist, for reads that found it by a join.
    public func requireAccess(_ principal: Principal, workspaceID: String, mode: WorkspaceMode) throws {
        try principal.require(Role.readers, to: "use workspaces")
        try principal.requireAccess(to: workspaceID, mode: mode)
    }

    /// The workspace, if it exists and the caller may reach it, in the caller's transaction.
    public func workspace(_ tx: SQLTx, id: String, by principal: Principal) throws -> Workspace {
        try principal.require(Role.readers, to: "use workspaces")
        guard ID.isValid(id, prefix: "ws"), let workspace = try IdentityStore.workspace(tx, id: id) else {
            throw APIError.notFound("workspace", id)
        }
        try principal.requireAccess(to: workspace)
        return workspace
    }
}

extension Principal {
    /// `audit` with this principal as the actor.
    public func audit(from audit: AuditContext) -> AuditContext {
        var audit = audit
        audit.actorType = actorType
        audit.actorID = actorID
        audit.actorLabel = email
        return audit
    }
}
