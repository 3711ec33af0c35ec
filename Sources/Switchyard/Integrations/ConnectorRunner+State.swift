import Foundation
import NIOConcurrencyHelpers

/// What one run gathers while its scripts run — HTTP calls, the authentication's notes, the
/// credentials requests carry, the secrets to redact — shared with its host, whose calls may
/// come concurrently (`Promise.all`).
final class RunState: Sendable {
    static let redacted = "[redacted]"

    private struct Inner {
        var redactor = Redactor()
        var calls: [ScriptRun.HTTPCall] = []
        var authLogs: [ScriptLogLine] = []
        var attachment = Attachment()
        var refreshed = false
    }

    private let box: NIOLockedValueBox<Inner>

    init(secrets: IntegrationSecrets) {
        var inner = Inner()
        for value in secrets.secretConfiguration.values { inner.redactor.add(value) }
        if let secret = secrets.clientSecret { inner.redactor.add(secret) }
        box = NIOLockedValueBox(inner)
    }

    /// A line of the runner's own in `auth_logs`.
    func note(_ message: String, level: String = "info") {
        let line = ScriptLogLine(level: level, message: message, at: Date())
        box.withLockedValue { $0.authLogs.append(line) }
    }

    func authLogs(_ lines: [ScriptLogLine]) {
        box.withLockedValue { $0.authLogs.append(contentsOf: lines) }
    }

    /// The connection's secret values are redacted wherever they show: OAuth 2.0 tokens (not
    /// their type, scope or expiry), the API key, basic credentials, every string of custom ones.
    func learn(credentials: JSONValue, type: AuthSpec.Kind) {
        let values = credentials.objectValue ?? [:]
        let secret: (String) -> Bool =
            switch type {
            case .oauth2: { ["access_token", "refresh_token", "id_token"].contains($0) }
            case .apiKey: { $0 == "api_key" }
            case .basic: { $0 == "username" || $0 == "password" }
            case .custom, .none: { _ in true }
            }
        box.withLockedValue { inner in
            for (key, value) in values where secret(key) { inner.redactor.add(json: value) }
        }
    }

    func learn(attachment: Attachment) {
        box.withLockedValue { inner in
            for (_, value) in attachment.headers + attachment.query {
                inner.redactor.add(value)
                // `Bearer abc…`, `Basic abc…`, `Token abc…`: the credential itself too.
                if let last = value.split(separator: " ").last, last.count >= 8, last.count < value.count { inner.redactor.add(String(last)) }
            }
        }
    }

    /// What requests to the API base carry from now on.
    func attach(_ attachment: Attachment) {
        box.withLockedValue { $0.attachment = attachment }
    }

    var attachment: Attachment { box.withLockedValue { $0.attachment } }

    /// True once: a run refreshes its connection at most once.
    func claimRefresh() -> Bool {
        box.withLockedValue { inner in
            if inner.refreshed { return false }
            inner.refreshed = true
            return true
        }
    }

    func record(_ call: ScriptRun.HTTPCall) {
        box.withLockedValue { $0.calls.append(call) }
    }

    func contains(secretIn text: String) -> Bool {
        box.withLockedValue { $0.redactor.contains(text) }
    }

    /// A failure and the auth logs with every secret redacted, for a check that keeps no run.
    func redacted(failure: ScriptFailure?) -> (failure: ScriptFailure?, logs: [ScriptLogLine]) {
        let (redactor, authLogs) = box.withLockedValue { ($0.redactor, $0.authLogs) }
        let failure = failure.map { failure in
            var failure = failure
            failure.message = redactor.redact(failure.message)
            failure.stack = failure.stack.map(redactor.redact)
            return failure
        }
        return (failure, authLogs.map { redactor.redact($0) })
    }

    /// The run as it is stored and answered: the calls and notes gathered, every secret redacted.
    func finish(_ run: inout ScriptRun) {
        let (redactor, calls, authLogs) = box.withLockedValue { ($0.redactor, $0.calls, $0.authLogs) }
        run.httpCalls = calls.map { call in
            var call = call
            call.url = redactor.redact(call.url)
            call.requestHeaders = call.requestHeaders.map { name, value in
                (name, value == Self.redacted || !redactor.contains(value) ? value : Self.redacted)
            }
            call.error = call.error.map(redactor.redact)
            return call
        }
        run.authLogs = (authLogs + run.authLogs).map { redactor.redact($0) }
        run.logs = run.logs.map { redactor.redact($0) }
        if var error = run.error {
            error.message = redactor.redact(error.message)
            error.stack = error.stack.map(redactor.redact)
            run.error = error
        }
        run.output = run.output.map(redactor.redact)
    }
}

/// Replaces secret values with `[redacted]`: as whole values, and inside longer text when they
/// are at least 4 characters long (shorter ones would blank out ordinary words). Also finds them
/// percent-encoded (in URLs) and JSON-escaped (in logged JSON).
struct Redactor: Sendable {
    private(set) var fragments: [String] = []
    private(set) var whole: Set<String> = []

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    var isEmpty: Bool { whole.isEmpty }

    mutating func add(_ secret: String) {
        guard !secret.isEmpty, whole.insert(secret).inserted, secret.count >= 4 else { return }
        var forms = [secret]
        if let encoded = secret.addingPercentEncoding(withAllowedCharacters: Self.unreserved), encoded != secret { forms.append(encoded) }
        let escaped = String(JSONValue.string(secret).jsonText.dropFirst().dropLast())
        if escaped != secret { forms.append(escaped) }
        for form in forms where !fragments.contains(form) { fragments.append(form) }
        // Longest first, so a secret holding another is replaced whole.
        fragments.sort { $0.count > $1.count }
    }

    mutating func add(json value: JSONValue) {
        switch value {
        case .string(let text): add(text)
        case .array(let items): for item in items { add(json: item) }
        case .object(let object): for item in object.values { add(json: item) }
        default: break
        }
    }

    func contains(_ text: String) -> Bool {
        if whole.contains(text) { return true }
        return fragments.contains { text.contains($0) }
    }

    func redact(_ text: String) -> String {
        if whole.isEmpty { return text }
        if whole.contains(text) { return RunState.redacted }
        var out = text
        for fragment in fragments where out.contains(fragment) {
            out = out.replacingOccurrences(of: fragment, with: RunState.redacted)
        }
        return out
    }

    func redact(_ line: ScriptLogLine) -> ScriptLogLine {
        var line = line
        line.message = redact(line.message)
        return line
    }

    func redact(_ value: JSONValue) -> JSONValue {
        if whole.isEmpty { return value }
        switch value {
        case .string(let text): return .string(redact(text))
        case .array(let items): return .array(items.map(redact))
        case .object(let object):
            var out: [String: JSONValue] = [:]
            for (key, item) in object { out[redact(key)] = redact(item) }
            return .object(out)
        default: return value
        }
    }
}

/// The headers and query parameters requests to the API base carry.
struct Attachment: Sendable {
    var headers: [(String, String)] = []
    var query: [(String, String)] = []

    var isEmpty: Bool { headers.isEmpty && query.isEmpty }

    var summary: String {
        var parts: [String] = []
        if !headers.isEmpty { parts.append("the header\(headers.count == 1 ? "" : "s") \(headers.map(\.0).joined(separator: ", "))") }
        if !query.isEmpty { parts.append("the query parameter\(query.count == 1 ? "" : "s") \(query.map(\.0).joined(separator: ", "))") }
        return parts.joined(separator: " and ")
    }

    /// API key, basic and OAuth 2.0 credentials as the connection holds them.
    static func standard(_ spec: AuthSpec, credentials: JSONValue) -> Attachment {
        let values = credentials.objectValue ?? [:]
        var attachment = Attachment()
        switch spec.type {
        case .apiKey:
            guard let key = values["api_key"]?.stringValue, !key.isEmpty else { break }
            let value = (spec.prefix ?? "") + key
            if spec.in == .query {
                attachment.query = [(spec.name ?? "api_key", value)]
            } else {
                attachment.headers = [(spec.name ?? "X-API-Key", value)]
            }
        case .basic:
            guard let username = values["username"]?.stringValue else { break }
            let password = values["password"]?.stringValue ?? ""
            attachment.headers = [("Authorization", "Basic " + Data("\(username):\(password)".utf8).base64EncodedString())]
        case .oauth2:
            guard let token = values["access_token"]?.stringValue, !token.isEmpty else { break }
            attachment.headers = [("Authorization", "Bearer \(token)")]
        case .none, .custom:
            break
        }
        return attachment
    }

    /// What custom auth's `authenticate` returned: `{headers?: {…}, query?: {…}}` of strings
    /// (numbers and booleans are written out), or a ShapeError saying what is wrong.
    static func custom(_ result: JSONValue?) -> Checked<Attachment> {
        func shape(_ message: String) -> Checked<Attachment> {
            .failed(ScriptFailure(name: "ShapeError", message: "authenticate must return {headers?: {...}, query?: {...}}: \(message)"))
        }
        guard let result, result != .null else { return .ok(Attachment()) }
        guard case .object(let object) = result else { return shape("it returned \(result.typeName)") }
        if let unknown = object.keys.filter({ $0 != "headers" && $0 != "query" }).sorted().first {
            return shape("`\(unknown)` is neither headers nor query")
        }
        var attachment = Attachment()
        for member in ["headers", "query"] {
            guard let value = object[member], value != .null else { continue }
            guard case .object(let map) = value else { return shape("`\(member)` is \(value.typeName), not an object") }
            var pairs: [(String, String)] = []
            for (name, item) in map.sorted(by: { $0.key < $1.key }) {
                switch item {
                case .string(let text): pairs.append((name, text))
                case .int(let number): pairs.append((name, String(number)))
                case .double(let number): pairs.append((name, String(number)))
                case .bool(let flag): pairs.append((name, flag ? "true" : "false"))
                default: return shape("`\(member).\(name)` is \(item.typeName), not a string")
                }
            }
            if member == "headers" { attachment.headers = pairs } else { attachment.query = pairs }
        }
        return .ok(attachment)
    }
}

/// A connector's input checked before it runs (defaults applied) and its result after.
enum ParameterValidation {
    static func inputs(_ input: JSONValue, _ parameters: [ConnectorParameter]) -> Checked<JSONValue> {
        func error(_ message: String) -> Checked<JSONValue> { .failed(ScriptFailure(name: "InputError", message: message)) }
        guard case .object(var values) = input else { return error("The input must be an object, not \(input.typeName).") }
        let names = Set(parameters.map(\.name))
        if let unknown = values.keys.filter({ !names.contains($0) }).sorted().first {
            let takes = parameters.isEmpty ? "takes no inputs" : "takes \(parameters.map(\.name).joined(separator: ", "))"
            return error("Unknown input `\(unknown)`: the connector \(takes).")
        }
        for parameter in parameters {
            let given = values[parameter.name]
            guard let value = given, value != .null else {
                if let fallback = parameter.default {
                    values[parameter.name] = fallback
                } else if parameter.required {
                    return error("The input `\(parameter.name)` is required (\(ParameterCheck.describe(parameter.type))).")
                }
                continue
            }
            guard ParameterCheck.matches(value, parameter.type) else {
                return error("The input `\(parameter.name)` must be \(ParameterCheck.describe(parameter.type)), not \(value.typeName).")
            }
        }
        return .ok(.object(values))
    }

    static func outputs(_ result: JSONValue?, _ parameters: [ConnectorParameter]) -> ScriptFailure? {
        guard !parameters.isEmpty else { return nil }
        func error(_ message: String) -> ScriptFailure { ScriptFailure(name: "ShapeError", message: message) }
        guard case .object(let values) = result ?? .null else {
            let names = parameters.map(\.name).joined(separator: ", ")
            return error("run must return an object with the outputs \(names); it returned \(result.map(\.typeName) ?? "nothing").")
        }
        for parameter in parameters {
            guard let value = values[parameter.name], value != .null else {
                if parameter.required {
                    return error("The output `\(parameter.name)` is missing; it is required (\(ParameterCheck.describe(parameter.type))).")
                }
                continue
            }
            guard ParameterCheck.matches(value, parameter.type) else {
                return error("The output `\(parameter.name)` must be \(ParameterCheck.describe(parameter.type)), not \(value.typeName).")
            }
        }
        return nil
    }
}

/// A value checked, or the failure a run reports (ScriptFailure is not an Error, so not a Result).
enum Checked<Value: Sendable>: Sendable {
    case ok(Value)
    case failed(ScriptFailure)
}
