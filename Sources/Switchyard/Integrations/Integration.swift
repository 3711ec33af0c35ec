import Foundation

/// A third-party service an admin connected the platform to: how to authenticate (its auth spec),
/// the configuration scripts see in `ctx.config`, and its connectors, one per API call.
/// Organization-wide; each workspace reaches it through a connection.
public struct Integration: Codable, Sendable {
    public var id: String
    public var name: String
    public var description: String
    /// A JSON object of values such as `baseUrl` or `integrationKey`; requests to `baseUrl` carry
    /// the connection's credentials. A `JSONValue`, so the answer keeps its keys as written.
    public var configuration: JSONValue
    /// The names only: the values are sealed and never shown again.
    public var secretConfigurationKeys: [String]
    public var auth: AuthSpec
    public var connectors: [Connector]
    public var createdBy: Record.CreatedBy?
    public var createdAt: Date
    public var updatedAt: Date

    /// The API base requests get the credentials for (`configuration.baseUrl`).
    public var baseURL: String? {
        if case .object(let values) = configuration, case .string(let url) = values["baseUrl"], !url.isEmpty { return url }
        return nil
    }
}

/// How an integration authenticates to its service. One flat shape for every type, so the
/// answer shows only the members of its type (nil members are left out).
public struct AuthSpec: Codable, Sendable, Equatable {
    public enum Kind: String, APIEnum, Sendable {
        case none
        case apiKey = "api_key"
        case basic, custom, oauth2
    }

    public enum KeyLocation: String, APIEnum, Sendable { case header, query }

    public enum TokenAuthMethod: String, APIEnum, Sendable {
        case clientSecretPost = "client_secret_post"
        case clientSecretBasic = "client_secret_basic"
    }

    public enum Grant: String, APIEnum, Sendable {
        case authorizationCode = "authorization_code"
        case clientCredentials = "client_credentials"
    }

    public var type: Kind

    // api_key
    /// The header or query parameter that carries the key.
    public var name: String?
    public var `in`: KeyLocation?
    /// Put before the key, e.g. `Token `.
    public var prefix: String?

    // custom: `export async function authenticate(config, credentials, ctx)`.
    public var code: String?

    // oauth2
    public var authorizationUrl: String?
    public var tokenUrl: String?
    /// Extra parameters of the authorization URL: a JSON object of strings, kept as written.
    public var queryParams: JSONValue?
    public var scopes: [String]?
    public var scopeSeparator: String?
    public var clientId: String?
    /// Whether a client secret is stored (sealed); the secret itself is never shown.
    public var clientSecretSet: Bool?
    public var pkce: Bool?
    public var tokenAuthMethod: TokenAuthMethod?
    public var grant: Grant?
    /// `export async function exchange(params, ctx)`: exchanges the authorization code itself.
    public var callbackCode: String?
    /// `export async function refresh(tokens, ctx)`: checks the token and refreshes it.
    public var authenticationCode: String?

    public init(type: Kind) { self.type = type }
}

/// The secrets of an integration, sealed together in `integrations.auth_secrets` and
/// `secret_configuration`; opened only to run its scripts and exchanges.
public struct IntegrationSecrets: Sendable, Equatable {
    public var secretConfiguration: [String: String]
    public var clientSecret: String?

    public init(secretConfiguration: [String: String] = [:], clientSecret: String? = nil) {
        self.secretConfiguration = secretConfiguration
        self.clientSecret = clientSecret
    }
}

/// One third-party API call: its parameters in and out and the code that makes it.
public struct Connector: Codable, Sendable, Equatable {
    public var key: String
    public var name: String
    public var description: String
    public var inputs: [ConnectorParameter]
    public var outputs: [ConnectorParameter]
    /// `export async function run(input, ctx)`.
    public var code: String
    public var createdAt: Date
    public var updatedAt: Date
}

public struct ConnectorParameter: Codable, Sendable, Equatable {
    public enum Kind: String, APIEnum, Sendable {
        case string, number, integer, boolean, object, array
    }

    public var name: String
    public var type: Kind
    public var required: Bool
    public var description: String
    public var `default`: JSONValue?

    public init(name: String, type: Kind, required: Bool = false, description: String = "", default: JSONValue? = nil) {
        self.name = name
        self.type = type
        self.required = required
        self.description = description
        self.default = `default`
    }
}
