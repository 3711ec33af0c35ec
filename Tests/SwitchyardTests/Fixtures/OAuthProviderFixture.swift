import ExtrasBase64
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import Switchyard

/// A small OAuth 2.0 provider on 127.0.0.1 (a random port) standing in for a third-party service
/// in the connection tests: a token endpoint (authorization code with PKCE S256, refresh token with
/// rotation, client credentials; the client authenticated by `client_secret_post` or
/// `client_secret_basic`) and a protected `GET /api/me`. A test issues codes itself
/// (`issueCode`) instead of a browser consenting, and may queue odd answers (`enqueue`).
final class OAuthProviderFixture: Sendable {
    struct TokenRequest: Sendable {
        let form: [String: String]
        let authorization: String?
        var grantType: String { form["grant_type"] ?? "" }
    }

    enum Answer: Sendable {
        /// What a correct provider answers.
        case standard
        case respond(status: Int, contentType: String, body: String)
        /// `then`, after a pause (a slow provider, for concurrent refreshes).
        indirect case delayed(TimeInterval, then: Answer)
    }

    struct Settings: Sendable {
        var clientID = "client-1"
        var clientSecret = "secret-1"
        /// `any`, `client_secret_post` or `client_secret_basic`: the one it accepts.
        var method = "any"
        var expiresIn: Int? = 3600
        var issueRefreshToken = true
        /// A refresh gives a new refresh token and kills the old one.
        var rotate = true
        var scope: String? = "read write"
        /// Every token request waits this long first.
        var delay: TimeInterval = 0
    }

    private struct Code {
        var challenge: String?
        var redirectURI: String
        var used = false
    }

    private struct State {
        var settings: Settings
        var codes: [String: Code] = [:]
        /// Refresh tokens and whether they still work.
        var refreshTokens: [String: Bool] = [:]
        var accessTokens: Set<String> = []
        var requests: [TokenRequest] = []
        var answers: [Answer] = []
        var counter = 0
    }

    let port: Int
    private let state: NIOLockedValueBox<State>
    private let task: Task<Void, any Error>

    private init(port: Int, state: NIOLockedValueBox<State>, task: Task<Void, any Error>) {
        self.port = port
        self.state = state
        self.task = task
    }

    static func start(_ settings: Settings = Settings()) async throws -> OAuthProviderFixture {
        let state = NIOLockedValueBox(State(settings: settings))
        let router = Router()
        router.post("token") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 65_536)
            let form = Self.parseForm(String(buffer: body))
            let authorization = request.headers[.authorization]
            let answer = state.withLockedValue { state -> Answer in
                state.requests.append(TokenRequest(form: form, authorization: authorization))
                return state.answers.isEmpty ? .standard : state.answers.removeFirst()
            }
            let delay = state.withLockedValue { $0.settings.delay }
            if delay > 0 { try await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
            return try await Self.perform(answer, form: form, authorization: authorization, state: state)
        }
        router.get("api/me") { request, _ -> Response in
            let token = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            guard let token, state.withLockedValue({ $0.accessTokens.contains(token) }) else {
                return Self.json(401, #"{"error":"invalid_token"}"#)
            }
            return Self.json(200, #"{"user":"ada"}"#)
        }
        var logger = Logger(label: "oauth-provider")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger
        )
        let task = Task { try await app.run() }
        var port = 0
        for await value in ports { port = value }
        return OAuthProviderFixture(port: port, state: state, task: task)
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }
    var tokenURL: String { url("/token") }
    var authorizationURL: String { url("/authorize") }

    func update(_ change: (inout Settings) -> Void) { state.withLockedValue { change(&$0.settings) } }

    /// Answers for the next token requests, in order; then the standard ones again.
    func enqueue(_ answers: Answer...) { state.withLockedValue { $0.answers += answers } }

    /// A code as if the user had consented at the authorization URL.
    func issueCode(challenge: String?, redirectURI: String) -> String {
        state.withLockedValue { state in
            state.counter += 1
            let code = "code-\(state.counter)"
            state.codes[code] = Code(challenge: challenge, redirectURI: redirectURI)
            return code
        }
    }

    /// Every token request so far.
    var requests: [TokenRequest] { state.withLockedValue { $0.requests } }

    func requests(grant: String) -> [TokenRequest] { requests.filter { $0.grantType == grant } }

    /// The user changed their password: every refresh token (and access token) stops working.
    func revokeEverything() {
        state.withLockedValue { state in
            for key in state.refreshTokens.keys { state.refreshTokens[key] = false }
            state.accessTokens = []
        }
    }

    func isValid(accessToken: String) -> Bool { state.withLockedValue { $0.accessTokens.contains(accessToken) } }

    func shutdown() async {
        task.cancel()
        _ = try? await task.value
    }

    // MARK: The token endpoint

    private static func perform(
        _ answer: Answer,
        form: [String: String],
        authorization: String?,
        state: NIOLockedValueBox<State>
    ) async throws
        -> Response
    {
        switch answer {
        case .respond(let status, let contentType, let body):
            return Response(
                status: .init(code: status),
                headers: [.contentType: contentType],
                body: .init(byteBuffer: ByteBuffer(string: body))
            )
        case .delayed(let seconds, let then):
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return try await perform(then, form: form, authorization: authorization, state: state)
        case .standard:
            return state.withLockedValue { state in standard(form: form, authorization: authorization, state: &state) }
        }
    }

    private static func standard(form: [String: String], authorization: String?, state: inout State) -> Response {
        let settings = state.settings
        var clientID = form["client_id"]
        var secret = form["client_secret"]
        if let authorization, authorization.hasPrefix("Basic ") {
            guard settings.method != "client_secret_post", let decoded = try? Base64.decode(string: String(authorization.dropFirst(6))) else {
                return error(401, "invalid_client", "Basic authentication is not accepted")
            }
            let parts = String(decoding: decoded, as: UTF8.self).split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { return error(401, "invalid_client", "malformed Basic credentials") }
            clientID = String(parts[0]).removingPercentEncoding
            secret = String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        } else if settings.method == "client_secret_basic", secret != nil {
            return error(401, "invalid_client", "use client_secret_basic")
        }
        guard clientID == settings.clientID, secret == settings.clientSecret else {
            return error(401, "invalid_client", "unknown client or wrong secret")
        }
        switch form["grant_type"] {
        case "authorization_code":
            guard let code = form["code"], var issued = state.codes[code] else { return error(400, "invalid_grant", "unknown code") }
            guard !issued.used else { return error(400, "invalid_grant", "the code was used already") }
            issued.used = true
            state.codes[code] = issued
            guard form["redirect_uri"] == issued.redirectURI else { return error(400, "invalid_grant", "redirect_uri mismatch") }
            if let challenge = issued.challenge {
                guard let verifier = form["code_verifier"], ConnectionService.codeChallenge(verifier) == challenge else {
                    return error(400, "invalid_grant", "PKCE verification failed")
                }
            }
            return issue(refresh: settings.issueRefreshToken, state: &state)
        case "refresh_token":
            guard let token = form["refresh_token"], state.refreshTokens[token] == true else {
                return error(400, "invalid_grant", "the refresh token is invalid or was revoked")
            }
            if settings.rotate { state.refreshTokens[token] = false }
            return issue(refresh: true, keep: settings.rotate ? nil : token, state: &state)
        case "client_credentials":
            return issue(refresh: false, state: &state)
        default:
            return error(400, "unsupported_grant_type", "no such grant")
        }
    }

    private static func issue(refresh: Bool, keep: String? = nil, state: inout State) -> Response {
        state.counter += 1
        let access = "at-\(state.counter)"
        state.accessTokens.insert(access)
        var answer: [String: JSONValue] = ["access_token": .string(access), "token_type": .string("Bearer")]
        if let expiresIn = state.settings.expiresIn { answer["expires_in"] = .int(Int64(expiresIn)) }
        if let scope = state.settings.scope { answer["scope"] = .string(scope) }
        if refresh {
            let token = keep ?? "rt-\(state.counter)"
            state.refreshTokens[token] = true
            if keep == nil { answer["refresh_token"] = .string(token) }
        }
        return json(200, JSONValue.object(answer).jsonText)
    }

    private static func error(_ status: Int, _ code: String, _ description: String) -> Response {
        json(status, JSONValue.object(["error": .string(code), "error_description": .string(description)]).jsonText)
    }

    private static func json(_ status: Int, _ body: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func parseForm(_ text: String) -> [String: String] {
        var form: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String { part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part) }
            form[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return form
    }
}
