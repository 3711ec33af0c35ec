import Foundation
import HTTPTypes
import Hummingbird

/// Developer-portal sessions: the `sy_portal` cookie, a `syp_…` secret, stored in `sessions` with
/// kind `portal`. Only the portal's routes use it: a portal session opens nothing under /v1, and a
/// console session (kind `console`, `sys_…`) opens nothing of the portal.
struct PortalSessionResolver: CredentialResolver {
    static let prefix = "syp_"
    static let kind = "portal"

    func accepts(_ credentials: Credentials) -> Bool {
        guard case .session(let secret) = credentials else { return false }
        return secret.utf8.starts(with: Self.prefix.utf8)
    }

    func resolve(_ tx: SQLTx, _ credentials: Credentials, now: Date) throws -> Authentication {
        guard case .session(let secret) = credentials, TokenFormat.isWellFormed(secret, prefixes: [Self.prefix]),
            let session = try SessionStore.sessionWithUser(tx, secretHash: TokenFormat.hash(secret), kind: Self.kind),
            session.expiresAt > now
        else { return .anonymous }
        // An account whose role was changed away from developer keeps no portal access.
        guard session.user.role == .developer else {
            return .refused(reason: "not a developer", detail: "This account is no longer a developer account; the portal is for developers.")
        }
        return .principal(.user(UserPrincipal(user: session.user, credential: .session(id: session.id))), noteUse: nil)
    }
}

/// The authentication of `/portal/api`: the `sy_portal` cookie only (no bearer tokens: the
/// portal is for people), and the console's cross-site rule for every request that changes
/// something, sign-up and sign-in included (a forged sign-in would put a victim in someone else's
/// account). Requests that send neither `Origin` nor `Sec-Fetch-Site` (scripts, curl) pass;
/// SameSite=Strict keeps the cookie off other sites' requests in browsers.
struct PortalAuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let cookie = "sy_portal"

    let console: AuthenticationMiddleware
    /// false for the routes that take callers without a session (sign-up, sign-in, invites).
    let requireSession: Bool

    init(publicURL: String, requireSession: Bool) {
        console = AuthenticationMiddleware(publicURL: publicURL)
        self.requireSession = requireSession
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            try console.checkSameSite(request)
        } catch let error as APIError where error.problem == .crossSiteRequest {
            throw APIError(
                .crossSiteRequest,
                detail: "The developer portal changes something only for its own pages at \(console.publicOrigin); another site "
                    + "sent this request. Scripts and tools send neither Origin nor Sec-Fetch-Site."
            )
        }
        var context = context
        if requireSession {
            guard let secret = request.cookies[Self.cookie]?.value, !secret.isEmpty else {
                throw PortalService.unauthenticated(PortalService.signInHint)
            }
            context.credentials = .session(secret)
        }
        return try await next(request, context)
    }
}
