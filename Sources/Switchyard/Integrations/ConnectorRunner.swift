import Foundation
import Metrics

/// Runs an integration's code for a test or a connection: checks the input against the
/// connector's `inputs`, gives the script `ctx` = {config, auth, input} (plus `http.request` and
/// `sleep`), runs custom auth first when the integration has it, answers the script's requests
/// (ConnectorHost: the outbound guard, credentials only to `configuration.baseUrl`, one refresh on
/// a 401), checks the result against `outputs`, and answers the run with every secret redacted.
/// Never throws: whatever happened is in the run.
public struct ConnectorRunner: Sendable {
    public struct Settings: Sendable {
        /// Seconds a script (custom auth, a connector) may take, awaits included.
        public var timeLimit: TimeInterval = 10
        /// Seconds for each `ctx.http.request`, within the script's own limit.
        public var requestTimeout: TimeInterval = 10
        /// Bytes of an answer a script may read; a longer one rejects its request.
        public var maximumResponseBytes = 1 << 20
        /// `ctx.http.request` calls per script run.
        public var maximumHostCalls = 50

        public init() {}
    }

    /// What a run runs: the authentication alone, or a connector.
    public enum Target: Sendable {
        case auth
        case connector(Connector)

        public var name: String {
            switch self {
            case .auth: "auth"
            case .connector(let connector): connector.key
            }
        }
    }

    public struct Job: Sendable {
        public var kind: ScriptRun.Kind
        /// Connectors need not be loaded: the target carries its own.
        public var integration: Integration
        public var secrets: IntegrationSecrets
        public var target: Target
        public var input: JSONValue
        public var workspaceID: String?
        /// The connection whose credentials the run uses (opened through `ConnectionService`).
        public var connectionID: String?
        /// The connection as read with the request, shown when its credentials cannot be opened.
        public var connection: Connection?
        public var createdBy: Record.CreatedBy

        public init(
            kind: ScriptRun.Kind,
            integration: Integration,
            secrets: IntegrationSecrets,
            target: Target,
            input: JSONValue,
            workspaceID: String?,
            connectionID: String?,
            connection: Connection? = nil,
            createdBy: Record.CreatedBy
        ) {
            self.kind = kind
            self.integration = integration
            self.secrets = secrets
            self.target = target
            self.input = input
            self.workspaceID = workspaceID
            self.connectionID = connectionID
            self.connection = connection
            self.createdBy = createdBy
        }
    }

    let scripts: any ScriptRunner
    let outbound: OutboundHTTP
    let connections: ConnectionService
    let clock: any WallClock
    let settings: Settings

    public init(
        scripts: any ScriptRunner,
        outbound: OutboundHTTP,
        connections: ConnectionService,
        clock: any WallClock,
        settings: Settings = Settings()
    ) {
        self.scripts = scripts
        self.outbound = outbound
        self.connections = connections
        self.clock = clock
        self.settings = settings
    }

    public func run(_ job: Job) async -> ScriptRun {
        let started = ContinuousClock.now
        let state = RunState(secrets: job.secrets)
        var run = ScriptRun(
            id: ID.make("run", at: clock.now),
            kind: job.kind,
            integrationId: job.integration.id,
            connectionId: job.connectionID,
            workspaceId: job.workspaceID,
            target: job.target.name,
            status: .succeeded,
            input: job.input,
            output: nil,
            logs: [],
            authLogs: [],
            httpCalls: [],
            error: nil,
            durationMs: 0,
            connection: nil,
            createdBy: job.createdBy,
            createdAt: clock.now
        )
        await execute(job, state: state, run: &run)
        let seconds = Self.seconds(since: started)
        run.durationMs = (seconds * 1_000_000).rounded() / 1000
        state.finish(&run)
        Counter(label: "switchyard_connector_runs_total", dimensions: [("status", run.status.rawValue)]).increment()
        Timer(label: "switchyard_connector_run_duration_seconds").recordSeconds(seconds)
        return run
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private func execute(_ job: Job, state: RunState, run: inout ScriptRun) async {
        let spec = job.integration.auth
        // The input first: a bad one runs nothing.
        var input = JSONValue.object([:])
        if case .connector(let connector) = job.target {
            switch ParameterValidation.inputs(job.input, connector.inputs) {
            case .ok(let checked): input = checked
            case .failed(let failure): return fail(&run, failure)
            }
        }

        // The credentials, as the connection holds them.
        var credentials = JSONValue.object([:])
        var connection: Connection?
        if let connectionID = job.connectionID {
            do {
                let opened = try await connections.credentials(connectionID: connectionID)
                connection = opened.connection
                run.connection = ScriptRun.ConnectionSummary(
                    id: opened.connection.id,
                    status: opened.connection.status,
                    lastAuthorizedAt: opened.connection.lastAuthorizedAt
                )
                state.learn(credentials: opened.secrets, type: spec.type)
                guard opened.connection.status == .active else {
                    let why =
                        opened.connection.status == .pendingAuthorization
                        ? "is not authorized yet: authorize it first" : "needs to be authorized again"
                    return fail(&run, ScriptFailure(name: "ConnectionError", message: "The connection \(connectionID) \(why)."))
                }
                credentials = opened.secrets
                state.note("Using the connection \(connectionID) (\(Self.describe(opened.connection))).")
            } catch {
                run.connection = job.connection.map {
                    ScriptRun.ConnectionSummary(id: $0.id, status: $0.status, lastAuthorizedAt: $0.lastAuthorizedAt)
                }
                return fail(
                    &run,
                    ScriptFailure(name: "ConnectionError", message: "The connection \(connectionID) cannot be used: \(Self.describe(error))")
                )
            }
        } else if spec.type != .none {
            let where_ = job.workspaceID.map { "in the workspace \($0)" } ?? "(no workspace given)"
            state.note("No connection of this integration \(where_): requests go out without credentials.")
        }

        let config = Self.config(job.integration.configuration, job.secrets)
        let scriptAuth = Self.scriptAuth(spec, credentials: credentials, connection: connection)
        let base = job.integration.baseURL
        var attachment = Attachment()

        if spec.type == .custom, let code = spec.code {
            let step = await Self.authenticate(
                code: code,
                config: config,
                credentials: credentials,
                scriptAuth: scriptAuth,
                scripts: scripts,
                host: ConnectorHost(outbound: outbound, settings: settings, connections: nil, state: state, baseURL: nil, connectionID: nil),
                settings: settings,
                state: state
            )
            switch step {
            case .failed(let status, let failure, let result):
                if case .auth = job.target { run.output = result }
                run.status = status
                run.error = failure
                return
            case .attached(let returned, let result):
                attachment = returned
                if case .auth = job.target { run.output = result }
            }
        } else {
            attachment = Attachment.standard(spec, credentials: credentials)
            state.learn(attachment: attachment)
        }
        state.attach(attachment)
        if !attachment.isEmpty {
            state.note(
                base.map { "Requests to \($0) carry \(attachment.summary)." }
                    ?? "The configuration has no baseUrl, so no request carries the credentials; the code reads them from ctx.auth."
            )
        }

        guard case .connector(let connector) = job.target else {
            if spec.type != .custom { run.output = Self.authOutput(spec, attachment: attachment, connection: connection) }
            return
        }
        let host = ConnectorHost(
            outbound: outbound,
            settings: settings,
            connections: connections,
            state: state,
            baseURL: base,
            connectionID: spec.type == .oauth2 ? connection?.id : nil
        )
        let outcome = await scripts.run(
            ScriptRequest(
                source: connector.code,
                entry: "run",
                arguments: [.json(input), .context(.object(["config": config, "auth": scriptAuth, "input": input]))],
                timeLimit: settings.timeLimit,
                maximumHostCalls: settings.maximumHostCalls
            ),
            host: host
        )
        run.logs = outcome.logs
        run.status = outcome.status
        run.output = outcome.result
        run.error = outcome.failure
        if outcome.status == .succeeded, let failure = ParameterValidation.outputs(outcome.result, connector.outputs) {
            fail(&run, failure)
        }
    }

    private func fail(_ run: inout ScriptRun, _ failure: ScriptFailure) {
        run.status = .failed
        run.error = failure
    }

    /// `ctx.config`: the configuration with the secret configuration's values.
    static func config(_ configuration: JSONValue, _ secrets: IntegrationSecrets) -> JSONValue {
        var values = configuration.objectValue ?? [:]
        for (key, value) in secrets.secretConfiguration { values[key] = .string(value) }
        return .object(values)
    }

    /// `ctx.auth`: the credentials as the code may use them for anything the host does not sign.
    /// OAuth 2.0: the access token, never the refresh token.
    static func scriptAuth(_ spec: AuthSpec, credentials: JSONValue, connection: Connection?) -> JSONValue {
        guard case .object(let values) = credentials else { return .object([:]) }
        switch spec.type {
        case .none: return .object([:])
        case .apiKey: return .object(values.filter { $0.key == "api_key" })
        case .basic: return .object(values.filter { $0.key == "username" || $0.key == "password" })
        case .custom: return credentials
        case .oauth2:
            var auth = values.filter { ["access_token", "token_type", "scope"].contains($0.key) }
            if auth.isEmpty { return .object([:]) }
            if auth["token_type"] == nil { auth["token_type"] = .string("Bearer") }
            if let expires = connection?.expiresAt { auth["expires_at"] = .string(RFC3339.format(expires)) }
            return .object(auth)
        }
    }

    /// What testing the auth of a type without code shows: what requests carry.
    static func authOutput(_ spec: AuthSpec, attachment: Attachment, connection: Connection?) -> JSONValue {
        var output: [String: JSONValue] = [
            "type": .string(spec.type.rawValue),
            "headers": .object(Dictionary(attachment.headers.map { ($0.0, JSONValue.string(RunState.redacted)) }, uniquingKeysWith: { a, _ in a })),
            "query": .object(Dictionary(attachment.query.map { ($0.0, JSONValue.string(RunState.redacted)) }, uniquingKeysWith: { a, _ in a })),
        ]
        if spec.type == .oauth2, let connection {
            output["expires_at"] = connection.expiresAt.map { .string(RFC3339.format($0)) } ?? .null
            output["scopes"] = connection.scopes.map { .array($0.map(JSONValue.string)) } ?? .null
        }
        return .object(output)
    }

    static func describe(_ connection: Connection) -> String {
        var words = connection.status.rawValue
        if let at = connection.lastAuthorizedAt { words += ", last authorized at \(RFC3339.format(at))" }
        if let expires = connection.expiresAt { words += ", token expires at \(RFC3339.format(expires))" }
        return words
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? APIError { return error.detail }
        return String(describing: error)
    }
}
