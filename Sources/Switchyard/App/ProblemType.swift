import HTTPTypes

/// A kind of problem the API answers: a stable slug (the problem `type` is
/// `urn:switchyard:problem:<slug>`), its fixed title and its status. The constants below are the
/// whole list: the initializer is private so that a new slug cannot bypass it, and
/// ErrorTypesTests keeps `all` and the table of docs/errors.md equal, status included.
public struct ProblemType: Sendable, Hashable, CustomStringConvertible {
    public let slug: String
    public let title: String
    public let status: HTTPResponse.Status

    private init(_ slug: String, _ title: String, _ status: HTTPResponse.Status) {
        self.slug = slug
        self.title = title
        self.status = status
    }

    public var type: String { "urn:switchyard:problem:\(slug)" }
    public var description: String { "\(status.code) \(slug)" }

    public static let malformedRequest = ProblemType("malformed-request", "The request could not be read", .badRequest)
    public static let validationFailed = ProblemType("validation-failed", "The request is not valid", .unprocessableContent)
    /// A webhook (or other outbound) URL whose address the operator has not allowed.
    public static let blockedTarget = ProblemType("blocked-target", "Target address not allowed", .unprocessableContent)
    public static let unauthenticated = ProblemType("unauthenticated", "Authentication required", .unauthorized)
    public static let forbidden = ProblemType("forbidden", "Not allowed", .forbidden)
    public static let crossSiteRequest = ProblemType("cross-site-request", "Cross-site request refused", .forbidden)
    public static let notFound = ProblemType("not-found", "Not found", .notFound)
    public static let conflict = ProblemType("conflict", "Conflict", .conflict)
    public static let objectTypeLocked = ProblemType("object-type-locked", "Object type locked", .conflict)
    public static let versionMismatch = ProblemType("version-mismatch", "Version mismatch", .preconditionFailed)
    public static let idempotencyKeyReused = ProblemType("idempotency-key-reused", "Idempotency key reused", .unprocessableContent)
    /// An `after` cursor naming an event that event retention removed from the log.
    public static let cursorExpired = ProblemType("cursor-expired", "Cursor expired", .gone)
    /// A wrong one-time password for an app; the detail says how many tries are left.
    public static let oneTimePasswordWrong = ProblemType("one-time-password-wrong", "Wrong one-time password", .unprocessableContent)
    /// Five wrong tries locked the app's one-time password, or it expired: an admin resets it.
    public static let oneTimePasswordUnusable = ProblemType("one-time-password-unusable", "One-time password unusable", .conflict)
    /// Client secrets are given only to an app its developer verified.
    public static let appNotVerified = ProblemType("app-not-verified", "App not verified", .conflict)
    /// An invite or password-reset link that expired, was used, or was replaced by a newer one.
    public static let linkExpired = ProblemType("link-expired", "Link expired", .gone)
    /// An app over its rate limit; `Retry-After` says when the next call is allowed.
    public static let rateLimited = ProblemType("rate-limited", "Rate limit exceeded", .tooManyRequests)
    public static let bodyTooLarge = ProblemType("body-too-large", "Request body too large", .contentTooLarge)
    public static let routeNotFound = ProblemType("route-not-found", "Not found", .notFound)
    public static let methodNotAllowed = ProblemType("method-not-allowed", "Method not allowed", .methodNotAllowed)
    public static let tooManyAttempts = ProblemType("too-many-attempts", "Too many attempts", .tooManyRequests)
    /// Hummingbird's own refusal of input it read for us (a typed path parameter, `request.decode`,
    /// `uri.decodeQuery`); no route uses those today. The title is the reason phrase, as the
    /// framework's other errors had before this list: any other status it raises is a 500.
    public static let httpBadRequest = ProblemType("http-400", "Bad Request", .badRequest)
    public static let databaseUnavailable = ProblemType("database-unavailable", "Database unavailable", .serviceUnavailable)
    public static let internalError = ProblemType("internal-error", "Internal error", .internalServerError)

    /// Every constant above, in the order of docs/errors.md.
    public static let all: [ProblemType] = [
        .malformedRequest, .validationFailed, .blockedTarget, .unauthenticated, .forbidden, .crossSiteRequest, .notFound, .conflict,
        .objectTypeLocked, .versionMismatch, .idempotencyKeyReused, .cursorExpired, .oneTimePasswordWrong, .oneTimePasswordUnusable,
        .appNotVerified, .linkExpired, .rateLimited, .bodyTooLarge, .routeNotFound, .methodNotAllowed,
        .tooManyAttempts, .httpBadRequest, .databaseUnavailable, .internalError,
    ]
}
