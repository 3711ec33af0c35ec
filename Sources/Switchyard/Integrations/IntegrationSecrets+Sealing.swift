import Foundation

/// How an integration's and a connection's secrets are kept: JSON text sealed with the
/// installation's key. One place, so every reader opens what every writer sealed.
extension Sealer {
    /// The secret configuration as a sealed JSON object; nil when there is none.
    func sealSecretConfiguration(_ values: [String: String]) throws -> [UInt8]? {
        values.isEmpty ? nil : try seal(JSONValue.object(values.mapValues(JSONValue.string)).jsonText)
    }

    /// `{"client_secret": …}` sealed; nil when there is no secret.
    func sealAuthSecrets(clientSecret: String?) throws -> [UInt8]? {
        guard let clientSecret else { return nil }
        return try seal(JSONValue.object(["client_secret": .string(clientSecret)]).jsonText)
    }

    func openIntegrationSecrets(configuration: [UInt8]?, auth: [UInt8]?) throws -> IntegrationSecrets {
        var secrets = IntegrationSecrets()
        if let configuration, case .object(let values) = try JSONValue.parse(text: try open(configuration)) {
            secrets.secretConfiguration = values.compactMapValues(\.stringValue)
        }
        if let auth, case .object(let values) = try JSONValue.parse(text: try open(auth)) {
            secrets.clientSecret = values["client_secret"]?.stringValue
        }
        return secrets
    }

    /// A connection's credentials or tokens (a JSON object).
    func sealConnectionSecrets(_ secrets: JSONValue) throws -> [UInt8] { try seal(secrets.jsonText) }

    func openConnectionSecrets(_ sealed: [UInt8]?) throws -> JSONValue {
        guard let sealed else { return .object([:]) }
        return try JSONValue.parse(text: try open(sealed))
    }
}
