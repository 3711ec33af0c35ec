import Foundation

/// Export and import of integrations as YAML documents (IntegrationDocument.swift), for the API
/// and the command line alike.
extension IntegrationService {
    /// Members and readers may export: the document holds no secret.
    public func exportDocument(caller: Caller, id: String) async throws -> (name: String, yaml: String) {
        let integration = try await integration(caller: caller, id: id)
        return (integration.name, try IntegrationDocument.yaml(integration, exportedAt: clock.now))
    }

    /// Creates the integration a document describes, checked exactly as `POST /v1/integrations`.
    public func importDocument(caller: Caller, yaml: String) async throws -> Integration {
        try Self.requireManager(try await authenticator.principal(caller))
        let input = try Self.creationInput(yaml: yaml)
        try await prepare(input)
        return try await authenticator.write(caller) { [self] tx, principal in
            try create(tx, input, by: principal, audit: caller.audit)
        }
    }

    /// The command line's export: no caller, the database read directly.
    public func exportDocument(id: String) async throws -> String {
        let integration = try await database.read { tx in try Self.find(tx, id) }
        return try IntegrationDocument.yaml(integration, exportedAt: clock.now)
    }

    /// The command line's import, acting as `user` (recorded as theirs in the activity log).
    public func importDocument(yaml: String, as user: User) async throws -> Integration {
        let input = try Self.creationInput(yaml: yaml)
        try await prepare(input)
        let principal = Principal.session(user)
        return try await database.write { [self] tx in
            try create(tx, input, by: principal, audit: .system("command line"))
        }
    }

    static func creationInput(yaml: String) throws -> CreateIntegrationInput {
        guard case .object(let body) = try IntegrationDocument.creationBody(fromYAML: yaml) else {
            throw APIError.validation("The document must be a YAML mapping.")
        }
        if let unknown = body.keys.sorted().first(where: { !CreateIntegrationInput.keys.contains($0) }) {
            throw APIError.validation(
                "`\(unknown)` is not a member of an integration document (\(CreateIntegrationInput.keys.sorted().joined(separator: ", ")), switchyard, secret_configuration_keys).",
                field: unknown
            )
        }
        return try CreateIntegrationInput(json: body)
    }
}
