import ExtrasBase64
import Foundation
import NIOHTTP1

/// The client side of a provider's token endpoint (RFC 6749): the authorization-code grant (with
/// the PKCE verifier), the refresh-token grant and the client-credentials grant, form-encoded,
/// with the client authenticated by `client_secret_post` or `client_secret_basic`. Every request
/// goes through the product's outbound client (SSRF guard, timeout, response cap, no redirects).
struct OAuthClient: Sendable {
    /// An integration's OAuth 2.0 client, as its auth spec and sealed secret give it.
    struct Client: Sendable {
        var tokenURL: String
        var clientID: String
        var clientSecret: String?
        var method: AuthSpec.TokenAuthMethod
        var scopes: [String]
        var scopeSeparator: String

        init(_ spec: AuthSpec, secrets: IntegrationSecrets) throws(TokenFailure) {
            guard spec.type == .oauth2 else { throw TokenFailure(.unusable, "the integration does not use OAuth 2.0") }
            guard let tokenURL = spec.tokenUrl, !tokenURL.isEmpty else {
                throw TokenFailure(.unusable, "the integration's auth has no `token_url`")
            }
            guard let clientID = spec.clientId, !clientID.isEmpty else {
                throw TokenFailure(.unusable, "the integration's auth has no `client_id`")
            }
            self.tokenURL = tokenURL
            self.clientID = clientID
            clientSecret = secrets.clientSecret
            method = spec.tokenAuthMethod ?? .clientSecretPost
            scopes = spec.scopes ?? []
            scopeSeparator = spec.scopeSeparator ?? " "
        }

        var scopeText: String? { scopes.isEmpty ? nil : scopes.joined(separator: scopeSeparator) }
    }

    let outbound: OutboundHTTP
    /// Seconds for one token request, answer included.
    var timeout: TimeInterval = 15
    /// A token answer is small; anything past this is not one.
    static let maximumAnswerBytes = 64 * 1024
    static let userAgent = "Switchyard/\(SwitchyardVersion.current)"

    func authorizationCode(_ client: Client, code: String, verifier: String?, redirectURI: String) async throws(TokenFailure) -> TokenAnswer {
        var form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI)]
        if let verifier { form.append(("code_verifier", verifier)) }
        return try await request(client, form: form)
    }

    func refresh(_ client: Client, refreshToken: String) async throws(TokenFailure) -> TokenAnswer {
        try await request(client, form: [("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
    }

    func clientCredentials(_ client: Client) async throws(TokenFailure) -> TokenAnswer {
        var form = [("grant_type", "client_credentials")]
        if let scope = client.scopeText { form.append(("scope", scope)) }
        return try await request(client, form: form)
    }

    /// POSTs `form` to the token endpoint and reads its answer.
    func request(_ client: Client, form: [(String, String)]) async throws(TokenFailure) -> TokenAnswer {
        var form = form
        var headers = [
            ("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json"), ("user-agent", Self.userAgent),
        ]
        switch (client.method, client.clientSecret) {
        case (.clientSecretBasic, let secret?):
            // RFC 6749 §2.3.1: each part form-encoded before Basic joins them.
            let pair = Self.formEncode(client.clientID) + ":" + Self.formEncode(secret)
            headers.append(("authorization", "Basic " + Base64.encodeToString(bytes: Array(pair.utf8))))
        case (.clientSecretPost, let secret?):
            form += [("client_id", client.clientID), ("client_secret", secret)]
        case (_, nil):
            // A public client (PKCE without a secret) names itself in the body.
            form.append(("client_id", client.clientID))
        }
        let body = form.map { Self.formEncode($0.0) + "=" + Self.formEncode($0.1) }.joined(separator: "&")
        let response: OutboundResponse
        do {
            response = try await outbound.send(
                OutboundRequest(
                    method: .POST,
                    url: client.tokenURL,
                    headers: headers,
                    body: Array(body.utf8),
                    timeout: timeout,
                    maximumResponseBytes: Self.maximumAnswerBytes
                )
            )
        } catch {
            switch error.kind {
            case .blocked, .invalidURL, .invalidRequest:
                throw TokenFailure(.unusable, "the token endpoint cannot be reached: \(error.description)")
            default:
                throw TokenFailure(.unavailable, "the token endpoint did not answer: \(error.description)")
            }
        }
        return try Self.read(response)
    }

    /// A token endpoint's answer: tokens, an RFC 6749 refusal, or words on what came instead.
    static func read(_ response: OutboundResponse) throws(TokenFailure) -> TokenAnswer {
        let source = "the token endpoint"
        let contentType = response.header("content-type")?.lowercased() ?? ""
        let parsed = response.bodyTruncated ? nil : try? JSONValue.parse(utf8: response.body)
        if case .object(let object)? = parsed {
            // An error object, whatever the status (some providers answer errors with 200).
            if var refusal = TokenAnswer.refusal(object, source: source) {
                if response.status >= 500 || response.status == 429 { refusal.kind = .unavailable }
                throw refusal
            }
            if (200..<300).contains(response.status) {
                return try TokenAnswer.parse(object, strict: false, source: "the token endpoint's answer")
            }
        }
        let what = "\(response.status)\(contentType.isEmpty ? "" : " with \(contentType.split(separator: ";").first ?? "")")"
        let kind: TokenFailure.Kind = response.status >= 500 || response.status == 429 ? .unavailable : .unreadable
        if parsed == nil {
            let snippet = Self.snippet(response.body)
            throw TokenFailure(kind, "\(source) answered \(what), not JSON\(snippet.isEmpty ? "" : ": \(snippet)")")
        }
        throw TokenFailure(kind, "\(source) answered \(what) without tokens or an OAuth error")
    }

    /// The start of an answer that is not JSON, as words: an HTML page's title, else its first
    /// characters with markup and line breaks taken out.
    static func snippet(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
        if let open = text.range(of: "<title>", options: .caseInsensitive),
            let close = text.range(of: "</title>", options: .caseInsensitive, range: open.upperBound..<text.endIndex)
        {
            return oneLine(String(text[open.upperBound..<close.lowerBound]), maximum: 120)
        }
        return oneLine(text.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression), maximum: 120)
    }

    static func oneLine(_ text: String, maximum: Int) -> String {
        let words = text.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).joined(separator: " ")
        return words.count > maximum ? String(words.prefix(maximum)) + "…" : words
    }

    /// `application/x-www-form-urlencoded` (WHATWG): unreserved characters kept, spaces as `+`.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): out += "+"
            default: out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// For query strings (RFC 3986): unreserved characters kept, everything else percent-encoded.
    static func queryEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
