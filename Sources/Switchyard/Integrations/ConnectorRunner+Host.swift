import Foundation
import NIOHTTP1

/// The server side of a script's `ctx.http.request({method, url, headers, query, body})`: the
/// request goes through the outbound client (SSRF guard, deadline, response cap); requests to
/// the API base carry the run's credentials; a 401 from the API base refreshes an OAuth 2.0
/// connection once and is retried; every call is recorded with its secrets redacted.
struct ConnectorHost: ScriptHost {
    let outbound: OutboundHTTP
    let settings: ConnectorRunner.Settings
    /// Refreshes a token on a 401; nil where nothing is refreshed (custom auth, a credentials check).
    let connections: ConnectionService?
    let state: RunState
    /// `configuration.baseUrl`: only requests under it carry credentials. nil: none does.
    let baseURL: String?
    /// The OAuth 2.0 connection to refresh on a 401 (nil for other auth types).
    let connectionID: String?

    static let methods: [String: HTTPMethod] = [
        "GET": .GET, "POST": .POST, "PUT": .PUT, "PATCH": .PATCH, "DELETE": .DELETE, "HEAD": .HEAD, "OPTIONS": .OPTIONS,
    ]

    /// A request as the script asked for it, before credentials.
    struct Prepared {
        var method: HTTPMethod
        var methodName: String
        var url: String
        var headers: [(String, String)]
        var body: [UInt8]
    }

    func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue {
        guard function == "http.request" else { throw ScriptHostError("The host has no function \(function).") }
        let prepared = try Self.prepare(argument)
        let signed = baseURL.map { Self.isUnder(prepared.url, base: $0) } ?? false
        let first = await send(prepared, signed: signed)
        var response = first
        if signed, let connectionID, connections != nil, case .success(let answer) = first, answer.status == 401, state.claimRefresh() {
            if await refresh(connectionID: connectionID) {
                response = await send(prepared, signed: true)
            }
        }
        switch response {
        case .failure(let error): throw error
        case .success(let answer):
            if answer.bodyTruncated {
                throw ScriptHostError(
                    "The answer of \(prepared.methodName) \(prepared.url) is larger than \(settings.maximumResponseBytes) bytes; it was not read."
                )
            }
            return Self.answer(answer)
        }
    }

    /// One request out, recorded.
    private func send(_ prepared: Prepared, signed: Bool) async -> Result<OutboundResponse, ScriptHostError> {
        var url = prepared.url
        var recordedURL = prepared.url
        var headers = prepared.headers
        var recordedHeaders = prepared.headers.map { name, value in (name, Self.alwaysSecret(name) ? RunState.redacted : value) }
        if signed {
            let attachment = state.attachment
            if !attachment.query.isEmpty {
                url = Self.appending(attachment.query, to: url)
                recordedURL = Self.appending(attachment.query.map { ($0.0, RunState.redacted) }, to: recordedURL, encodeValues: false)
            }
            for (name, value) in attachment.headers {
                headers.removeAll { $0.0.caseInsensitiveCompare(name) == .orderedSame }
                recordedHeaders.removeAll { $0.0.caseInsensitiveCompare(name) == .orderedSame }
                headers.append((name, value))
                recordedHeaders.append((name, RunState.redacted))
            }
        }
        let request = OutboundRequest(
            method: prepared.method,
            url: url,
            headers: headers,
            body: prepared.body,
            timeout: settings.requestTimeout,
            maximumResponseBytes: settings.maximumResponseBytes
        )
        var call = ScriptRun.HTTPCall(
            method: prepared.methodName,
            url: recordedURL,
            requestHeaders: recordedHeaders,
            status: nil,
            error: nil,
            durationMs: 0
        )
        do {
            let response = try await outbound.send(request)
            call.status = response.status
            call.durationMs = Self.milliseconds(response.duration)
            if response.bodyTruncated { call.error = "the answer is larger than \(settings.maximumResponseBytes) bytes; not read" }
            state.record(call)
            return .success(response)
        } catch {
            call.error = error.description
            call.durationMs = Self.milliseconds(error.duration)
            state.record(call)
            return .failure(ScriptHostError("\(prepared.methodName) \(prepared.url) failed: \(error.description)"))
        }
    }

    /// The provider refused the token: one refresh through the connection, whose new token the
    /// rest of the run's requests carry. False when it could not be refreshed.
    private func refresh(connectionID: String) async -> Bool {
        let rejected = state.attachment.headers.first { $0.0 == "Authorization" }?.1.split(separator: " ").last.map(String.init) ?? ""
        state.note("The API answered 401: refreshing the connection's token once.")
        do {
            guard let connections else { return false }
            let renewed = try await connections.refreshAfterUnauthorized(connectionID: connectionID, rejected: rejected)
            state.learn(credentials: renewed.secrets, type: renewed.integration.auth.type)
            let attachment = Attachment.standard(renewed.integration.auth, credentials: renewed.secrets)
            state.learn(attachment: attachment)
            state.attach(attachment)
            state.note("Token refreshed; the request is sent again.")
            return true
        } catch {
            state.note("The token could not be refreshed: \(ConnectorRunner.describe(error))", level: "warn")
            return false
        }
    }

    /// The options the script gave, checked; a bad one rejects the script's promise.
    static func prepare(_ argument: JSONValue) throws(ScriptHostError) -> Prepared {
        guard case .object(let options) = argument else {
            throw ScriptHostError("ctx.http.request takes an object such as {method: \"GET\", url: \"https://…\"}.")
        }
        guard case .string(var url) = options["url"] ?? .null, !url.isEmpty else {
            throw ScriptHostError("ctx.http.request needs a `url` string.")
        }
        let methodName = (options["method"]?.stringValue ?? "GET").uppercased()
        guard let method = methods[methodName] else {
            throw ScriptHostError("`method` must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, not \(methodName).")
        }
        var headers: [(String, String)] = []
        if let given = options["headers"], given != .null {
            guard case .object(let map) = given else { throw ScriptHostError("`headers` must be an object of header names to values.") }
            for (name, value) in map.sorted(by: { $0.key < $1.key }) {
                guard let text = scalarText(value) else { throw ScriptHostError("The header `\(name)` must be a string.") }
                headers.append((name, text))
            }
        }
        if let given = options["query"], given != .null {
            guard case .object(let map) = given else { throw ScriptHostError("`query` must be an object of parameter names to values.") }
            var pairs: [(String, String)] = []
            for (name, value) in map.sorted(by: { $0.key < $1.key }) {
                if case .array(let items) = value {
                    for item in items {
                        guard let text = scalarText(item) else { throw ScriptHostError("The query parameter `\(name)` must hold strings.") }
                        pairs.append((name, text))
                    }
                } else if value != .null {
                    guard let text = scalarText(value) else { throw ScriptHostError("The query parameter `\(name)` must be a string.") }
                    pairs.append((name, text))
                }
            }
            url = appending(pairs, to: url)
        }
        var body: [UInt8] = []
        switch options["body"] ?? .null {
        case .null: break
        case .string(let text): body = Array(text.utf8)
        case let value:
            body = Array(value.jsonText.utf8)
            if !headers.contains(where: { $0.0.caseInsensitiveCompare("content-type") == .orderedSame }) {
                headers.append(("content-type", "application/json"))
            }
        }
        return Prepared(method: method, methodName: methodName, url: url, headers: headers, body: body)
    }

    static func scalarText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): number.rounded() == number && abs(number) < 9e15 ? String(Int64(number)) : String(number)
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    /// Headers whose values are credentials whatever they hold.
    static func alwaysSecret(_ name: String) -> Bool {
        ["authorization", "proxy-authorization", "cookie", "x-api-key"].contains(name.lowercased())
    }

    /// Whether `url` is under the API base: the base itself, or followed by `/`, `?` or `#` (so
    /// `https://api.example.com` does not cover `https://api.example.com.evil.test`).
    static func isUnder(_ url: String, base: String) -> Bool {
        guard url.hasPrefix(base) else { return false }
        if base.hasSuffix("/") { return true }
        guard let next = url.dropFirst(base.count).first else { return true }
        return next == "/" || next == "?" || next == "#"
    }

    /// `url` with `pairs` added to its query (before any fragment, which is not sent).
    static func appending(_ pairs: [(String, String)], to url: String, encodeValues: Bool = true) -> String {
        guard !pairs.isEmpty else { return url }
        var base = url
        if let hash = base.firstIndex(of: "#") { base = String(base[..<hash]) }
        let encoded = pairs.map { name, value in
            let name = name.addingPercentEncoding(withAllowedCharacters: Redactor.unreserved) ?? name
            let value = encodeValues ? (value.addingPercentEncoding(withAllowedCharacters: Redactor.unreserved) ?? value) : value
            return "\(name)=\(value)"
        }
        .joined(separator: "&")
        let separator = !base.contains("?") ? "?" : (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&")
        return base + separator + encoded
    }

    /// `{status, headers, body}` for the script (the runtime adds `json()`).
    static func answer(_ response: OutboundResponse) -> JSONValue {
        var headers: [String: JSONValue] = [:]
        for (name, value) in response.headers {
            let key = name.lowercased()
            if case .string(let earlier) = headers[key] {
                headers[key] = .string("\(earlier), \(value)")
            } else {
                headers[key] = .string(value)
            }
        }
        return .object([
            "status": .int(Int64(response.status)),
            "headers": .object(headers),
            "body": .string(String(decoding: response.body, as: UTF8.self)),
        ])
    }

    static func milliseconds(_ seconds: TimeInterval) -> Double { (seconds * 1_000_000).rounded() / 1000 }
}
