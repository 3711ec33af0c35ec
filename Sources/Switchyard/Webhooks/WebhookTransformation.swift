import Foundation

/// An endpoint's transformation: `export function transform(webhook)` run in the isolated script
/// runtime before a delivery is signed. It gets `{method, url, headers, payload, cancel}` and
/// answers it changed: another `payload` (the body), a `url` on the same origin (path and query
/// only), other `headers` (never the ones a delivery sets itself), or `cancel: true`.
struct WebhookTransformation: Sendable {
    static let entry = "transform"
    static let maximumCodeBytes = 64 * 1024
    /// A transformation is a small function: five seconds is generous and keeps a delivery moving.
    static let timeLimit: TimeInterval = 5

    enum Outcome: Sendable {
        case send(url: String, headers: [(String, String)], body: [UInt8])
        case cancel
        /// The message is for the attempt log: what the script threw, or what was wrong with its answer.
        case failed(String)
    }

    let scripts: any ScriptRunner

    func apply(_ code: String, url: String, headers: [(String, String)], body: [UInt8]) async -> Outcome {
        let payload: JSONValue
        do {
            payload = try JSONValue.parse(utf8: body)
        } catch {
            return .failed("The transformation got a body that is not JSON.")
        }
        var headerObject: [String: JSONValue] = [:]
        for (name, value) in headers { headerObject[name] = .string(value) }
        let webhook = JSONValue.object([
            "method": .string("POST"), "url": .string(url), "headers": .object(headerObject), "payload": payload, "cancel": .bool(false),
        ])
        let request = ScriptRequest(source: code, entry: Self.entry, arguments: [.json(webhook)], timeLimit: Self.timeLimit, maximumHostCalls: 0)
        let outcome = await scripts.run(request, host: NoHost())
        guard outcome.status == .succeeded else {
            let failure = outcome.failure.map { failure in
                "\(failure.name): \(failure.message)\(failure.line.map { " (line \($0))" } ?? "")"
            }
            return .failed("The transformation failed (\(outcome.status.rawValue)): \(failure ?? "no answer").")
        }
        return Self.read(outcome.result, url: url, headers: headers, body: body)
    }

    /// The script's answer checked: anything it may not change is a failure, not a silent drop.
    static func read(_ result: JSONValue?, url: String, headers: [(String, String)], body: [UInt8]) -> Outcome {
        guard case .object(let answer)? = result else {
            return .failed("The transformation must return the webhook object (with `payload`, `url`, `headers` or `cancel`).")
        }
        if let cancel = answer["cancel"] {
            guard case .bool(let cancelled) = cancel else { return .failed("The transformation's `cancel` must be true or false.") }
            if cancelled { return .cancel }
        }
        var newBody = body
        if let payload = answer["payload"] { newBody = Array(payload.jsonText.utf8) }
        var newURL = url
        if let value = answer["url"] {
            guard let text = value.stringValue else { return .failed("The transformation's `url` must be a string.") }
            guard sameOrigin(text, url) else {
                return .failed("The transformation may change only the URL's path and query, not its scheme, host or port.")
            }
            newURL = text
        }
        var newHeaders = headers
        if let value = answer["headers"] {
            guard case .object(let map) = value else { return .failed("The transformation's `headers` must be an object of strings.") }
            newHeaders = []
            for name in map.keys.sorted() {
                guard let text = map[name]?.stringValue,
                    !text.unicodeScalars.contains(where: { ($0.value < 32 && $0 != "\t") || $0.value == 127 })
                else { return .failed("The transformation's header `\(name)` must be a single-line string.") }
                guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                    return .failed("The transformation's header name `\(name)` is not a valid HTTP header name.")
                }
                guard !EndpointFields.reservedHeaders.contains(name.lowercased()) else {
                    return .failed("The transformation cannot set `\(name)`: every delivery sets it itself.")
                }
                newHeaders.append((name, text))
            }
        }
        return .send(url: newURL, headers: newHeaders, body: newBody)
    }

    static func sameOrigin(_ a: String, _ b: String) -> Bool {
        guard let left = URLComponents(string: a), let right = URLComponents(string: b), left.host != nil else { return false }
        func port(_ url: URLComponents) -> Int? { url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80) }
        return left.scheme?.lowercased() == right.scheme?.lowercased() && left.host?.lowercased() == right.host?.lowercased()
            && port(left) == port(right) && left.user == nil && left.password == nil
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Transformations reach nothing outside themselves.
    struct NoHost: ScriptHost {
        func call(_ function: String, _ argument: JSONValue) async throws(ScriptHostError) -> JSONValue {
            throw ScriptHostError("a webhook transformation cannot make requests")
        }
    }
}
