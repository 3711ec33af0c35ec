import Foundation
import Yams

/// An integration as a YAML document: what moves it between installations and keeps it in version
/// control. Code is included (as literal blocks, so diffs read well); secrets are left out — the
/// document names the secret configuration keys to fill in after an import. Importing turns the
/// document back into the body `POST /v1/integrations` takes, so an import is checked exactly as a
/// creation is.
enum IntegrationDocument {
    static let format = "integration/v1"

    static func yaml(_ integration: Integration, exportedAt: Date) throws -> String {
        var auth: [(String, Node)] = []
        if case .object(let spec) = try authJSON(integration.auth) {
            for key in spec.keys.sorted() where key != "client_secret_set" { auth.append((key, node(spec[key] ?? .null))) }
        }
        let connectors = integration.connectors.map { connector in
            mapping([
                ("key", node(.string(connector.key))),
                ("name", node(.string(connector.name))),
                ("description", node(.string(connector.description))),
                ("inputs", .sequence(.init(connector.inputs.map(parameter)))),
                ("outputs", .sequence(.init(connector.outputs.map(parameter)))),
                ("code", node(.string(connector.code))),
            ])
        }
        let document = mapping([
            ("switchyard", node(.string(format))),
            ("name", node(.string(integration.name))),
            ("description", node(.string(integration.description))),
            ("configuration", node(integration.configuration)),
            ("secret_configuration_keys", node(.array(integration.secretConfigurationKeys.map(JSONValue.string)))),
            ("auth", mapping(auth)),
            ("connectors", .sequence(.init(connectors))),
        ])
        let header = """
            # A Switchyard integration, exported \(RFC3339.format(exportedAt)). Secrets are left out:
            # after an import, set the values of `secret_configuration_keys` (and the OAuth client
            # secret) with PATCH /v1/integrations/{id}.

            """
        return header + (try Yams.serialize(node: document, width: -1, allowUnicode: true))
    }

    /// The document as the body of `POST /v1/integrations`; a 422 says what is wrong with it.
    static func creationBody(fromYAML text: String) throws -> JSONValue {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw APIError.validation("The document is not valid YAML: \(error).")
        }
        guard let root, case .object(var body) = try json(root, path: "") else {
            throw APIError.validation("The document must be a YAML mapping with the integration's `name`, `auth` and `connectors`.")
        }
        if let format = body.removeValue(forKey: "switchyard"), format != .string(Self.format) {
            throw APIError.validation("`switchyard` must be \"\(Self.format)\", the format this server reads.", field: "switchyard")
        }
        // Names of secrets to set after the import, not values: the creation body has no such member.
        body.removeValue(forKey: "secret_configuration_keys")
        return .object(body)
    }

    // MARK: JSON ↔ YAML nodes

    private static func mapping(_ pairs: [(String, Node)]) -> Node {
        .mapping(.init(pairs.map { (Node.scalar(.init($0.0)), $0.1) }))
    }

    private static func parameter(_ parameter: ConnectorParameter) -> Node {
        var pairs: [(String, Node)] = [
            ("name", node(.string(parameter.name))), ("type", node(.string(parameter.type.rawValue))),
            ("required", node(.bool(parameter.required))), ("description", node(.string(parameter.description))),
        ]
        if let value = parameter.default { pairs.append(("default", node(value))) }
        return mapping(pairs)
    }

    /// The spec as the API shows it (snake_case members, `query_params` keys as written).
    private static func authJSON(_ auth: AuthSpec) throws -> JSONValue {
        try JSONValue.parse(text: try JSONCoding.encodeText(auth))
    }

    static func node(_ value: JSONValue) -> Node {
        switch value {
        case .null: return .scalar(.init("null", Tag(.null)))
        case .bool(let flag): return .scalar(.init(flag ? "true" : "false", Tag(.bool)))
        case .int(let number): return .scalar(.init(String(number), Tag(.int)))
        case .double(let number): return .scalar(.init(String(number), Tag(.float)))
        case .string(let text):
            if text.contains("\n") { return .scalar(.init(text, Tag(.str), .literal)) }
            return .scalar(.init(text, Tag(.str), looksLikeAnotherType(text) ? .doubleQuoted : .any))
        case .array(let items): return .sequence(.init(items.map(node)))
        case .object(let members): return mapping(members.keys.sorted().map { ($0, node(members[$0] ?? .null)) })
        }
    }

    /// A plain scalar YAML would read as a number, boolean or null: quoted so it stays a string.
    private static func looksLikeAnotherType(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return text.isEmpty || Double(text) != nil || ["true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"].contains(lowered)
            || text.hasPrefix("0x") || text.hasPrefix("0o")
    }

    static func json(_ node: Node, path: String) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            // The tag YAML resolves (core schema): null, booleans, integers, floats; anything else
            // (timestamps included) stays the text as written.
            switch node.any {
            case is NSNull: return .null
            case let flag as Bool: return .bool(flag)
            case let number as Int: return .int(Int64(number))
            case let number as Double:
                guard number.isFinite else {
                    throw APIError.validation("`\(path)` is not a finite number.", field: path.isEmpty ? nil : path)
                }
                return .double(number)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .array(try sequence.enumerated().map { index, item in try json(item, path: "\(path)[\(index)]") })
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.string else { throw APIError.validation("`\(path)` has a key that is not a string.") }
                let child = path.isEmpty ? name : "\(path).\(name)"
                guard members[name] == nil else { throw APIError.validation("`\(child)` is given twice.", field: child) }
                members[name] = try json(value, path: child)
            }
            return .object(members)
        case .alias:
            throw APIError.validation("The document uses a YAML alias at `\(path)`; write the value out.", field: path.isEmpty ? nil : path)
        }
    }
}
