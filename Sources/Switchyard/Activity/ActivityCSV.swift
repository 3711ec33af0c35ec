import Foundation

/// RFC 4180 CSV of activity entries. A cell that a spreadsheet would read as a formula (starting
/// with `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`, so an attacker who puts
/// `=HYPERLINK(…)` in a name cannot run it in the admin's spreadsheet.
public enum ActivityCSV {
    public static let header = [
        "id", "occurred_at", "actor_type", "actor_id", "actor_label", "action", "target_type",
        "target_id", "target_label", "workspace_id", "workspace_name", "app_id", "ip", "outcome", "detail", "request_id",
    ]

    public static func row(_ entry: ActivityEntry) -> String {
        line([
            entry.id, RFC3339.format(entry.occurredAt), entry.actorType, entry.actorId, entry.actorLabel, entry.action,
            entry.targetType, entry.targetId, entry.targetLabel, entry.workspaceId, entry.workspaceName, entry.appId, entry.ip,
            entry.outcome.rawValue,
            entry.detail, entry.requestId,
        ])
    }

    public static func line(_ cells: [String?]) -> String {
        cells.map { cell($0 ?? "") }.joined(separator: ",") + "\r\n"
    }

    public static func cell(_ raw: String) -> String {
        var value = raw
        if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) {
            value = "'" + value
        }
        if value.unicodeScalars.contains(where: { ",\"\n\r".unicodeScalars.contains($0) }) {
            return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return value
    }
}
