import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error of the OAuth endpoints, in RFC 6749's JSON (`{"error", "error_description"}`) rather
/// than problem+json: off-the-shelf OAuth clients read these fields, and only these (docs/errors.md
/// names this exception). Rendered by the routes themselves, so the problem middleware never sees it.
struct OAuthError: Error, Sendable, CustomStringConvertible {
    var error: String
    var errorDescription: String
    var status: HTTPResponse.Status
    var headers: HTTPFields = [:]
    /// Whether the refusal is in the activity log already (written in the request's own write).
    var recorded = false

    var description: String { "\(status.code) \(error): \(errorDescription)" }

    static func invalidRequest(_ detail: String) -> OAuthError { OAuthError(error: "invalid_request", errorDescription: detail, status: .badRequest) }

    /// 401 with a Basic challenge: RFC 6749 §5.2 asks for it when the client tried Basic, and it tells
    /// every other client which scheme the endpoint takes.
    static func invalidClient(_ detail: String) -> OAuthError {
        var error = OAuthError(error: "invalid_client", errorDescription: detail, status: .unauthorized)
        error.headers[.wwwAuthenticate] = "Basic realm=\"switchyard\""
        return error
    }

    static func unsupportedGrantType(_ detail: String) -> OAuthError {
        OAuthError(error: "unsupported_grant_type", errorDescription: detail, status: .badRequest)
    }

    static func invalidScope(_ detail: String) -> OAuthError { OAuthError(error: "invalid_scope", errorDescription: detail, status: .badRequest) }

    /// Too many wrong secrets: RFC 6749 has no throttling error for the token endpoint, so this is its
    /// "temporarily unable to handle the request", with 429 and `Retry-After` as HTTP has them.
    static func throttled(seconds: Int) -> OAuthError {
        var error = OAuthError(
            error: "temporarily_unavailable",
            errorDescription: "Too many wrong client credentials from here; try again in \(seconds) seconds.",
            status: .tooManyRequests
        )
        error.headers[.retryAfter] = String(seconds)
        return error
    }

    private struct Document: Encodable {
        var error: String
        var errorDescription: String
    }

    func response(requestID: String) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[.cacheControl] = "no-store"
        fields[.requestID] = requestID
        let body = (try? JSONCoding.encoder.encode(Document(error: error, errorDescription: errorDescription))) ?? Data()
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// A client's credentials as presented: `client_secret_basic` (the `Authorization` header) or
/// `client_secret_post` (the body). Parsed without I/O; the secret is never logged or echoed.
struct ClientCredentials: Sendable {
    enum Method: String, Sendable {
        case basic = "client_secret_basic"
        case post = "client_secret_post"
    }

    var clientID: String
    var secret: String
    var method: Method

    static let secretPrefix = "syc_"

    /// Whether `text` looks like a client id (`cid_` and a ULID): anything else is never looked up,
    /// written to the log or quoted back, in case a client sent its secret in the id's place.
    static func isClientID(_ text: String) -> Bool {
        let bytes = text.utf8
        return bytes.count == 30 && bytes.starts(with: "cid_".utf8)
            && bytes.dropFirst(4).allSatisfy { (48...57).contains($0) || (65...90).contains($0) }
    }

    /// SHA-256 of the secret, or nil when it is not a well-formed `syc_…` secret (then no app has it).
    var secretHash: String? {
        TokenFormat.isWellFormed(secret, prefixes: [Self.secretPrefix]) ? TokenFormat.hash(secret) : nil
    }
}

/// A form-encoded OAuth request: its parameters and, when it carries any, the client's credentials.
struct OAuthRequest: Sendable {
    var parameters: [String: String]
    var client: ClientCredentials?

    static let bodyLimit = 16 * 1024
    static let contentType = "application/x-www-form-urlencoded"

    /// Reads the body of an OAuth endpoint: `application/x-www-form-urlencoded`, each parameter at
    /// most once (RFC 6749 §3.2), credentials in the header or in the body but not both.
    static func read(_ request: Request) async throws -> OAuthRequest {
        if let query = request.uri.query, query.contains("client_secret") {
            throw OAuthError.invalidRequest("Send the client secret in the body or the Authorization header, never in the URL.")
        }
        var request = request
        let media = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard media == contentType else {
            let sent = media.map { "a body of type \($0)" } ?? "no Content-Type"
            throw OAuthError.invalidRequest("The request has \(sent); send the parameters as \(contentType), as RFC 6749 asks.")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: bodyLimit)
        } catch is NIOTooManyBytesError {
            // As every route answers it (docs/openapi.yaml's TooLarge): no OAuth client sends this much.
            throw APIError.tooLarge(bodyLimit)
        }
        let parameters = try parse(buffer)
        return OAuthRequest(parameters: parameters, client: try credentials(header: request.headers[.authorization], parameters: parameters))
    }

    /// `a=1&b=2`, `+` for a space, percent escapes of UTF-8; an empty value counts as absent (RFC
    /// 6749 §3.1).
    static func parse(_ buffer: ByteBuffer) throws -> [String: String] {
        guard let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), text.utf8.count == buffer.readableBytes,
            String(validating: buffer.readableBytesView, as: UTF8.self) != nil
        else { throw OAuthError.invalidRequest("The request body is not UTF-8 text.") }
        var parameters: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : "") else {
                throw OAuthError.invalidRequest("The request body is not valid \(contentType): a percent escape is malformed.")
            }
            guard !name.isEmpty else { throw OAuthError.invalidRequest("The request body has a parameter without a name.") }
            if name.utf8.contains(0) || value.utf8.contains(0) {
                throw OAuthError.invalidRequest("The parameter \(quoted(name)) contains a NUL character.")
            }
            if value.isEmpty { continue }
            guard parameters[name] == nil else {
                throw OAuthError.invalidRequest("The parameter \(quoted(name)) appears more than once; send each parameter once.")
            }
            parameters[name] = value
        }
        return parameters
    }

    private static func decode(_ part: Substring) -> String? {
        part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// A parameter's name as quoted in an error; never its value, which may be a secret.
    static func quoted(_ name: String) -> String { "`\(name.prefix(40))`" }

    static func credentials(header: String?, parameters: [String: String]) throws -> ClientCredentials? {
        let postedID = parameters["client_id"]
        let postedSecret = parameters["client_secret"]
        guard let header else {
            guard let postedID else {
                if postedSecret != nil { throw OAuthError.invalidRequest("The request has a client_secret but no client_id.") }
                return nil
            }
            guard let postedSecret else {
                throw OAuthError.invalidClient(
                    "The request names a client_id but no client_secret; send both (client_secret_post) or use HTTP Basic."
                )
            }
            return ClientCredentials(clientID: postedID, secret: postedSecret, method: .post)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else {
            throw OAuthError.invalidClient(
                "The Authorization header is not HTTP Basic; authenticate the client with Basic (client_secret_basic) or in the body (client_secret_post)."
            )
        }
        guard let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let decoded = String(data: data, encoding: .utf8), let colon = decoded.firstIndex(of: ":"),
            let id = decode(decoded[..<colon]), let secret = decode(decoded[decoded.index(after: colon)...])
        else {
            throw OAuthError.invalidRequest("The Authorization header is not valid HTTP Basic: base64 of client_id:client_secret.")
        }
        if postedSecret != nil {
            throw OAuthError.invalidRequest("The request authenticates the client twice (Basic and client_secret in the body); use one method.")
        }
        if let postedID, postedID != id {
            throw OAuthError.invalidRequest("The client_id in the body differs from the one in the Authorization header.")
        }
        guard !id.isEmpty, !secret.isEmpty else { throw OAuthError.invalidClient("The HTTP Basic credentials lack a client id or a secret.") }
        return ClientCredentials(clientID: id, secret: secret, method: .basic)
    }
}
