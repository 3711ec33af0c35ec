import Foundation

/// `POST /v1/apps`.
public struct CreateAppInput: JSONObjectBody {
    public static let keys: Set<String> = [
        "name", "description", "category", "access", "mode", "workspaces", "permissions", "developer_email", "rate_limit",
    ]
    public var name: String
    public var description: String
    public var category: String
    public var access: App.Access
    public var mode: TokenMode
    public var workspaces: AppWorkspaces
    public var permissions: [String]
    public var developerEmail: String
    public var rateLimit: Double?

    public init(json object: [String: JSONValue]) throws {
        name = try JSONBody.required(object, "name", "a string", \.stringValue)
        description = try JSONBody.required(object, "description", "a string", \.stringValue)
        category = try JSONBody.required(object, "category", "a string", \.stringValue)
        access = try AppInput.choice(object, "access", required: true) ?? .read
        mode = try AppInput.choice(object, "mode", required: false) ?? .live
        workspaces =
            try AppInput.workspaces(object["workspaces"])
            ?? { throw APIError.validation("`workspaces` is required: a list of workspace ids, or \"*\".", field: "workspaces") }()
        permissions = try AppInput.permissions(object["permissions"]) ?? []
        developerEmail = try JSONBody.required(object, "developer_email", "a string", \.stringValue)
        rateLimit = try AppInput.rateLimit(object["rate_limit"]) ?? nil
    }

    public init(
        name: String,
        description: String,
        category: String = "accounting",
        access: App.Access = .readWrite,
        mode: TokenMode = .live,
        workspaces: AppWorkspaces,
        permissions: [String],
        developerEmail: String,
        rateLimit: Double? = nil
    ) {
        self.name = name
        self.description = description
        self.category = category
        self.access = access
        self.mode = mode
        self.workspaces = workspaces
        self.permissions = permissions
        self.developerEmail = developerEmail
        self.rateLimit = rateLimit
    }
}

/// `PATCH /v1/apps/{id}`: what an admin may change. `name`, `access` and `mode` are accepted only
/// to say that they cannot change.
public struct UpdateAppInput: JSONObjectBody {
    public static let keys: Set<String> = ["name", "description", "category", "access", "mode", "workspaces", "permissions", "rate_limit"]
    public var fixed: [String: JSONValue] = [:]
    public var description: String?
    public var category: String?
    public var workspaces: AppWorkspaces?
    public var permissions: [String]?
    /// Absent: unchanged; `.some(nil)`: back to `--app-rate-limit`.
    public var rateLimit: Double??

    public init(json object: [String: JSONValue]) throws {
        for key in ["name", "access", "mode"] { if let value = object[key] { fixed[key] = value } }
        if let value = object["description"] {
            guard let text = value.stringValue else { throw APIError.validation("`description` must be a string.", field: "description") }
            description = text
        }
        if let value = object["category"] {
            guard let text = value.stringValue else { throw APIError.validation("`category` must be a string.", field: "category") }
            category = text
        }
        workspaces = try AppInput.workspaces(object["workspaces"])
        permissions = try AppInput.permissions(object["permissions"])
        rateLimit = try AppInput.rateLimit(object["rate_limit"])
    }

    public init(description: String? = nil, workspaces: AppWorkspaces? = nil, permissions: [String]? = nil) {
        self.description = description
        self.workspaces = workspaces
        self.permissions = permissions
    }
}

/// `PUT /v1/apps/{id}/developer`.
public struct LinkDeveloperInput: RequestBody {
    public static let keys: Set<String> = ["email"]
    public var email: String
}

enum AppInput {
    static func choice<T: APIEnum>(_ object: [String: JSONValue], _ key: String, required: Bool) throws -> T? {
        guard let value = object[key], value != .null else {
            if required {
                throw APIError.validation("`\(key)` is required: one of \(T.allCases.map(\.rawValue).joined(separator: ", ")).", field: key)
            }
            return nil
        }
        guard let text = value.stringValue, let choice = T(rawValue: text) else {
            throw APIError.validation("`\(key)` must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")).", field: key)
        }
        return choice
    }

    static func workspaces(_ value: JSONValue?) throws -> AppWorkspaces? {
        guard let value else { return nil }
        if value.stringValue == "*" { return .all }
        guard case .array(let items) = value, !items.isEmpty else {
            throw APIError.validation("`workspaces` must be a non-empty list of workspace ids, or \"*\" for every workspace.", field: "workspaces")
        }
        var ids: [String] = []
        for (index, item) in items.enumerated() {
            guard let id = item.stringValue else {
                throw APIError.validation("`workspaces[\(index)]` must be a workspace id.", field: "workspaces[\(index)]")
            }
            if !ids.contains(id) { ids.append(id) }
        }
        return .list(ids)
    }

    static func permissions(_ value: JSONValue?) throws -> [String]? {
        guard let value else { return nil }
        guard case .array(let items) = value else {
            throw APIError.validation("`permissions` must be a list such as [\"work_order:read\", \"events:read\"].", field: "permissions")
        }
        guard items.count <= 1000 else { throw APIError.validation("`permissions` holds at most 1000 entries.", field: "permissions") }
        var names: [String] = []
        for (index, item) in items.enumerated() {
            guard let name = item.stringValue else {
                throw APIError.validation("`permissions[\(index)]` must be a string.", field: "permissions[\(index)]")
            }
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    static func rateLimit(_ value: JSONValue?) throws -> Double?? {
        guard let value else { return nil }
        if value == .null { return .some(nil) }
        let number: Double? =
            switch value {
            case .int(let n): Double(n)
            case .double(let d): d
            default: nil
            }
        guard let rate = number, rate >= 1, rate <= 1_000_000 else {
            throw APIError.validation("`rate_limit` must be a number of requests per second from 1 to 1000000, or null.", field: "rate_limit")
        }
        return .some(rate)
    }
}
