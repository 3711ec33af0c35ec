import Foundation

/// One run of an integration's code, kept as history: a test run (kind `test`, from the test
/// panel) or a connector run on a connection (kind `run`). Everything in it is already redacted:
/// no secret value (credentials, tokens, secret configuration) is stored.
public struct ScriptRun: Sendable {
    public enum Kind: String, APIEnum, Sendable {
        case test, run
    }

    /// One `ctx.http.request` the code made, as it went out (secrets shown as `[redacted]`).
    public struct HTTPCall: Sendable, Equatable {
        public var method: String
        public var url: String
        /// Header names as sent, with secret values `[redacted]`.
        public var requestHeaders: [(String, String)]
        public var status: Int?
        public var error: String?
        public var durationMs: Double

        public static func == (a: HTTPCall, b: HTTPCall) -> Bool {
            a.method == b.method && a.url == b.url && a.status == b.status && a.error == b.error && a.durationMs == b.durationMs
                && a.requestHeaders.map { "\($0.0)\u{1F}\($0.1)" } == b.requestHeaders.map { "\($0.0)\u{1F}\($0.1)" }
        }
    }

    /// The connection the run used, as it stood.
    public struct ConnectionSummary: Sendable, Equatable {
        public var id: String
        public var status: Connection.Status
        public var lastAuthorizedAt: Date?
    }

    public var id: String
    public var kind: Kind
    public var integrationId: String
    public var connectionId: String?
    public var workspaceId: String?
    /// `auth` or a connector key.
    public var target: String
    public var status: ScriptStatus
    public var input: JSONValue
    public var output: JSONValue?
    /// The connector's console lines.
    public var logs: [ScriptLogLine]
    /// The authentication's: custom auth's console lines and notes about the credentials used.
    public var authLogs: [ScriptLogLine]
    public var httpCalls: [HTTPCall]
    public var error: ScriptFailure?
    public var durationMs: Double
    public var connection: ConnectionSummary?
    public var createdBy: Record.CreatedBy
    public var createdAt: Date

    /// The answer of the API (`Run` in docs/openapi.yaml).
    public var json: JSONValue {
        .object([
            "id": .string(id),
            "kind": .string(kind.rawValue),
            "integration_id": .string(integrationId),
            "connection_id": connectionId.map(JSONValue.string) ?? .null,
            "workspace_id": workspaceId.map(JSONValue.string) ?? .null,
            "target": .string(target),
            "status": .string(status.rawValue),
            "input": input,
            "output": output ?? .null,
            "logs": Self.json(logs),
            "auth_logs": Self.json(authLogs),
            "http_calls": Self.json(httpCalls),
            "error": error.map(Self.json) ?? .null,
            "duration_ms": .double(durationMs),
            "connection": connection.map(Self.json) ?? .null,
            "created_by": .object(["type": .string(createdBy.type), "id": createdBy.id.map(JSONValue.string) ?? .null]),
            "created_at": .string(RFC3339.format(createdAt)),
        ])
    }

    static func json(_ logs: [ScriptLogLine]) -> JSONValue {
        .array(
            logs.map { line in
                .object(["level": .string(line.level), "message": .string(line.message), "at": .string(RFC3339.format(line.at))])
            }
        )
    }

    static func json(_ calls: [HTTPCall]) -> JSONValue {
        .array(
            calls.map { call in
                var headers: [String: JSONValue] = [:]
                for (name, value) in call.requestHeaders {
                    // Repeated headers are shown once, joined as HTTP would fold them.
                    if case .string(let earlier) = headers[name] {
                        headers[name] = .string("\(earlier), \(value)")
                    } else {
                        headers[name] = .string(value)
                    }
                }
                return .object([
                    "method": .string(call.method),
                    "url": .string(call.url),
                    "request_headers": .object(headers),
                    "status": call.status.map { .int(Int64($0)) } ?? .null,
                    "error": call.error.map(JSONValue.string) ?? .null,
                    "duration_ms": .double(call.durationMs),
                ])
            }
        )
    }

    static func json(_ failure: ScriptFailure) -> JSONValue {
        .object([
            "name": .string(failure.name),
            "message": .string(failure.message),
            "line": failure.line.map { .int(Int64($0)) } ?? .null,
            "column": failure.column.map { .int(Int64($0)) } ?? .null,
        ])
    }

    static func json(_ connection: ConnectionSummary) -> JSONValue {
        .object([
            "id": .string(connection.id),
            "status": .string(connection.status.rawValue),
            "last_authorized_at": connection.lastAuthorizedAt.map { .string(RFC3339.format($0)) } ?? .null,
        ])
    }
}

extension ScriptRun {
    /// The stored columns back into lines, calls and the error (ScriptRunStore).
    static func logs(from value: JSONValue) -> [ScriptLogLine] {
        guard case .array(let items) = value else { return [] }
        return items.compactMap { item in
            guard case .object(let line) = item, let message = line["message"]?.stringValue else { return nil }
            return ScriptLogLine(
                level: line["level"]?.stringValue ?? "log",
                message: message,
                at: line["at"]?.stringValue.flatMap(RFC3339.parse) ?? Date(millisecondsSince1970: 0)
            )
        }
    }

    static func calls(from value: JSONValue) -> [HTTPCall] {
        guard case .array(let items) = value else { return [] }
        return items.compactMap { item in
            guard case .object(let call) = item else { return nil }
            var headers: [(String, String)] = []
            if case .object(let map) = call["request_headers"] {
                headers = map.sorted { $0.key < $1.key }.map { ($0.key, $0.value.stringValue ?? "") }
            }
            return HTTPCall(
                method: call["method"]?.stringValue ?? "GET",
                url: call["url"]?.stringValue ?? "",
                requestHeaders: headers,
                status: integer(call["status"]).map(Int.init),
                error: call["error"]?.stringValue,
                durationMs: number(call["duration_ms"]) ?? 0
            )
        }
    }

    static func failure(from value: JSONValue) -> ScriptFailure? {
        guard case .object(let error) = value, let name = error["name"]?.stringValue else { return nil }
        return ScriptFailure(
            name: name,
            message: error["message"]?.stringValue ?? "",
            line: integer(error["line"]).map(Int.init),
            column: integer(error["column"]).map(Int.init)
        )
    }
}

extension ScriptRun {
    /// A whole number as JSON holds one (an integral double too).
    static func integer(_ value: JSONValue?) -> Int64? {
        switch value {
        case .int(let number): number
        case .double(let number) where number.rounded() == number && abs(number) < 9e15: Int64(number)
        default: nil
        }
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }
}
