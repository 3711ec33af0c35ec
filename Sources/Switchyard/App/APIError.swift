import Foundation
import Hummingbird
import NIOCore

/// The one error type the API answers with: an RFC 9457 problem document with a stable `type`, a
/// `detail` that says what to fix, and the offending field where there is one.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// Which problem this is: its slug, title and status (ProblemType.all, docs/errors.md).
    public let problem: ProblemType
    public let detail: String
    public let field: String?
    public var headers: HTTPFields = [:]

    public init(_ problem: ProblemType, detail: String, field: String? = nil) {
        self.problem = problem
        self.detail = detail
        self.field = field
    }

    public var status: HTTPResponse.Status { problem.status }
    public var slug: String { problem.slug }
    public var title: String { problem.title }
    public var type: String { problem.type }
    public var description: String { "\(status.code) \(slug): \(detail)" }

    private struct Document: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String
        let field: String?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(Document(type: type, title: title, status: status.code, detail: detail, field: field))
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    // The problems every feature uses, with their usual details; the rest are made from a ProblemType.
    public static func validation(_ detail: String, field: String? = nil) -> APIError {
        APIError(.validationFailed, detail: detail, field: field)
    }

    public static func malformed(_ detail: String) -> APIError {
        APIError(.malformedRequest, detail: detail)
    }

    /// 404 with a detail of the caller's own, for things found by key rather than id.
    public static func notFound(detail: String) -> APIError {
        APIError(.notFound, detail: detail)
    }

    public static func notFound(_ what: String, _ id: String) -> APIError {
        APIError(.notFound, detail: "No \(what) with id \(id) exists, or you cannot see it.")
    }

    public static func unauthenticated(_ detail: String) -> APIError {
        var error = APIError(.unauthenticated, detail: detail)
        error.headers[.wwwAuthenticate] = "Bearer realm=\"switchyard\""
        return error
    }

    public static func forbidden(_ detail: String) -> APIError {
        APIError(.forbidden, detail: detail)
    }

    public static func conflict(_ detail: String, field: String? = nil) -> APIError {
        APIError(.conflict, detail: detail, field: field)
    }

    public static func tooLarge(_ limit: Int) -> APIError {
        APIError(
            .bodyTooLarge,
            detail: "The request body is larger than the limit of \(limit) bytes."
        )
    }

    public static func internalError(_ requestID: String) -> APIError {
        APIError(
            .internalError,
            detail: "Something went wrong on our side; nothing was changed. Quote request id \(requestID) when reporting it."
        )
    }
}
