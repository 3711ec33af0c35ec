import Foundation

/// Checks of input shared by every feature: names, emails, page sizes, flags.
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

    /// A query parameter naming one of an enum's cases (`status=failed`); absent is nil.
    public static func choice<T: RawRepresentable & CaseIterable>(_ value: String?, field: String) throws -> T? where T.RawValue == String {
        guard let value else { return nil }
        guard let choice = T(rawValue: value) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw APIError.validation("`\(field)` must be one of \(names).", field: field)
        }
        return choice
    }

    /// A boolean query parameter: `true`/`1` or `false`/`0`; absent is false.
    public static func flag(_ value: String?, name: String) throws -> Bool {
        switch value {
        case nil, "false", "0": return false
        case "true", "1": return true
        default: throw APIError.validation("`\(name)` must be true or false.", field: name)
        }
    }
}
