import Foundation

extension ConnectorRunner {
    /// What custom auth's `authenticate` gave: what requests to the API base carry, or why not.
    enum AuthStep: Sendable {
        case attached(Attachment, result: JSONValue?)
        case failed(ScriptStatus, ScriptFailure, result: JSONValue?)
    }

    /// Runs custom auth's `authenticate(config, credentials, ctx)` once; its log lines go to the
    /// run's auth logs, and what it returns is learnt as secret.
    static func authenticate(
        code: String,
        config: JSONValue,
        credentials: JSONValue,
        scriptAuth: JSONValue,
        scripts: any ScriptRunner,
        host: ConnectorHost,
        settings: Settings,
        state: RunState
    ) async -> AuthStep {
        let outcome = await scripts.run(
            ScriptRequest(
                source: code,
                entry: "authenticate",
                arguments: [.json(config), .json(credentials), .context(.object(["config": config, "auth": scriptAuth]))],
                timeLimit: settings.timeLimit,
                maximumHostCalls: settings.maximumHostCalls
            ),
            host: host
        )
        state.authLogs(outcome.logs)
        guard outcome.status == .succeeded else {
            var failure = outcome.failure ?? ScriptFailure(name: "Error", message: "authenticate did not finish")
            failure.message = "authenticate failed: \(failure.message)"
            return .failed(outcome.status, failure, result: nil)
        }
        switch Attachment.custom(outcome.result) {
        case .failed(let failure): return .failed(.failed, failure, result: outcome.result)
        case .ok(let attachment):
            state.learn(attachment: attachment)
            return .attached(attachment, result: outcome.result)
        }
    }

    /// Whether `credentials` authenticate with the integration's auth spec, for a connection about
    /// to be stored (`POST /v1/workspaces/{ws}/connections`): `api_key` needs an `api_key`,
    /// `basic` a `username` and a `password` (strings); `custom` runs `authenticate` once and
    /// checks what it returns. Answers nil when they do, or the failure (secrets redacted), with
    /// the authentication's log lines either way. For helper "connections".
    public static func checkCredentials(
        _ credentials: JSONValue,
        integration: Integration,
        secrets: IntegrationSecrets,
        scripts: any ScriptRunner,
        outbound: OutboundHTTP,
        settings: Settings = Settings()
    ) async -> (failure: ScriptFailure?, logs: [ScriptLogLine]) {
        func missing(_ message: String) -> (ScriptFailure?, [ScriptLogLine]) { (ScriptFailure(name: "CredentialsError", message: message), []) }
        guard case .object(let values) = credentials else { return missing("The credentials must be an object.") }
        func text(_ key: String) -> String? { values[key]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        let spec = integration.auth
        switch spec.type {
        case .none: return (nil, [])
        case .oauth2: return missing("An OAuth 2.0 integration is authorized through GET /v1/integrations/{id}/authorize.")
        case .apiKey: return text("api_key") == nil ? missing("`api_key` is required: the key, a non-empty string.") : (nil, [])
        case .basic:
            if text("username") == nil { return missing("`username` is required: a non-empty string.") }
            return values["password"]?.stringValue == nil ? missing("`password` is required: a string.") : (nil, [])
        case .custom:
            guard let code = spec.code else { return missing("The integration's custom auth has no code.") }
            let state = RunState(secrets: secrets)
            state.learn(credentials: credentials, type: .custom)
            let config = Self.config(integration.configuration, secrets)
            let step = await authenticate(
                code: code,
                config: config,
                credentials: credentials,
                scriptAuth: credentials,
                scripts: scripts,
                host: ConnectorHost(outbound: outbound, settings: settings, connections: nil, state: state, baseURL: nil, connectionID: nil),
                settings: settings,
                state: state
            )
            var failure: ScriptFailure?
            if case .failed(_, let failed, _) = step { failure = failed }
            return state.redacted(failure: failure)
        }
    }
}
