import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Turns every error into a problem document, stamps `X-Request-Id` on every answer (so a client
/// can quote it and an operator find the matching log lines), and logs each request at info:
/// method, path, status and duration.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let maximumBodySize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            // A NUL character is never meaningful in a path or query, PostgreSQL refuses it in
            // text, and SQLite would cut the string at it: refuse it here, once.
            if request.uri.description.range(of: "%00", options: .caseInsensitive) != nil {
                throw APIError.validation("The URL contains a NUL character (%00); remove it.")
            }
            var response = try await next(request, context)
            response.headers[.requestID] = context.id
            log(request, status: response.status, since: start, context: context)
            return response
        } catch var error as APIError {
            error.headers[.requestID] = context.id
            log(request, status: error.status, since: start, context: context)
            throw error
        } catch {
            var problem = Self.problem(for: error, path: request.uri.path, maximumBodySize: maximumBodySize, context: context)
            problem.headers[.requestID] = context.id
            log(request, status: problem.status, since: start, context: context)
            throw problem
        }
    }

    private func log(_ request: Request, status: HTTPResponse.Status, since start: ContinuousClock.Instant, context: Context) {
        guard context.logger.logLevel <= .info else { return }
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info("request", metadata: [
            "request_id": "\(context.id)", "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
            "status": "\(status.code)", "duration_ms": "\(String(format: "%.2f", milliseconds))"])
    }

    static func problem(for error: Error, path: String, maximumBodySize: Int, context: Context) -> APIError {
        switch error {
        case is NIOTooManyBytesError:
            return .tooLarge(maximumBodySize)
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                return APIError(.notFound, "route-not-found", "Not found",
                                detail: "There is no route at \(path.prefix(200)); see docs/openapi.yaml for the API.")
            case .methodNotAllowed:
                return APIError(.methodNotAllowed, "method-not-allowed", "Method not allowed",
                                detail: "\(path.prefix(200)) does not accept this method; see docs/openapi.yaml.")
            case .contentTooLarge:
                return .tooLarge(maximumBodySize)
            default:
                return APIError(error.status, "http-\(error.status.code)", error.status.reasonPhrase,
                                detail: error.body ?? error.status.reasonPhrase)
            }
        case let error as DecodingError:
            return JSONBody.map(error)
        case StorageError.foreignKeyViolation:
            return .conflict("Something this request refers to was removed by a concurrent request; nothing was changed. Retry it.")
        case StorageError.unavailable:
            context.logger.error("database unavailable", metadata: ["error": "\(error)"])
            return APIError(.serviceUnavailable, "database-unavailable", "Database unavailable",
                            detail: "The database cannot be reached right now; nothing was changed. Retry shortly.")
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError(context.id)
        }
    }
}

/// Reads `Authorization: Bearer …` or the session cookie into `context.credentials`, without
/// I/O: routes resolve them (`IdentityService.principal`), hot ones inside the read they make
/// anyway. A malformed Authorization header is refused here.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let sessionCookie = "sy_session"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
                throw APIError.unauthenticated("The Authorization header must be `Bearer <token>`.")
            }
            context.credentials = .bearer(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        } else if let secret = request.cookies[Self.sessionCookie]?.value {
            context.credentials = .session(secret)
        }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let requestID = named("X-Request-Id")
    static let idempotencyKey = named("Idempotency-Key")

    /// A header name written in this file: a token by construction, so the check cannot fail.
    private static func named(_ name: String) -> Self {
        guard let field = Self(name) else { preconditionFailure("\(name) is not a valid header name") }
        return field
    }
}
