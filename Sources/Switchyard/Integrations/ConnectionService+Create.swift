import Foundation

/// `POST /v1/workspaces/{workspace_id}/connections`: `{"integration": "int_…", "credentials": {…}}`.
struct CreateConnectionInput: JSONObjectBody {
    static let keys: Set<String> = ["integration", "credentials"]
    var integrationID: String
    var credentials: [String: JSONValue]?

    init(json object: [String: JSONValue]) throws {
        integrationID = try JSONBody.required(object, "integration", "an integration id (int_…)") { $0.stringValue }
        switch object["credentials"] {
        case nil, .null?: credentials = nil
        case .object(let given)?: credentials = given
        case let other?: throw APIError.validation("`credentials` must be an object, not \(other.typeName).", field: "credentials")
        }
    }

    init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}

/// Connecting with credentials (API key, basic, custom, none) or the client-credentials grant:
/// checked by running the auth once, and nothing stored when the check fails.
extension ConnectionService {
    struct Checked: Sendable {
        var secrets: JSONValue
        var scopes: [String]?
        var expiresAt: Date?
        var detail: String
    }

    /// Creates the workspace's connection of the integration, or replaces its credentials (then
    /// `created` is false); the credentials are checked first.
    func connect(caller: Caller, workspaceID: String, _ input: CreateConnectionInput) async throws -> (Connection, created: Bool) {
        let integrationID = input.integrationID
        let sealer = sealer
        let (integration, secrets) = try await authenticator.read(caller) { [self] tx, principal in
            _ = try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            guard ID.isValid(integrationID, prefix: "int"), let integration = try IntegrationStore.integration(tx, id: integrationID),
                let sealed = try IntegrationStore.sealedSecrets(tx, id: integrationID)
            else {
                throw APIError.validation("No integration with id \(integrationID) exists.", field: "integration")
            }
            return (integration, try sealer.openIntegrationSecrets(configuration: sealed.configuration, auth: sealed.auth))
        }
        let checked = try await check(integration, secrets, credentials: input.credentials, workspaceID: workspaceID)
        let sealed = try sealer.sealConnectionSecrets(checked.secrets)
        let now = clock.now
        let write = { @Sendable [self] () async throws -> (Connection, Bool) in
            try await authenticator.write(caller) { tx, principal in
                _ = try authorizeManage(tx, workspaceID: workspaceID, by: principal)
                let audit = principal.audit(from: caller.audit)
                if let existing = try ConnectionStore.connection(tx, integrationID: integrationID, workspaceID: workspaceID) {
                    try ConnectionStore.authorize(
                        tx,
                        id: existing.id,
                        sealedSecrets: sealed,
                        scopes: checked.scopes,
                        expiresAt: checked.expiresAt,
                        at: now
                    )
                    let connection = try ConnectionStore.connection(tx, id: existing.id) ?? existing
                    try record(tx, "connection.authorized", connection, audit: audit, detail: "\(checked.detail); the credentials were replaced")
                    return (connection, false)
                }
                let connection = Connection(
                    id: ID.make("con", at: now),
                    integrationId: integrationID,
                    integrationName: integration.name,
                    workspaceId: workspaceID,
                    status: .active,
                    authType: integration.auth.type,
                    scopes: checked.scopes,
                    expiresAt: checked.expiresAt,
                    lastAuthorizedAt: now,
                    lastRefreshedAt: nil,
                    lastError: nil,
                    createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID),
                    createdAt: now,
                    updatedAt: now
                )
                try ConnectionStore.insert(tx, connection, sealedSecrets: sealed)
                try record(tx, "connection.authorized", connection, audit: audit, detail: checked.detail)
                return (connection, true)
            }
        }
        do {
            return try await write()
        } catch StorageError.uniqueViolation {
            // A concurrent connect made the row first: replace its credentials instead.
            return try await write()
        }
    }

    /// The credentials as they will be stored, once the integration's auth accepted them.
    func check(
        _ integration: Integration,
        _ secrets: IntegrationSecrets,
        credentials: [String: JSONValue]?,
        workspaceID: String
    ) async throws -> Checked {
        let given = credentials ?? [:]
        let spec = integration.auth
        func only(_ keys: Set<String>) throws {
            if let unknown = given.keys.filter({ !keys.contains($0) }).sorted().first {
                let expected = keys.isEmpty ? "no credentials" : keys.sorted().joined(separator: ", ")
                throw APIError.validation(
                    "Unknown member `\(unknown)` of `credentials`: \(spec.type.rawValue) auth takes \(expected).",
                    field: "credentials.\(unknown)"
                )
            }
        }
        func text(_ key: String, allowEmpty: Bool = false) throws -> String {
            guard case .string(let value)? = given[key], allowEmpty || !value.isEmpty else {
                throw APIError.validation("`credentials.\(key)` is required: a non-empty string.", field: "credentials.\(key)")
            }
            return value
        }
        switch spec.type {
        case .none:
            try only([])
            return Checked(secrets: .object([:]), detail: "no credentials (auth none)")
        case .apiKey:
            try only(["api_key"])
            return Checked(secrets: .object(["api_key": .string(try text("api_key"))]), detail: "API key")
        case .basic:
            try only(["username", "password"])
            let pair = JSONValue.object(["username": .string(try text("username")), "password": .string(try text("password", allowEmpty: true))])
            return Checked(secrets: pair, detail: "basic credentials")
        case .custom:
            try await checkCustom(integration, secrets, credentials: given)
            return Checked(secrets: .object(given), detail: "custom credentials, accepted by authenticate()")
        case .oauth2:
            guard spec.grant == .clientCredentials else {
                throw APIError.validation(
                    "The integration \(integration.name) uses OAuth 2.0 authorization codes: authorize it with "
                        + "GET /v1/integrations/\(integration.id)/authorize?workspace=\(workspaceID).",
                    field: "integration"
                )
            }
            try only([])
            do throws(TokenFailure) {
                let answer = try await oauth.clientCredentials(try OAuthClient.Client(spec, secrets: secrets))
                return Checked(
                    secrets: answer.secrets(),
                    scopes: answer.scopes(requested: spec.scopes),
                    expiresAt: answer.expiresAt(from: clock.now),
                    detail: "client credentials token"
                )
            } catch {
                throw APIError.validation("No token came with the integration's client credentials: \(error.description).", field: "integration")
            }
        }
    }

    /// Runs `authenticate(config, credentials, ctx)` once, as a connector run would
    /// (`ConnectorRunner.checkCredentials`: the same ctx and the same rules for what it returns,
    /// `{headers?, query?}`); the failure, with the credentials' values redacted, is the 422.
    func checkCustom(_ integration: Integration, _ secrets: IntegrationSecrets, credentials: [String: JSONValue]) async throws {
        guard let code = integration.auth.code, !code.isEmpty else {
            throw APIError.validation("The integration's custom auth has no `code` to check the credentials with.", field: "integration")
        }
        let (failure, _) = await ConnectorRunner.checkCredentials(
            .object(credentials),
            integration: integration,
            secrets: secrets,
            scripts: scripts,
            outbound: outbound
        )
        guard let failure else { return }
        var place = ""
        if let line = failure.line { place = " (line \(line)\(failure.column.map { ", column \($0)" } ?? ""))" }
        throw APIError.validation("The credentials were not accepted: \(failure.name): \(failure.message)\(place).", field: "credentials")
    }
}
