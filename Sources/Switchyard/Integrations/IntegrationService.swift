import Foundation

/// Integrations as admins build them: auth spec, configuration and secret configuration (sealed,
/// never shown), connectors; every URL checked by the outbound guard and all code compiled when
/// saved. Organization-wide: owners, admins and integration admins manage them with an
/// unrestricted live credential, members read them, developers get 403.
public final class IntegrationService: Sendable {
    let database: Database
    let clock: any WallClock
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let activity: ActivityService
    let sealer: Sealer
    let outbound: OutboundHTTP
    let scripts: any ScriptRunner
    let runner: ConnectorRunner

    public init(
        database: Database,
        clock: any WallClock,
        authenticator: Authenticator,
        workspaces: WorkspaceService,
        activity: ActivityService,
        sealer: Sealer,
        outbound: OutboundHTTP,
        scripts: any ScriptRunner,
        runner: ConnectorRunner
    ) {
        self.database = database
        self.clock = clock
        self.authenticator = authenticator
        self.workspaces = workspaces
        self.activity = activity
        self.sealer = sealer
        self.outbound = outbound
        self.scripts = scripts
        self.runner = runner
    }

    static func requireManager(_ principal: Principal) throws {
        try principal.require(Role.integrationManagers, to: "manage integrations")
        try principal.requireOrganizationWide(to: "manage integrations")
    }

    static func requireReader(_ principal: Principal) throws {
        try principal.require(Role.readers, to: "read integrations")
        try principal.requireOrganizationWide(to: "read integrations")
    }

    // MARK: Checks at save

    /// Each URL as the outbound guard judges it (names resolved): `blocked-target` for an address
    /// the operator did not allow, `validation-failed` for one that is not an http(s) URL.
    func checkURLs(_ urls: [(field: String, url: String)]) async throws {
        for (field, url) in urls {
            if let problem = await outbound.targetGuard.validateResolving(url: url) {
                throw APIError(
                    problem.isBlocked ? .blockedTarget : .validationFailed,
                    detail: "`\(field)` \(problem)\(problem.isBlocked ? "; the operator allows networks with --allowed-target-networks" : ".")",
                    field: field
                )
            }
        }
    }

    /// Compiles each script: a syntax error or a missing export is a 422 naming the field, with
    /// the line and column.
    func checkScripts(_ scripts: [(field: String, code: String, entries: [String])]) async throws {
        for (field, code, entries) in scripts {
            if let problem = await self.scripts.check(code, entries: entries) {
                var detail = "`\(field)` does not compile: \(problem.message)"
                if let line = problem.line { detail += " (line \(line)\(problem.column.map { ", column \($0)" } ?? ""))" }
                throw APIError.validation(detail + ".", field: field)
            }
        }
    }

    /// What a creation checks before its write: URLs, then code.
    func prepare(_ input: CreateIntegrationInput) async throws {
        var urls = input.auth.urls
        if let base = Integration.baseURL(of: input.configuration) { urls.insert(("configuration.baseUrl", base), at: 0) }
        if input.auth.spec.type == .oauth2, input.auth.spec.grant == .clientCredentials, (input.auth.clientSecret ?? nil) == nil {
            throw APIError.validation("`auth.client_secret` is required for the client_credentials grant.", field: "auth.client_secret")
        }
        try await checkURLs(urls)
        try await checkScripts(input.auth.scripts + input.connectors.map { ("\($0.path)code", $0.code, ["run"]) })
    }

    // MARK: Integrations

    /// Creates the integration and its connectors in the caller's transaction (`prepare` first).
    func create(_ tx: SQLTx, _ input: CreateIntegrationInput, by principal: Principal, audit: AuditContext) throws -> Integration {
        try Self.requireManager(principal)
        let now = clock.now
        var auth = input.auth.spec
        let clientSecret = input.auth.clientSecret ?? nil
        if auth.type == .oauth2 { auth.clientSecretSet = clientSecret != nil }
        let integration = Integration(
            id: ID.make("int", at: now),
            name: input.name,
            description: input.description,
            configuration: input.configuration,
            secretConfigurationKeys: input.secretConfiguration.keys.sorted(),
            auth: auth,
            connectors: input.connectors.map { $0.connector(at: now) },
            createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID),
            createdAt: now,
            updatedAt: now
        )
        if try IntegrationStore.exists(tx, nameKey: IntegrationStore.nameKey(integration.name)) {
            throw APIError.conflict("An integration named \(integration.name) exists already; integration names are unique.", field: "name")
        }
        try IntegrationStore.insert(
            tx,
            integration,
            sealedSecretConfiguration: try sealer.sealSecretConfiguration(input.secretConfiguration),
            sealedAuthSecrets: try sealer.sealAuthSecrets(clientSecret: clientSecret)
        )
        for connector in integration.connectors { try IntegrationStore.upsertConnector(tx, integrationID: integration.id, connector) }
        let count = integration.connectors.count
        try record(
            tx,
            principal.audit(from: audit),
            "integration.created",
            integration,
            detail: "auth \(auth.type.rawValue), \(count) connector\(count == 1 ? "" : "s")"
        )
        return integration
    }

    public func list(caller: Caller, query: String?, after: String?, limit: Int) async throws -> [Integration] {
        if let after, !ID.isValid(after, prefix: "int") {
            throw APIError.validation("`after` must be an integration id (the `next_after` of the previous page).", field: "after")
        }
        return try await authenticator.read(caller) { tx, principal in
            try Self.requireReader(principal)
            return try IntegrationStore.integrations(tx, query: query, after: after, limit: limit)
        }
    }

    public func integration(caller: Caller, id: String) async throws -> Integration {
        try await authenticator.read(caller) { tx, principal in
            try Self.requireReader(principal)
            return try Self.find(tx, id)
        }
    }

    static func find(_ tx: SQLTx, _ id: String, connectors: Bool = true) throws -> Integration {
        guard ID.isValid(id, prefix: "int"),
            let integration = try connectors ? IntegrationStore.integration(tx, id: id) : IntegrationStore.integrationOnly(tx, id: id)
        else { throw APIError.notFound("integration", id) }
        return integration
    }

    public func update(caller: Caller, id: String, _ input: UpdateIntegrationInput) async throws -> Integration {
        try Self.requireManager(try await authenticator.principal(caller))
        var urls: [(String, String)] = input.auth?.urls ?? []
        if let configuration = input.configuration, let base = Integration.baseURL(of: configuration) {
            urls.insert(("configuration.baseUrl", base), at: 0)
        }
        try await checkURLs(urls)
        try await checkScripts(input.auth?.scripts ?? [])
        let now = clock.now
        do {
            return try await write(caller: caller, id: id, input, now: now)
        } catch StorageError.uniqueViolation {
            // A concurrent rename took the name between the check and the write.
            throw APIError.conflict("An integration named \(input.name ?? "") exists already; integration names are unique.", field: "name")
        }
    }

    private func write(caller: Caller, id: String, _ input: UpdateIntegrationInput, now: Date) async throws -> Integration {
        try await authenticator.write(caller) { [self] tx, principal in
            try Self.requireManager(principal)
            var integration = try Self.find(tx, id)
            var changed: [String] = []
            if let name = input.name, name != integration.name {
                if try IntegrationStore.exists(tx, nameKey: IntegrationStore.nameKey(name), except: id) {
                    throw APIError.conflict("An integration named \(name) exists already; integration names are unique.", field: "name")
                }
                integration.name = name
                changed.append("name")
            }
            if let description = input.description, description != integration.description {
                integration.description = description
                changed.append("description")
            }
            if let configuration = input.configuration, configuration != integration.configuration {
                integration.configuration = configuration
                changed.append("configuration")
            }
            var sealedConfiguration: [UInt8]??
            if let secrets = input.secretConfiguration {
                sealedConfiguration = .some(try sealer.sealSecretConfiguration(secrets))
                integration.secretConfigurationKeys = secrets.keys.sorted()
                changed.append("secret_configuration")
            }
            var sealedAuth: [UInt8]??
            if let auth = input.auth {
                var spec = auth.spec
                let wasOAuth = integration.auth.type == .oauth2
                if spec.type == .oauth2 {
                    switch auth.clientSecret {
                    case .none:
                        // Kept when the type stays oauth2; nothing to keep otherwise.
                        spec.clientSecretSet = wasOAuth ? (integration.auth.clientSecretSet ?? false) : false
                    case .some(let secret):
                        sealedAuth = .some(try sealer.sealAuthSecrets(clientSecret: secret))
                        spec.clientSecretSet = secret != nil
                    }
                    if spec.grant == .clientCredentials, spec.clientSecretSet != true {
                        throw APIError.validation("`auth.client_secret` is required for the client_credentials grant.", field: "auth.client_secret")
                    }
                } else if wasOAuth {
                    sealedAuth = .some(nil)
                }
                if spec != integration.auth || sealedAuth != nil {
                    integration.auth = spec
                    changed.append("auth")
                }
            }
            try IntegrationInput.checkDisjoint(
                integration.configuration,
                Dictionary(uniqueKeysWithValues: integration.secretConfigurationKeys.map { ($0, "") })
            )
            guard !changed.isEmpty else { return integration }
            integration.updatedAt = now
            try IntegrationStore.update(tx, integration, sealedSecretConfiguration: sealedConfiguration, sealedAuthSecrets: sealedAuth)
            try record(tx, principal.audit(from: caller.audit), "integration.updated", integration, detail: changed.joined(separator: ", "))
            return integration
        }
    }

    /// Deletes the integration with its connectors, its connections (their credentials and
    /// tokens) and Authorize flows under way; its runs stay as history.
    public func delete(caller: Caller, id: String) async throws {
        try await authenticator.write(caller) { [self] tx, principal in
            try Self.requireManager(principal)
            let integration = try Self.find(tx, id, connectors: false)
            _ = try IntegrationStore.delete(tx, id: id)
            try record(tx, principal.audit(from: caller.audit), "integration.deleted", integration)
        }
    }

    /// An activity entry about `integration`; `detail` never holds a secret (names of fields only).
    func record(_ tx: SQLTx, _ actor: AuditContext, _ action: String, _ integration: Integration, detail: String? = nil) throws {
        try activity.record(
            tx,
            actor,
            action: action,
            targetType: "integration",
            targetID: integration.id,
            targetLabel: integration.name,
            detail: detail
        )
    }
}

extension Integration {
    /// `configuration.baseUrl` of a configuration object.
    static func baseURL(of configuration: JSONValue) -> String? {
        if case .object(let values) = configuration, case .string(let url) = values["baseUrl"], !url.isEmpty { return url }
        return nil
    }
}
