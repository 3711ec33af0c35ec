import Foundation
import NIOHTTP1

/// `ctx.http.request` for the scripts that make credentials (custom auth, callback code,
/// authentication code): plain requests through the outbound client (SSRF guard, timeout,
/// response cap), with nothing added: these scripts produce the credentials, they do not carry them.
struct AuthScriptHost: ScriptHost {
    let outbound: OutboundHTTP
    var timeout: TimeInterval = 10
    static let maximumResponseBytes = 1 << 20
    static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue {
        guard function == "http.request" else { throw ScriptHostError("unknown host function \(function)") }
        guard case .object(let options) = argument else {
            throw ScriptHostError("http.request takes an object {method, url, headers, query, body}")
        }
        let method = (options["method"]?.stringValue ?? "GET").uppercased()
        guard Self.methods.contains(method) else { throw ScriptHostError("http.request: unsupported method \(method)") }
        guard case .string(var url)? = options["url"], !url.isEmpty else { throw ScriptHostError("http.request: `url` is required") }
        if case .object(let query)? = options["query"], !query.isEmpty {
            let pairs = try query.keys.sorted().map { key throws(ScriptHostError) -> String in
                guard let value = query[key].flatMap(Self.text) else { throw ScriptHostError("http.request: query `\(key)` must be a string") }
                return OAuthClient.queryEncode(key) + "=" + OAuthClient.queryEncode(value)
            }
            url += (url.contains("?") ? "&" : "?") + pairs.joined(separator: "&")
        }
        var headers: [(String, String)] = []
        if case .object(let given)? = options["headers"] {
            for key in given.keys.sorted() {
                guard let value = given[key].flatMap(Self.text) else { throw ScriptHostError("http.request: header `\(key)` must be a string") }
                headers.append((key, value))
            }
        }
        var body: [UInt8] = []
        switch options["body"] {
        case nil, .null: break
        case .string(let text): body = Array(text.utf8)
        case let value?:
            body = Array(value.jsonText.utf8)
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("content-type", "application/json")) }
        }
        let response: OutboundResponse
        do {
            response = try await outbound.send(
                OutboundRequest(
                    method: HTTPMethod(rawValue: method),
                    url: url,
                    headers: headers,
                    body: body,
                    timeout: timeout,
                    maximumResponseBytes: Self.maximumResponseBytes
                )
            )
        } catch {
            throw ScriptHostError(error.description)
        }
        var answerHeaders: [String: JSONValue] = [:]
        for (name, value) in response.headers { answerHeaders[name.lowercased()] = .string(value) }
        return .object([
            "status": .int(Int64(response.status)), "headers": .object(answerHeaders),
            "body": .string(String(decoding: response.body, as: UTF8.self)),
        ])
    }

    static func text(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): return text
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        default: return nil
        }
    }
}

/// Runs an integration's callback code (`exchange(params, ctx)`) and authentication code
/// (`refresh(tokens, ctx)`), and reads what they return strictly: a token answer, an RFC 6749
/// error object, or (refresh only) null for "still valid".
extension OAuthClient {
    struct ScriptAnswer: Sendable {
        var tokens: TokenAnswer?
        var logs: [ScriptLogLine]
    }

    /// `ctx` of the OAuth scripts: the configuration (secret values included) and the client.
    static func scriptContext(_ integration: Integration, _ secrets: IntegrationSecrets, redirectURI: String) -> JSONValue {
        let spec = integration.auth
        var client: [String: JSONValue] = [
            "client_id": spec.clientId.map(JSONValue.string) ?? .null,
            "client_secret": secrets.clientSecret.map(JSONValue.string) ?? .null,
            "token_url": spec.tokenUrl.map(JSONValue.string) ?? .null,
            "authorization_url": spec.authorizationUrl.map(JSONValue.string) ?? .null,
            "scopes": .array((spec.scopes ?? []).map(JSONValue.string)),
        ]
        client["redirect_uri"] = .string(redirectURI)
        return .object(["config": scriptConfig(integration, secrets), "oauth": .object(client)])
    }

    /// `config` as every script sees it: the configuration with the secret configuration over it.
    static func scriptConfig(_ integration: Integration, _ secrets: IntegrationSecrets) -> JSONValue {
        var config = integration.configuration.objectValue ?? [:]
        for (key, value) in secrets.secretConfiguration { config[key] = .string(value) }
        return .object(config)
    }

    /// The callback code's exchange of an authorization code.
    func exchange(
        code source: String,
        params: JSONValue,
        context: JSONValue,
        scripts: any ScriptRunner
    ) async -> (Result<TokenAnswer, TokenFailure>, [ScriptLogLine]) {
        let outcome = await run(source, entry: "exchange", arguments: [.json(params), .context(context)], scripts: scripts)
        do throws(TokenFailure) {
            let answer = try Self.read(outcome, entry: "exchange", allowNull: false)
            guard let tokens = answer else { throw TokenFailure(.unreadable, "exchange() returned nothing") }
            return (.success(tokens), outcome.logs)
        } catch {
            return (.failure(error), outcome.logs)
        }
    }

    /// The authentication code's check: new tokens, or nil when it says the current ones are valid.
    func refresh(
        code source: String,
        tokens: JSONValue,
        context: JSONValue,
        scripts: any ScriptRunner
    ) async -> (Result<TokenAnswer?, TokenFailure>, [ScriptLogLine]) {
        let outcome = await run(source, entry: "refresh", arguments: [.json(tokens), .context(context)], scripts: scripts)
        do throws(TokenFailure) {
            return (.success(try Self.read(outcome, entry: "refresh", allowNull: true)), outcome.logs)
        } catch {
            return (.failure(error), outcome.logs)
        }
    }

    private func run(_ source: String, entry: String, arguments: [ScriptArgument], scripts: any ScriptRunner) async -> ScriptOutcome {
        await scripts.run(ScriptRequest(source: source, entry: entry, arguments: arguments), host: AuthScriptHost(outbound: outbound))
    }

    /// What a script returned, as tokens (or nil), or why it is not usable.
    static func read(_ outcome: ScriptOutcome, entry: String, allowNull: Bool) throws(TokenFailure) -> TokenAnswer? {
        guard outcome.status == .succeeded else { throw TokenFailure(.script, describe(outcome, entry: entry)) }
        let shape = "{access_token, refresh_token?, expires_in?, token_type?, scope?}\(allowNull ? " or null" : "")"
        switch outcome.result {
        case nil, .null?:
            guard allowNull else { throw TokenFailure(.unreadable, "\(entry)() must return \(shape); it returned nothing") }
            return nil
        case .object(let object)?:
            if object["error"] != nil {
                if let unknown = object.keys.filter({ !["error", "error_description", "error_uri"].contains($0) }).sorted().first {
                    throw TokenFailure(.unreadable, "\(entry)() returned an error object with the unknown member `\(unknown)`")
                }
                if let refusal = TokenAnswer.refusal(object, source: "\(entry)(): the provider") { throw refusal }
                throw TokenFailure(.unreadable, "\(entry)() returned an error object whose `error` is not a string")
            }
            return try TokenAnswer.parse(object, strict: true, source: "what \(entry)() returned")
        case let other?:
            throw TokenFailure(.unreadable, "\(entry)() must return \(shape); it returned \(other.typeName)")
        }
    }

    /// A run that did not succeed, in words: what was thrown and where, or why it was stopped.
    static func describe(_ outcome: ScriptOutcome, entry: String) -> String {
        var where_ = ""
        if let line = outcome.failure?.line { where_ = " (line \(line)\(outcome.failure?.column.map { ", column \($0)" } ?? ""))" }
        let thrown = outcome.failure.map { "\($0.name): \($0.message)" } ?? "no error given"
        switch outcome.status {
        case .succeeded: return "\(entry)() succeeded"
        case .failed: return "\(entry)() threw \(thrown)\(where_)"
        case .timedOut: return "\(entry)() was stopped at its time limit\(where_)"
        case .memoryExceeded: return "\(entry)() was stopped at its memory limit"
        case .crashed: return "\(entry)() crashed its worker (\(thrown))"
        }
    }
}
