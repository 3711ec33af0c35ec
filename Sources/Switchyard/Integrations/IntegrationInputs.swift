import Foundation

/// `POST /v1/integrations`.
public struct CreateIntegrationInput: JSONObjectBody {
    public static let keys: Set<String> = ["name", "description", "configuration", "secret_configuration", "auth", "connectors"]
    public var name: String
    public var description: String
    public var configuration: JSONValue
    public var secretConfiguration: [String: String]
    public var auth: AuthInput
    public var connectors: [ConnectorInput]
    let fingerprint: String

    public init(json object: [String: JSONValue]) throws {
        name = try Validate.name(try JSONBody.required(object, "name", "a string", \.stringValue), maximum: 100)
        description = try IntegrationInput.description(object["description"], field: "description") ?? ""
        configuration = try IntegrationInput.configuration(object["configuration"]) ?? .object([:])
        secretConfiguration = try IntegrationInput.secretConfiguration(object["secret_configuration"]) ?? [:]
        guard let auth = object["auth"], auth != .null else {
            throw APIError.validation("`auth` is required: an object with a `type` (none, api_key, basic, custom, oauth2).", field: "auth")
        }
        self.auth = try AuthInput(auth)
        connectors = try IntegrationInput.connectors(object["connectors"])
        try IntegrationInput.checkDisjoint(configuration, secretConfiguration)
        fingerprint = Idempotency.fingerprint(JSONValue.object(object).jsonText)
    }

    public var idempotencyFingerprint: String { fingerprint }

    // Only `init(json:)` is used (JSONBody.decode); Decodable is what RequestBody asks for.
    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}

/// `PATCH /v1/integrations/{id}`: what is given changes, the rest stays.
public struct UpdateIntegrationInput: JSONObjectBody {
    public static let keys: Set<String> = ["name", "description", "configuration", "secret_configuration", "auth", "connectors"]
    public var name: String?
    public var description: String?
    public var configuration: JSONValue?
    /// Replaces the stored object; keys given as null are left out.
    public var secretConfiguration: [String: String]?
    public var auth: AuthInput?

    public init(json object: [String: JSONValue]) throws {
        if object["connectors"] != nil {
            throw APIError.validation(
                "Connectors change one at a time: PUT or DELETE /v1/integrations/{integration_id}/connectors/{connector_key}.",
                field: "connectors"
            )
        }
        if let value = object["name"] {
            guard let text = value.stringValue else { throw APIError.validation("`name` must be a string.", field: "name") }
            name = try Validate.name(text, maximum: 100)
        }
        description = try IntegrationInput.description(object["description"], field: "description")
        if let value = object["configuration"] {
            configuration = value == .null ? .object([:]) : try IntegrationInput.configuration(value)
        }
        if let value = object["secret_configuration"] {
            secretConfiguration = value == .null ? [:] : try IntegrationInput.secretConfiguration(value)
        }
        if let value = object["auth"] {
            guard value != .null else {
                throw APIError.validation("`auth` cannot be null; give an auth spec such as {\"type\": \"none\"}.", field: "auth")
            }
            auth = try AuthInput(value)
        }
    }

    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }
}

/// An auth spec as given: the spec to store, and the client secret, which is sealed apart.
public struct AuthInput: Sendable {
    public var spec: AuthSpec
    /// Absent: keep the stored one (oauth2 staying oauth2); `.some(nil)`: none.
    public var clientSecret: String??

    static let members: [AuthSpec.Kind: Set<String>] = [
        .none: ["type"],
        .apiKey: ["type", "name", "in", "prefix"],
        .basic: ["type"],
        .custom: ["type", "code"],
        .oauth2: [
            "type", "authorization_url", "token_url", "query_params", "scopes", "scope_separator", "client_id", "client_secret", "pkce",
            "token_auth_method", "grant", "callback_code", "authentication_code",
        ],
    ]

    public init(_ value: JSONValue) throws {
        guard case .object(let object) = value else {
            throw APIError.validation("`auth` must be an object with a `type` (none, api_key, basic, custom, oauth2).", field: "auth")
        }
        let kinds = AuthSpec.Kind.allCases.map(\.rawValue).joined(separator: ", ")
        guard let typeName = object["type"]?.stringValue, let type = AuthSpec.Kind(rawValue: typeName) else {
            throw APIError.validation("`auth.type` must be one of \(kinds).", field: "auth.type")
        }
        let known = Self.members[type] ?? ["type"]
        if let unknown = object.keys.filter({ !known.contains($0) }).sorted().first {
            let others = known.subtracting(["type"]).sorted()
            throw APIError.validation(
                "`auth.\(unknown)` is not part of a \(typeName) auth spec"
                    + (others.isEmpty ? "; it takes only `type`." : "; it takes \(others.joined(separator: ", "))."),
                field: "auth.\(unknown)"
            )
        }
        var spec = AuthSpec(type: type)
        switch type {
        case .none, .basic:
            break
        case .apiKey:
            spec.name = try Self.keyName(object["name"])
            spec.in = try Self.choice(object, "in") ?? .header
            spec.prefix = try IntegrationInput.line(object["prefix"], field: "auth.prefix", maximum: 100)
        case .custom:
            spec.code = try IntegrationInput.code(object["code"], field: "auth.code", required: true)
        case .oauth2:
            spec.grant = try Self.choice(object, "grant") ?? .authorizationCode
            spec.authorizationUrl = try Self.url(object["authorization_url"], "authorization_url", required: spec.grant == .authorizationCode)
            spec.tokenUrl = try Self.url(object["token_url"], "token_url", required: true)
            spec.queryParams = .object(try IntegrationInput.strings(object["query_params"], field: "auth.query_params").mapValues(JSONValue.string))
            spec.scopes = try Self.scopes(object["scopes"])
            spec.scopeSeparator = try IntegrationInput.line(object["scope_separator"], field: "auth.scope_separator", maximum: 5) ?? " "
            guard let clientID = object["client_id"]?.stringValue, !clientID.isEmpty, clientID.count <= 500 else {
                throw APIError.validation(
                    "`auth.client_id` is required: the client id the provider issued (at most 500 characters).",
                    field: "auth.client_id"
                )
            }
            spec.clientId = clientID
            spec.pkce = try Self.flag(object["pkce"], "pkce") ?? true
            spec.tokenAuthMethod = try Self.choice(object, "token_auth_method") ?? .clientSecretPost
            spec.callbackCode = try IntegrationInput.code(object["callback_code"], field: "auth.callback_code", required: false)
            spec.authenticationCode = try IntegrationInput.code(object["authentication_code"], field: "auth.authentication_code", required: false)
            if let secret = object["client_secret"] {
                guard secret != .null else {
                    clientSecret = .some(nil)
                    break
                }
                guard let text = secret.stringValue, !text.isEmpty, text.count <= 2000 else {
                    throw APIError.validation("`auth.client_secret` must be a string of 1 to 2000 characters, or null.", field: "auth.client_secret")
                }
                clientSecret = .some(text)
            }
        }
        self.spec = spec
    }

    /// The URLs of the spec, for the outbound guard: (field, URL).
    var urls: [(String, String)] {
        [("auth.authorization_url", spec.authorizationUrl), ("auth.token_url", spec.tokenUrl)].compactMap { field, url in
            url.map { (field, $0) }
        }
    }

    /// The code of the spec, for compiling at save: (field, code, the functions it must export).
    var scripts: [(field: String, code: String, entries: [String])] {
        [
            ("auth.code", spec.code, ["authenticate"]),
            ("auth.callback_code", spec.callbackCode, ["exchange"]),
            ("auth.authentication_code", spec.authenticationCode, ["refresh"]),
        ].compactMap { field, code, entries in code.map { (field, $0, entries) } }
    }

    static let headerToken = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)

    static func keyName(_ value: JSONValue?) throws -> String {
        guard let value, value != .null else { return "X-API-Key" }
        guard let name = value.stringValue, !name.isEmpty, name.count <= 100, name.unicodeScalars.allSatisfy(headerToken.contains) else {
            throw APIError.validation(
                "`auth.name` must be a header or query parameter name (1 to 100 letters, digits and !#$%&'*+-.^_`|~).",
                field: "auth.name"
            )
        }
        guard !["host", "content-length", "transfer-encoding", "connection", "content-type"].contains(name.lowercased()) else {
            throw APIError.validation("`auth.name` cannot be \(name): every request sets that header itself.", field: "auth.name")
        }
        return name
    }

    static func choice<T: APIEnum>(_ object: [String: JSONValue], _ key: String) throws -> T? {
        guard let value = object[key], value != .null else { return nil }
        guard let text = value.stringValue, let choice = T(rawValue: text) else {
            throw APIError.validation("`auth.\(key)` must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")).", field: "auth.\(key)")
        }
        return choice
    }

    static func flag(_ value: JSONValue?, _ key: String) throws -> Bool? {
        guard let value, value != .null else { return nil }
        guard case .bool(let flag) = value else { throw APIError.validation("`auth.\(key)` must be true or false.", field: "auth.\(key)") }
        return flag
    }

    static func url(_ value: JSONValue?, _ key: String, required: Bool) throws -> String? {
        guard let value, value != .null else {
            if required { throw APIError.validation("`auth.\(key)` is required: the provider's http(s) URL.", field: "auth.\(key)") }
            return nil
        }
        guard let url = value.stringValue, !url.isEmpty, url.count <= 2000 else {
            throw APIError.validation("`auth.\(key)` must be an http(s) URL of at most 2000 characters.", field: "auth.\(key)")
        }
        return url
    }

    static func scopes(_ value: JSONValue?) throws -> [String] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value, items.count <= 100 else {
            throw APIError.validation("`auth.scopes` must be a list of at most 100 scope names.", field: "auth.scopes")
        }
        return try items.enumerated().map { index, item in
            guard let scope = item.stringValue, !scope.isEmpty, scope.count <= 200,
                !scope.unicodeScalars.contains(where: { $0.value <= 32 || $0.value == 127 })
            else {
                throw APIError.validation("`auth.scopes[\(index)]` must be a scope name without spaces.", field: "auth.scopes[\(index)]")
            }
            return scope
        }
    }
}

/// A connector as given: in an integration's `connectors`, to POST (with its key) or PUT (key in the path).
public struct ConnectorInput: Sendable {
    static let keys: Set<String> = ["key", "name", "description", "inputs", "outputs", "code"]
    public var key: String
    public var name: String
    public var description: String
    public var inputs: [ConnectorParameter]
    public var outputs: [ConnectorParameter]
    public var code: String
    /// Where the fields of this connector are in the request (`connectors[2].`), for 422s.
    public var path: String

    /// - Parameter pathKey: the key of a PUT's path; the body may then leave `key` out.
    public init(_ value: JSONValue, path: String, pathKey: String? = nil) throws {
        let at = path.isEmpty ? "the body" : "`\(path.dropLast())`"
        guard case .object(let object) = value else {
            throw APIError.validation("\(at) must be a connector object.", field: path.isEmpty ? nil : String(path.dropLast()))
        }
        if let unknown = object.keys.filter({ !Self.keys.contains($0) }).sorted().first {
            throw APIError.validation(
                "Unknown field `\(path)\(unknown)`. Known fields: \(Self.keys.sorted().joined(separator: ", ")).",
                field: "\(path)\(unknown)"
            )
        }
        if let pathKey {
            if let given = object["key"], given.stringValue != pathKey {
                throw APIError.validation("`key` must be the key of the path (\(pathKey)) or left out.", field: "key")
            }
            key = pathKey
        } else {
            guard let text = object["key"]?.stringValue else {
                throw APIError.validation("`\(path)key` is required: lower-case letters, digits and _, such as send_for_esign.", field: "\(path)key")
            }
            key = text
        }
        guard Self.isKey(key) else {
            throw APIError.validation(
                "`\(path)key` must start with a lower-case letter and hold only a-z, 0-9 and _ (at most 64).",
                field: pathKey == nil ? "\(path)key" : "connector_key"
            )
        }
        guard let nameText = object["name"]?.stringValue else {
            throw APIError.validation("`\(path)name` is required: a string.", field: "\(path)name")
        }
        name = try Validate.name(nameText, field: "\(path)name", maximum: 200)
        description = try IntegrationInput.description(object["description"], field: "\(path)description") ?? ""
        inputs = try IntegrationInput.parameters(object["inputs"], field: "\(path)inputs")
        outputs = try IntegrationInput.parameters(object["outputs"], field: "\(path)outputs")
        guard let code = try IntegrationInput.code(object["code"], field: "\(path)code", required: true) else {
            throw APIError.validation("`\(path)code` is required.", field: "\(path)code")
        }
        self.code = code
        self.path = path
    }

    /// `^[a-z][a-z0-9_]{0,63}$`.
    public static func isKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard let first = bytes.first, bytes.count <= 64, first >= 97, first <= 122 else { return false }
        return bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    func connector(at now: Date, createdAt: Date? = nil) -> Connector {
        Connector(
            key: key,
            name: name,
            description: description,
            inputs: inputs,
            outputs: outputs,
            code: code,
            createdAt: createdAt ?? now,
            updatedAt: now
        )
    }
}

/// `PUT /v1/integrations/{id}/connectors/{key}` and `POST …/connectors`.
public struct ConnectorBody: JSONObjectBody {
    public static let keys = ConnectorInput.keys
    public var object: [String: JSONValue]

    public init(json object: [String: JSONValue]) throws { self.object = object }
    public init(from decoder: Decoder) throws { try self.init(json: try JSONValue(from: decoder).objectValue ?? [:]) }

    var fingerprint: String { Idempotency.fingerprint(JSONValue.object(object).jsonText) }
}
