import Foundation

/// SQL for integrations and their connectors. The auth spec is stored as JSON (camelCase keys, as
/// Swift names them); secrets are sealed by the caller and stored as bytes.
enum IntegrationStore {
    static func insert(_ tx: SQLTx, _ integration: Integration, sealedSecretConfiguration: [UInt8]?, sealedAuthSecrets: [UInt8]?) throws {
        try tx.execute(
            """
            INSERT INTO integrations (id, name, name_key, description, configuration, secret_configuration,
                                      secret_configuration_keys, auth_type, auth, auth_secrets, created_by_type,
                                      created_by_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            integration.id,
            integration.name,
            nameKey(integration.name),
            integration.description,
            integration.configuration.jsonText,
            sealedSecretConfiguration.map(SQLValue.blob) ?? .null,
            stringArrayText(integration.secretConfigurationKeys),
            integration.auth.type.rawValue,
            try authText(integration.auth),
            sealedAuthSecrets.map(SQLValue.blob) ?? .null,
            integration.createdBy?.type,
            integration.createdBy?.id,
            integration.createdAt,
            integration.updatedAt
        )
    }

    /// Writes everything an admin may change; `nil` sealed values leave the stored secrets as they are.
    static func update(_ tx: SQLTx, _ integration: Integration, sealedSecretConfiguration: [UInt8]??, sealedAuthSecrets: [UInt8]??) throws {
        try tx.execute(
            """
            UPDATE integrations SET name = ?, name_key = ?, description = ?, configuration = ?,
                secret_configuration_keys = ?, auth_type = ?, auth = ?, updated_at = ?
            WHERE id = ?
            """,
            integration.name,
            nameKey(integration.name),
            integration.description,
            integration.configuration.jsonText,
            stringArrayText(integration.secretConfigurationKeys),
            integration.auth.type.rawValue,
            try authText(integration.auth),
            integration.updatedAt,
            integration.id
        )
        if let sealed = sealedSecretConfiguration {
            try tx.execute("UPDATE integrations SET secret_configuration = ? WHERE id = ?", sealed.map(SQLValue.blob) ?? .null, integration.id)
        }
        if let sealed = sealedAuthSecrets {
            try tx.execute("UPDATE integrations SET auth_secrets = ? WHERE id = ?", sealed.map(SQLValue.blob) ?? .null, integration.id)
        }
    }

    /// The integration with its connectors, in the order they were given.
    static func integration(_ tx: SQLTx, id: String) throws -> Integration? {
        guard let row = try tx.queryOne("SELECT * FROM integrations WHERE id = ?", id) else { return nil }
        var integration = try integration(from: row)
        integration.connectors = try connectors(tx, integrationID: id)
        return integration
    }

    /// The integration alone, for a run, which needs one connector (`connector(_:integrationID:key:)`).
    static func integrationOnly(_ tx: SQLTx, id: String) throws -> Integration? {
        try tx.queryOne("SELECT * FROM integrations WHERE id = ?", id).map(integration(from:))
    }

    /// Oldest first, with their connectors; `query` matches names containing it, in any case.
    static func integrations(_ tx: SQLTx, query: String?, after: String?, limit: Int) throws -> [Integration] {
        var sql = "SELECT * FROM integrations WHERE id > ?"
        var arguments: [SQLValue] = [.text(after ?? "")]
        if let query, !query.isEmpty {
            let escaped = query.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            sql += " AND name_key LIKE ? ESCAPE '\\'"
            arguments.append(.text("%\(escaped)%"))
        }
        sql += " ORDER BY id LIMIT ?"
        arguments.append(.int(Int64(limit)))
        var found = try tx.query(sql, arguments).map(integration(from:))
        for index in found.indices { found[index].connectors = try connectors(tx, integrationID: found[index].id) }
        return found
    }

    static func exists(_ tx: SQLTx, nameKey key: String, except id: String? = nil) throws -> Bool {
        try tx.queryOne("SELECT id FROM integrations WHERE name_key = ? AND id <> ?", key, id ?? "") != nil
    }

    /// The sealed secrets as stored: (secret configuration, auth secrets).
    static func sealedSecrets(_ tx: SQLTx, id: String) throws -> (configuration: [UInt8]?, auth: [UInt8]?)? {
        guard let row = try tx.queryOne("SELECT secret_configuration, auth_secrets FROM integrations WHERE id = ?", id) else { return nil }
        return (row.optionalBlob("secret_configuration"), row.optionalBlob("auth_secrets"))
    }

    /// Deletes the integration and everything hanging from it (connectors, connections, states, runs stay as history).
    static func delete(_ tx: SQLTx, id: String) throws -> Bool {
        try tx.execute("DELETE FROM connectors WHERE integration_id = ?", id)
        try tx.execute("DELETE FROM authorize_states WHERE integration_id = ?", id)
        try tx.execute("DELETE FROM connections WHERE integration_id = ?", id)
        return try tx.execute("DELETE FROM integrations WHERE id = ?", id) > 0
    }

    // MARK: Connectors

    static func connectors(_ tx: SQLTx, integrationID: String) throws -> [Connector] {
        try tx.query("SELECT * FROM connectors WHERE integration_id = ? ORDER BY position, key", integrationID).map(connector(from:))
    }

    static func connector(_ tx: SQLTx, integrationID: String, key: String) throws -> Connector? {
        try tx.queryOne("SELECT * FROM connectors WHERE integration_id = ? AND key = ?", integrationID, key).map(connector(from:))
    }

    /// Creates or replaces; a new connector goes last.
    static func upsertConnector(_ tx: SQLTx, integrationID: String, _ connector: Connector) throws {
        try tx.execute(
            """
            INSERT INTO connectors (integration_id, key, name, description, inputs, outputs, code, position, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(position), -1) + 1 FROM connectors WHERE integration_id = ?), ?, ?)
            ON CONFLICT (integration_id, key) DO UPDATE SET name = excluded.name, description = excluded.description,
                inputs = excluded.inputs, outputs = excluded.outputs, code = excluded.code, updated_at = excluded.updated_at
            """,
            integrationID,
            connector.key,
            connector.name,
            connector.description,
            try parametersText(connector.inputs),
            try parametersText(connector.outputs),
            connector.code,
            integrationID,
            connector.createdAt,
            connector.updatedAt
        )
    }

    static func deleteConnector(_ tx: SQLTx, integrationID: String, key: String) throws -> Bool {
        try tx.execute("DELETE FROM connectors WHERE integration_id = ? AND key = ?", integrationID, key) > 0
    }

    // MARK: Rows

    static func nameKey(_ name: String) -> String { name.lowercased() }

    static func integration(from row: SQLRow) throws -> Integration {
        Integration(
            id: try row.string("id"),
            name: try row.string("name"),
            description: try row.string("description"),
            configuration: try JSONValue.parse(text: try row.string("configuration")),
            secretConfigurationKeys: try AppStore.stringArray(try row.string("secret_configuration_keys")),
            auth: try authSpec(fromText: try row.string("auth")),
            connectors: [],
            createdBy: row.optionalString("created_by_type").map { Record.CreatedBy(type: $0, id: row.optionalString("created_by_id")) },
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }

    static func connector(from row: SQLRow) throws -> Connector {
        Connector(
            key: try row.string("key"),
            name: try row.string("name"),
            description: try row.string("description"),
            inputs: try parameters(fromText: try row.string("inputs")),
            outputs: try parameters(fromText: try row.string("outputs")),
            code: try row.string("code"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }

    static func authText(_ auth: AuthSpec) throws -> String {
        String(decoding: try JSONEncoder().encode(auth), as: UTF8.self)
    }

    static func parametersText(_ parameters: [ConnectorParameter]) throws -> String {
        String(decoding: try JSONEncoder().encode(parameters), as: UTF8.self)
    }

    static func stringArrayText(_ values: [String]) -> String { JSONValue.array(values.map(JSONValue.string)).jsonText }

    // MARK: Reading the JSON columns

    /// The stored auth spec (as `authText` wrote it), read through our own JSON parser: every run
    /// reads one, and JSONDecoder cost more than the rest of the row. Anything else falls back to it.
    static func authSpec(fromText text: String) throws -> AuthSpec {
        guard case .object(let object) = try JSONValue.parse(text: text), let kind = object["type"]?.stringValue.flatMap(AuthSpec.Kind.init)
        else { return try JSONDecoder().decode(AuthSpec.self, from: Data(text.utf8)) }
        func string(_ key: String) -> String? { object[key]?.stringValue }
        func flag(_ key: String) -> Bool? {
            if case .bool(let value) = object[key] { return value }
            return nil
        }
        var spec = AuthSpec(type: kind)
        spec.name = string("name")
        spec.in = string("in").flatMap(AuthSpec.KeyLocation.init)
        spec.prefix = string("prefix")
        spec.code = string("code")
        spec.authorizationUrl = string("authorizationUrl")
        spec.tokenUrl = string("tokenUrl")
        spec.queryParams = object["queryParams"]
        if case .array(let items) = object["scopes"] { spec.scopes = items.compactMap(\.stringValue) }
        spec.scopeSeparator = string("scopeSeparator")
        spec.clientId = string("clientId")
        spec.clientSecretSet = flag("clientSecretSet")
        spec.pkce = flag("pkce")
        spec.tokenAuthMethod = string("tokenAuthMethod").flatMap(AuthSpec.TokenAuthMethod.init)
        spec.grant = string("grant").flatMap(AuthSpec.Grant.init)
        spec.callbackCode = string("callbackCode")
        spec.authenticationCode = string("authenticationCode")
        return spec
    }

    /// A connector's stored inputs or outputs (as `parametersText` wrote them).
    static func parameters(fromText text: String) throws -> [ConnectorParameter] {
        guard case .array(let items) = try JSONValue.parse(text: text) else { return [] }
        var parameters: [ConnectorParameter] = []
        parameters.reserveCapacity(items.count)
        for item in items {
            guard case .object(let object) = item, let name = object["name"]?.stringValue,
                let type = object["type"]?.stringValue.flatMap(ConnectorParameter.Kind.init)
            else { return try JSONDecoder().decode([ConnectorParameter].self, from: Data(text.utf8)) }
            var required = false
            if case .bool(let value) = object["required"] { required = value }
            parameters.append(
                ConnectorParameter(
                    name: name,
                    type: type,
                    required: required,
                    description: object["description"]?.stringValue ?? "",
                    default: object["default"].flatMap { $0 == .null ? nil : $0 }
                )
            )
        }
        return parameters
    }
}
