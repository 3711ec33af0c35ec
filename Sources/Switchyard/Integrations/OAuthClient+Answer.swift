import Foundation

/// Tokens as a token endpoint answers them (RFC 6749 §5.1), or as callback or authentication
/// code returned them in its place.
struct TokenAnswer: Sendable, Equatable {
    var accessToken: String
    var refreshToken: String?
    var tokenType: String
    /// Seconds from now; nil when the provider did not say.
    var expiresIn: TimeInterval?
    /// Space-separated, as granted; nil when the provider did not say (then it granted what was asked).
    var scope: String?

    /// The members a script's answer may have: a script's shape is checked strictly.
    static let scriptKeys: Set<String> = ["access_token", "refresh_token", "expires_in", "token_type", "scope"]

    /// A success answer. `strict` (a script's answer) refuses members outside `scriptKeys`; a
    /// provider's may carry more (`id_token`…), which are ignored.
    static func parse(_ object: [String: JSONValue], strict: Bool, source: String) throws(TokenFailure) -> TokenAnswer {
        func bad(_ why: String) -> TokenFailure { TokenFailure(.unreadable, "\(source) \(why)") }
        if strict, let unknown = object.keys.filter({ !scriptKeys.contains($0) }).sorted().first {
            throw bad("has the unknown member `\(unknown)`; expected {access_token, refresh_token?, expires_in?, token_type?, scope?}")
        }
        guard case .string(let accessToken) = object["access_token"], !accessToken.isEmpty else {
            throw bad("has no `access_token` string")
        }
        func optionalString(_ key: String) throws(TokenFailure) -> String? {
            switch object[key] {
            case nil, .null: return nil
            case .string(let text): return text
            case let other?: throw bad("has `\(key)` as \(other.typeName), not a string")
            }
        }
        let refreshToken = try optionalString("refresh_token")
        let tokenType = try optionalString("token_type")
        let scope = try optionalString("scope")
        var expiresIn: TimeInterval?
        switch object["expires_in"] {
        case nil, .null: break
        case .int(let seconds): expiresIn = TimeInterval(seconds)
        case .double(let seconds): expiresIn = seconds
        // Some providers send it as a string ("3600").
        case .string(let text) where Double(text) != nil: expiresIn = Double(text)
        case let other?: throw bad("has `expires_in` as \(other.typeName), not a number of seconds")
        }
        if let seconds = expiresIn, !seconds.isFinite || seconds < 0 { throw bad("has a negative `expires_in`") }
        return TokenAnswer(
            accessToken: accessToken,
            refreshToken: refreshToken?.isEmpty == true ? nil : refreshToken,
            tokenType: tokenType ?? "Bearer",
            expiresIn: expiresIn,
            scope: scope
        )
    }

    /// An RFC 6749 §5.2 error answer (`{"error": "invalid_grant", "error_description": …}`), if
    /// that is what `object` is.
    static func refusal(_ object: [String: JSONValue], source: String) -> TokenFailure? {
        guard case .string(let code) = object["error"] else { return nil }
        let description = object["error_description"]?.stringValue.map { ": " + String($0.prefix(300)) } ?? ""
        return TokenFailure(.refused, "\(source) refused it with \(String(code.prefix(60)))\(description)", error: String(code.prefix(60)))
    }

    /// The tokens as a connection keeps them (sealed): `previous` keeps its refresh token when
    /// the provider issued no new one (RFC 6749 §6).
    func secrets(previous: JSONValue? = nil) -> JSONValue {
        var tokens: [String: JSONValue] = ["access_token": .string(accessToken), "token_type": .string(tokenType)]
        if let refresh = refreshToken ?? previous?.objectValue?["refresh_token"]?.stringValue { tokens["refresh_token"] = .string(refresh) }
        if let scope { tokens["scope"] = .string(scope) }
        return .object(tokens)
    }

    func expiresAt(from now: Date) -> Date? { expiresIn.map { now.addingTimeInterval($0) } }

    /// The granted scopes: the answer's, else `requested` (RFC 6749 §5.1: omitted means as asked).
    func scopes(requested: [String]?) -> [String]? {
        guard let scope else { return requested }
        return scope.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
    }
}

/// Why no tokens came, in words that can be shown to an admin and kept as `last_error`: never a
/// secret, never a token.
struct TokenFailure: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        /// The provider answered with an RFC 6749 error (`invalid_grant`…).
        case refused
        /// An answer that is not a token answer: HTML, JSON of another shape, a bad script result.
        case unreadable
        /// No answer, a timeout, a 5xx or a 429: worth trying again later.
        case unavailable
        /// Callback or authentication code failed (threw, timed out, crashed).
        case script
        /// The integration cannot be used this way (no token URL, a refresh token missing).
        case unusable
    }

    var kind: Kind
    var description: String
    /// The RFC 6749 error code, for `.refused`.
    var error: String?

    init(_ kind: Kind, _ description: String, error: String? = nil) {
        self.kind = kind
        self.description = description
        self.error = error
    }

    /// The refresh token (or the authorization code) is dead: asking again will not help.
    var isInvalidGrant: Bool { error == "invalid_grant" }
}
