import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// Turns every error into a problem document, stamps `X-Request-Id` on every answer (so a client
/// can quote it and an operator find the matching log lines), and logs each request at info:
/// method, path, status and duration.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let maximumBodySize: Int
    /// Filled once every route is registered; tells a wrong method (405) from an unknown path.
    let routes: KnownRoutes
    let trustedProxies: [IPNetwork]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        if !trustedProxies.isEmpty {
            let peer = context.remoteIP
            let client = ClientAddress.resolve(peer: peer, forwardedFor: request.headers[values: .forwardedFor], trusted: trustedProxies)
            if client != peer { context.forwardedIP = client }
        }
        do {
            // A NUL character is never meaningful in a path or query, PostgreSQL refuses it in
            // text, and SQLite would cut the string at it: refuse it here, once.
            if Self.containsEncodedNUL(request.uri.description) {
                throw APIError.validation("The URL contains a NUL character (%00); remove it.")
            }
            var response = try await next(request, context)
            response.headers[.requestID] = context.requestID
            log(request, status: response.status, since: start, context: context)
            return response
        } catch var error as APIError {
            error.headers[.requestID] = context.requestID
            log(request, status: error.status, since: start, context: context)
            throw error
        } catch {
            var problem = Self.problem(for: error, path: request.uri.path, maximumBodySize: maximumBodySize, context: context)
            if problem.status == .notFound, case let allowed = routes.methods(forPath: request.uri.path), !allowed.isEmpty {
                problem = APIError(
                    .methodNotAllowed,
                    detail: "\(request.uri.path.prefix(200)) does not accept \(request.method.rawValue); it accepts "
                        + "\(allowed.joined(separator: ", ")). See docs/openapi.yaml."
                )
                problem.headers[.allow] = allowed.joined(separator: ", ")
            }
            problem.headers[.requestID] = context.requestID
            log(request, status: problem.status, since: start, context: context)
            throw problem
        }
    }

    /// `%00` anywhere in `uri`, scanned as bytes: Foundation's `range(of:)` measured at a few
    /// percent of a small request.
    static func containsEncodedNUL(_ uri: String) -> Bool {
        var utf8 = uri.utf8.makeIterator()
        var zeros = -1  // -1: not after a `%`; otherwise the `0`s seen since it
        while let byte = utf8.next() {
            switch (byte, zeros) {
            case (UInt8(ascii: "%"), _): zeros = 0
            case (UInt8(ascii: "0"), 0): zeros = 1
            case (UInt8(ascii: "0"), 1): return true
            default: zeros = -1
            }
        }
        return false
    }

    private func log(_ request: Request, status: HTTPResponse.Status, since start: ContinuousClock.Instant, context: Context) {
        guard context.logger.logLevel <= .info else { return }
        let elapsed = ContinuousClock.now - start
        let milliseconds = elapsed.timeInterval * 1000
        context.logger.info(
            "request",
            metadata: [
                "request_id": "\(context.requestID)", "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
                "status": "\(status.code)", "duration_ms": "\(String(format: "%.2f", milliseconds))",
            ]
        )
    }

    static func problem(for error: Error, path: String, maximumBodySize: Int, context: Context) -> APIError {
        switch error {
        case is NIOTooManyBytesError:
            return .tooLarge(maximumBodySize)
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                return APIError(
                    .routeNotFound,
                    detail: "There is no route at \(path.prefix(200)); see docs/openapi.yaml for the API."
                )
            case .methodNotAllowed:
                return APIError(
                    .methodNotAllowed,
                    detail: "\(path.prefix(200)) does not accept this method; see docs/openapi.yaml."
                )
            case .contentTooLarge:
                return .tooLarge(maximumBodySize)
            case .badRequest:
                return APIError(.httpBadRequest, detail: error.body ?? error.status.reasonPhrase)
            default:
                // Nothing we call raises another status: one that appears is a slip to fix (or a
                // ProblemType to add), not a slug made up on the spot.
                context.logger.error("unexpected HTTP error", metadata: ["error": "\(String(reflecting: error))"])
                return .internalError(context.requestID)
            }
        case let error as DecodingError:
            return JSONBody.map(error)
        case StorageError.foreignKeyViolation:
            return .conflict("Something this request refers to was removed by a concurrent request; nothing was changed. Retry it.")
        case StorageError.unavailable:
            context.logger.error("database unavailable", metadata: ["error": "\(error)"])
            return APIError(
                .databaseUnavailable,
                detail: "The database cannot be reached right now; nothing was changed. Retry shortly."
            )
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError(context.requestID)
        }
    }
}

/// The routes of the router, to answer 405 (with `Allow`) for a known path called with a method
/// it does not accept: Hummingbird answers 404 for both.
final class KnownRoutes: Sendable {
    private let routes = NIOLockedValueBox<[(path: RouterPath, method: String)]>([])

    func register(_ descriptions: [Router<AppRequestContext>.RouteDescription]) {
        routes.withLockedValue { $0 = descriptions.map { ($0.path, $0.method.rawValue) } }
    }

    /// The methods routes of `path` accept, sorted; empty when no route has this path.
    func methods(forPath path: String) -> [String] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        let methods = routes.withLockedValue { routes in
            routes.filter { route in
                route.path.components.count == parts.count && zip(route.path.components, parts).allSatisfy { $0 ~= $1 }
            }.map(\.method)
        }
        return Set(methods).sorted()
    }
}

extension HTTPField.Name {
    static let requestID = named("X-Request-Id")
    static let idempotencyKey = named("Idempotency-Key")
    static let forwardedFor = named("X-Forwarded-For")
    static let secFetchSite = named("Sec-Fetch-Site")

    /// A header name written here: a token by construction, so the check cannot fail.
    private static func named(_ name: String) -> Self {
        guard let field = Self(name) else { preconditionFailure("\(name) is not a valid header name") }
        return field
    }
}
