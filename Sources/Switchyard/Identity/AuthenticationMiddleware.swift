import Foundation
import HTTPTypes
import Hummingbird

/// The authentication of a route group: reads `Authorization: Bearer …` or the console session
/// cookie into `context.credentials`, without I/O (services resolve them inside the read they make
/// anyway, `Authenticator`). A request without credentials, or with a malformed Authorization
/// header, is refused before its route reads the body: it learns nothing of what a body should
/// hold. Groups that authenticate otherwise (sign-in, the OAuth token endpoint, the portal) mount
/// their own.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let sessionCookie = "sy_session"

    /// The public URL's origin (`https://switchyard.example.com`), the one site whose pages may
    /// change state with the session cookie.
    let publicOrigin: String

    init(publicURL: String) {
        publicOrigin = Self.origin(of: publicURL) ?? publicURL
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            guard let token = Self.bearerToken(header) else {
                throw APIError.unauthenticated("The Authorization header must be `Bearer <token>`.")
            }
            context.credentials = .bearer(token)
        } else if let secret = request.cookies[Self.sessionCookie]?.value {
            try checkSameSite(request)
            context.credentials = .session(secret)
        } else {
            throw APIError.unauthenticated(Authentication.signInHint)
        }
        return try await next(request, context)
    }

    /// A browser sends the cookie along with a form another site posts, so a cookie-authenticated
    /// request that changes state must come from our own pages: refused when `Sec-Fetch-Site` says
    /// cross-site or `Origin` names another site than the public URL (or the host the request was
    /// sent to). Requests without either header (not from a browser) keep SameSite=Lax as guard.
    func checkSameSite(_ request: Request) throws {
        guard ![.get, .head, .options].contains(request.method) else { return }
        var sameSite = request.headers[.secFetchSite].map { $0.lowercased() != "cross-site" } ?? true
        if sameSite, let header = request.headers[.origin] {
            // `Origin: null` (a sandboxed or privacy-sensitive context) parses to no origin: refused.
            let origin = Self.origin(of: header)
            let host = request.head.authority?.lowercased()
            sameSite = origin != nil && (origin == publicOrigin || (host != nil && origin.map(Self.authority(of:)) == host))
        }
        guard sameSite else {
            throw APIError(
                .crossSiteRequest,
                detail: "A request signed in with the session cookie must come from \(publicOrigin) to change anything; "
                    + "another site sent this one. Scripts and tools use an API token instead."
            )
        }
    }

    /// `scheme://host[:port]` of a URL, lower-cased; nil when it has none.
    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")"
    }

    static func authority(of origin: String) -> String {
        guard let range = origin.range(of: "://") else { return origin }
        return String(origin[range.upperBound...])
    }

    /// The token of `Bearer <token>` (scheme in any case, blanks around the token ignored), or
    /// nil. Byte-wise: Foundation's trimming and `lowercased()` showed in every request's profile.
    static func bearerToken(_ header: String) -> String? {
        let bytes = Array(header.utf8)
        let scheme = "bearer ".utf8
        guard bytes.count > scheme.count,
            zip(bytes, scheme).allSatisfy({ byte, expected in byte | 0x20 == expected })
        else { return nil }
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes[scheme.count...].firstIndex(where: { !isBlank($0) }),
            let last = bytes.lastIndex(where: { !isBlank($0) })
        else { return nil }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}
