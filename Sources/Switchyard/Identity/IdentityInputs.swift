import Foundation

public struct CreateUserInput: RequestBody {
    public static let keys: Set<String> = ["email", "name", "role", "password"]
    public var email: String
    public var name: String?
    public var role: Role
    public var password: String?

    public init(email: String, name: String? = nil, role: Role, password: String? = nil) {
        self.email = email
        self.name = name
        self.role = role
        self.password = password
    }
}

public struct CreateWorkspaceInput: RequestBody {
    public static let keys: Set<String> = ["name", "mode"]
    public var name: String
    public var mode: WorkspaceMode?

    public init(name: String, mode: WorkspaceMode? = nil) {
        self.name = name
        self.mode = mode
    }
}

public struct UpdateWorkspaceInput: RequestBody {
    public static let keys: Set<String> = ["name", "mode"]
    public var name: String?
    public var mode: WorkspaceMode?
}

public struct CreateTokenInput: RequestBody {
    public static let keys: Set<String> = ["name", "mode", "workspaces", "expires_at"]
    public var name: String
    public var mode: TokenMode?
    public var workspaces: [String]?
    public var expiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, mode, workspaces
        case expiresAt = "expires_at"
    }

    public init(name: String, mode: TokenMode? = nil, workspaces: [String]? = nil, expiresAt: Date? = nil) {
        self.name = name
        self.mode = mode
        self.workspaces = workspaces
        self.expiresAt = expiresAt
    }
}

public struct SignInInput: RequestBody {
    public static let keys: Set<String> = ["email", "password"]
    public var email: String
    public var password: String
}

/// The answer to a user's creation; `password` only when the server generated it.
public struct CreatedUser: Codable, Sendable {
    public var user: User
    public var password: String?
}

public enum Validate {
    /// A trimmed, non-empty name of at most `maximum` characters.
    /// `multiline`: line breaks and tabs are kept (descriptions); other control characters never.
    public static func name(_ value: String, field: String = "name", maximum: Int = 200, multiline: Bool = false) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw APIError.validation("`\(field)` must not be empty.", field: field) }
        guard trimmed.count <= maximum else {
            throw APIError.validation("`\(field)` must be at most \(maximum) characters.", field: field)
        }
        let allowed: Set<Unicode.Scalar> = multiline ? ["\n", "\r", "\t"] : []
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !allowed.contains($0) }) else {
            throw APIError.validation(
                multiline
                    ? "`\(field)` must not contain control characters other than line breaks and tabs."
                    : "`\(field)` must not contain control characters.",
                field: field
            )
        }
        return trimmed
    }

    /// A lower-cased address of the form local@domain.
    public static func email(_ value: String, field: String = "email") throws -> String {
        let email = value.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            // ASCII only: mail servers without SMTPUTF8 refuse other addresses, and we do not ask for it.
            email.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && !"<>\",;()[]\\".unicodeScalars.contains($0) })
        else {
            throw APIError.validation("`\(field)` must be an email address such as ada@example.com.", field: field)
        }
        return email
    }

    /// Page size: 1…200, default 50.
    public static func limit(_ value: String?) throws -> Int {
        guard let value else { return 50 }
        guard let limit = Int(value), (1...200).contains(limit) else {
            throw APIError.validation("`limit` must be a whole number from 1 to 200.", field: "limit")
        }
        return limit
    }
}
