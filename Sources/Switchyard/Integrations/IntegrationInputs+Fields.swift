import Foundation

/// The checks of an integration's fields, shared by creation, PATCH and the connector routes;
/// each 422 names the field as the client wrote it (`configuration.baseUrl`, `connectors[0].inputs[1].type`).
enum IntegrationInput {
    static let maximumCodeLength = 200_000
    static let maximumConnectors = 200
    static let maximumParameters = 100
    static let maximumConfigurationKeys = 100

    static func description(_ value: JSONValue?, field: String) throws -> String? {
        guard let value else { return nil }
        if value == .null { return "" }
        guard let text = value.stringValue else { throw APIError.validation("`\(field)` must be a string.", field: field) }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return "" }
        return try Validate.name(trimmed, field: field, maximum: 2000, multiline: true)
    }

    /// A configuration key: 1 to 100 characters, no control characters.
    static func key(_ key: String, field: String) throws {
        guard !key.isEmpty, key.count <= 100, !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.validation("`\(field)` is not a valid key: 1 to 100 characters without control characters.", field: field)
        }
    }

    /// An object of string, number and boolean values, kept as written.
    static func configuration(_ value: JSONValue?) throws -> JSONValue? {
        guard let value else { return nil }
        guard case .object(let object) = value else {
            throw APIError.validation(
                "`configuration` must be an object of strings, numbers and booleans, such as {\"baseUrl\": \"https://api.example.com\"}.",
                field: "configuration"
            )
        }
        guard object.count <= maximumConfigurationKeys else {
            throw APIError.validation("`configuration` holds at most \(maximumConfigurationKeys) values.", field: "configuration")
        }
        for (key, item) in object {
            let field = "configuration.\(key)"
            try Self.key(key, field: field)
            switch item {
            case .string(let text):
                guard text.count <= 10_000 else { throw APIError.validation("`\(field)` must be at most 10000 characters.", field: field) }
            case .int, .double, .bool: break
            default: throw APIError.validation("`\(field)` must be a string, a number or a boolean, not \(item.typeName).", field: field)
            }
        }
        if let base = object["baseUrl"] {
            guard let url = base.stringValue, !url.isEmpty, url.count <= 2000 else {
                throw APIError.validation("`configuration.baseUrl` must be the http(s) URL of the service's API.", field: "configuration.baseUrl")
            }
            _ = url
        }
        return value
    }

    /// An object of strings; keys given as null are left out.
    static func secretConfiguration(_ value: JSONValue?) throws -> [String: String]? {
        guard let value else { return nil }
        guard case .object(let object) = value else {
            throw APIError.validation(
                "`secret_configuration` must be an object of strings, such as {\"apiSecret\": \"…\"}.",
                field: "secret_configuration"
            )
        }
        guard object.count <= maximumConfigurationKeys else {
            throw APIError.validation("`secret_configuration` holds at most \(maximumConfigurationKeys) values.", field: "secret_configuration")
        }
        var values: [String: String] = [:]
        for (key, item) in object {
            let field = "secret_configuration.\(key)"
            try Self.key(key, field: field)
            if item == .null { continue }
            // The value itself is never echoed: it is a secret.
            guard let text = item.stringValue, text.count <= 10_000 else {
                throw APIError.validation("`\(field)` must be a string of at most 10000 characters, or null to leave it out.", field: field)
            }
            values[key] = text
        }
        return values
    }

    /// Scripts see both in `ctx.config`, so a key is in one or the other.
    static func checkDisjoint(_ configuration: JSONValue, _ secrets: [String: String]) throws {
        guard case .object(let object) = configuration else { return }
        if let key = secrets.keys.sorted().first(where: { object[$0] != nil }) {
            throw APIError.validation(
                "`secret_configuration.\(key)` is also in `configuration`; scripts see both in ctx.config, so a key is in one of them.",
                field: "secret_configuration.\(key)"
            )
        }
    }

    /// An object of string values (query parameters of the authorization URL).
    static func strings(_ value: JSONValue?, field: String) throws -> [String: String] {
        guard let value, value != .null else { return [:] }
        guard case .object(let object) = value, object.count <= 50 else {
            throw APIError.validation("`\(field)` must be an object of at most 50 string values.", field: field)
        }
        var values: [String: String] = [:]
        for (key, item) in object {
            try Self.key(key, field: "\(field).\(key)")
            guard let text = item.stringValue, text.count <= 2000 else {
                throw APIError.validation("`\(field).\(key)` must be a string of at most 2000 characters.", field: "\(field).\(key)")
            }
            values[key] = text
        }
        return values
    }

    /// An optional single-line string.
    static func line(_ value: JSONValue?, field: String, maximum: Int) throws -> String? {
        guard let value, value != .null else { return nil }
        guard let text = value.stringValue, text.count <= maximum,
            !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw APIError.validation("`\(field)` must be a single-line string of at most \(maximum) characters.", field: field)
        }
        return text
    }

    /// JavaScript source: compiled later, at save (`IntegrationService.checkScripts`).
    static func code(_ value: JSONValue?, field: String, required: Bool) throws -> String? {
        guard let value, value != .null else {
            if required { throw APIError.validation("`\(field)` is required: JavaScript source exporting its function.", field: field) }
            return nil
        }
        guard let code = value.stringValue, !code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError.validation("`\(field)` must be JavaScript source (a non-empty string).", field: field)
        }
        guard code.utf8.count <= maximumCodeLength else {
            throw APIError.validation("`\(field)` must be at most \(maximumCodeLength) bytes.", field: field)
        }
        return code
    }

    static func connectors(_ value: JSONValue?) throws -> [ConnectorInput] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else { throw APIError.validation("`connectors` must be a list of connectors.", field: "connectors") }
        guard items.count <= maximumConnectors else {
            throw APIError.validation("`connectors` holds at most \(maximumConnectors) connectors.", field: "connectors")
        }
        var seen = Set<String>()
        return try items.enumerated().map { index, item in
            let connector = try ConnectorInput(item, path: "connectors[\(index)].")
            guard seen.insert(connector.key).inserted else {
                throw APIError.validation(
                    "`connectors[\(index)].key` \(connector.key) is given twice; keys are unique.",
                    field: "connectors[\(index)].key"
                )
            }
            return connector
        }
    }

    static let parameterKeys: Set<String> = ["name", "type", "required", "description", "default"]

    static func parameters(_ value: JSONValue?, field: String) throws -> [ConnectorParameter] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value, items.count <= maximumParameters else {
            throw APIError.validation("`\(field)` must be a list of at most \(maximumParameters) parameters.", field: field)
        }
        var seen = Set<String>()
        return try items.enumerated().map { index, item in
            let at = "\(field)[\(index)]"
            guard case .object(let object) = item else {
                throw APIError.validation("`\(at)` must be an object with `name` and `type`.", field: at)
            }
            if let unknown = object.keys.filter({ !parameterKeys.contains($0) }).sorted().first {
                throw APIError.validation(
                    "Unknown field `\(at).\(unknown)`. Known fields: \(parameterKeys.sorted().joined(separator: ", ")).",
                    field: "\(at).\(unknown)"
                )
            }
            guard let name = object["name"]?.stringValue, isParameterName(name) else {
                throw APIError.validation(
                    "`\(at).name` must be a name of letters, digits and _ (at most 64), not starting with a digit.",
                    field: "\(at).name"
                )
            }
            guard seen.insert(name).inserted else {
                throw APIError.validation("`\(at).name` \(name) is given twice; parameter names are unique.", field: "\(at).name")
            }
            let kinds = ConnectorParameter.Kind.allCases.map(\.rawValue).joined(separator: ", ")
            guard let typeName = object["type"]?.stringValue, let type = ConnectorParameter.Kind(rawValue: typeName) else {
                throw APIError.validation("`\(at).type` must be one of \(kinds).", field: "\(at).type")
            }
            var required = false
            if let flag = object["required"], flag != .null {
                guard case .bool(let value) = flag else {
                    throw APIError.validation("`\(at).required` must be true or false.", field: "\(at).required")
                }
                required = value
            }
            let description = try Self.description(object["description"], field: "\(at).description") ?? ""
            var defaultValue: JSONValue?
            if let given = object["default"], given != .null {
                guard ParameterCheck.matches(given, type) else {
                    throw APIError.validation(
                        "`\(at).default` must be \(ParameterCheck.describe(type)), not \(given.typeName).",
                        field: "\(at).default"
                    )
                }
                defaultValue = given
            }
            return ConnectorParameter(name: name, type: type, required: required, description: description, default: defaultValue)
        }
    }

    /// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`.
    static func isParameterName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 64 else { return false }
        func letter(_ byte: UInt8) -> Bool { (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95 }
        return letter(first) && bytes.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }
}

/// Whether a JSON value is of a parameter's type (inputs before a run, outputs after it, defaults at save).
enum ParameterCheck {
    static func matches(_ value: JSONValue, _ type: ConnectorParameter.Kind) -> Bool {
        switch (type, value) {
        case (.string, .string), (.boolean, .bool), (.object, .object), (.array, .array), (.number, .int), (.number, .double),
            (.integer, .int):
            return true
        case (.integer, .double(let number)):
            return number.rounded() == number && abs(number) < 9e15
        default:
            return false
        }
    }

    static func describe(_ type: ConnectorParameter.Kind) -> String {
        switch type {
        case .string: "a string"
        case .number: "a number"
        case .integer: "an integer"
        case .boolean: "a boolean"
        case .object: "an object"
        case .array: "an array"
        }
    }
}
