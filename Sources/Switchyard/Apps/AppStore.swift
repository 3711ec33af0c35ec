import Foundation

/// SQL for apps.
enum AppStore {
    static func insert(_ tx: SQLTx, _ app: App, otpHash: String?) throws {
        try tx.execute(
            """
            INSERT INTO apps (id, name, name_key, description, category, access, mode, workspace_ids, permissions, status,
                              client_id, rate_limit, developer_email, developer_invited_at, otp_hash, otp_expires_at,
                              otp_failures, created_by_type, created_by_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)
            """,
            app.id,
            app.name,
            nameKey(app.name),
            app.description,
            app.category,
            app.access.rawValue,
            app.mode.rawValue,
            workspaceText(app.workspaces),
            JSONValue.array(app.permissions.map(JSONValue.string)).jsonText,
            app.status.rawValue,
            app.clientId,
            app.rateLimit,
            app.developer?.email,
            app.developer?.invitedAt,
            otpHash,
            app.verification?.expiresAt,
            app.createdBy?.type,
            app.createdBy?.id,
            app.createdAt,
            app.updatedAt
        )
    }

    /// What is kept of a one-time password: its SHA-256 with the app's id, so equal passwords of
    /// two apps differ.
    static func otpDigest(appID: String, password: String) -> String { Hex.sha256("\(appID):\(password)") }

    /// A fresh one-time password: 8 digits, easy to read out on the phone; 5 tries in 10⁸.
    static func generateOneTimePassword() -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<8).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
    }

    /// Names are unique whatever their case: "Acme" and "acme" are the same partner.
    static func nameKey(_ name: String) -> String { name.lowercased() }

    static func workspaceText(_ workspaces: AppWorkspaces) -> String? {
        workspaces.ids.map { JSONValue.array($0.map(JSONValue.string)).jsonText }
    }

    static func app(_ tx: SQLTx, id: String, forUpdate: Bool = false) throws -> App? {
        try tx.queryOne("SELECT * FROM apps WHERE id = ?\(forUpdate && tx.dialect == .postgres ? " FOR UPDATE" : "")", id).map(app(from:))
    }

    static func app(_ tx: SQLTx, clientID: String) throws -> App? {
        try tx.queryOne("SELECT * FROM apps WHERE client_id = ?", clientID).map(app(from:))
    }

    /// The app's stored one-time password hash, for verification.
    static func otpHash(_ tx: SQLTx, id: String) throws -> String? {
        try tx.queryOne("SELECT otp_hash FROM apps WHERE id = ?", id)?.optionalString("otp_hash")
    }

    /// Oldest first; `query` matches names containing it, in any case.
    static func apps(_ tx: SQLTx, status: App.Status?, query: String?, after: String?, limit: Int) throws -> [App] {
        var sql = "SELECT * FROM apps WHERE id > ?"
        var arguments: [SQLValue] = [.text(after ?? "")]
        if let status {
            sql += " AND status = ?"
            arguments.append(.text(status.rawValue))
        }
        if let query, !query.isEmpty {
            let match = SQLDialect.contains("name_key", query)
            sql += match.sql
            arguments.append(match.argument)
        }
        sql += " ORDER BY id LIMIT ?"
        arguments.append(.int(Int64(limit)))
        return try tx.query(sql, arguments).map(app(from:))
    }

    /// The apps a developer is linked to, oldest first.
    static func apps(_ tx: SQLTx, developerUserID: String) throws -> [App] {
        try tx.query("SELECT * FROM apps WHERE developer_user_id = ? ORDER BY id", developerUserID).map(app(from:))
    }

    /// Writes what an admin may change and what the lifecycle moves (status, developer, verification).
    static func update(_ tx: SQLTx, _ app: App) throws {
        try tx.execute(
            """
            UPDATE apps SET description = ?, category = ?, workspace_ids = ?, permissions = ?, status = ?, rate_limit = ?,
                developer_email = ?, developer_user_id = ?, developer_invited_at = ?, developer_linked_at = ?,
                verified_at = ?, updated_at = ?, revoked_at = ?
            WHERE id = ?
            """,
            app.description,
            app.category,
            workspaceText(app.workspaces),
            JSONValue.array(app.permissions.map(JSONValue.string)).jsonText,
            app.status.rawValue,
            app.rateLimit,
            app.developer?.email,
            app.developer?.userId,
            app.developer?.invitedAt,
            app.developer?.linkedAt,
            app.developer?.verifiedAt,
            app.updatedAt,
            app.revokedAt,
            app.id
        )
    }

    /// A new one-time password (its failures start again).
    static func setOneTimePassword(_ tx: SQLTx, id: String, hash: String, expiresAt: Date) throws {
        try tx.execute("UPDATE apps SET otp_hash = ?, otp_expires_at = ?, otp_failures = 0 WHERE id = ?", hash, expiresAt, id)
    }

    /// Counts a wrong one-time password; answers the failures so far.
    static func noteOneTimePasswordFailure(_ tx: SQLTx, id: String) throws -> Int {
        try tx.queryOne("UPDATE apps SET otp_failures = otp_failures + 1 WHERE id = ? RETURNING otp_failures", id)
            .map { Int(try $0.int("otp_failures")) } ?? 0
    }

    /// A verified app needs its one-time password no more: it is forgotten.
    static func clearOneTimePassword(_ tx: SQLTx, id: String) throws {
        try tx.execute("UPDATE apps SET otp_hash = NULL, otp_expires_at = NULL, otp_failures = 0 WHERE id = ?", id)
    }

    static func app(from row: SQLRow) throws -> App {
        let workspaces: AppWorkspaces =
            try row.optionalString("workspace_ids").map { text in .list(try stringArray(text)) } ?? .all
        let failures = Int(row.optionalInt("otp_failures") ?? 0)
        let developer = row.optionalString("developer_email").map { email in
            App.Developer(
                email: email,
                userId: row.optionalString("developer_user_id"),
                invitedAt: row.optionalDate("developer_invited_at"),
                linkedAt: row.optionalDate("developer_linked_at"),
                verified: row.optionalDate("verified_at") != nil,
                verifiedAt: row.optionalDate("verified_at")
            )
        }
        let verification =
            row.optionalString("otp_hash") == nil
            ? nil
            : App.Verification(
                expiresAt: row.optionalDate("otp_expires_at"),
                triesLeft: max(0, App.oneTimePasswordTries - failures),
                locked: failures >= App.oneTimePasswordTries
            )
        let createdBy = row.optionalString("created_by_type").map { Record.CreatedBy(type: $0, id: row.optionalString("created_by_id")) }
        return App(
            id: try row.string("id"),
            name: try row.string("name"),
            description: try row.string("description"),
            category: try row.string("category"),
            access: App.Access(rawValue: try row.string("access")) ?? .read,
            mode: TokenMode(rawValue: try row.string("mode")) ?? .live,
            workspaces: workspaces,
            permissions: try stringArray(try row.string("permissions")),
            status: App.Status(rawValue: try row.string("status")) ?? .revoked,
            clientId: try row.string("client_id"),
            rateLimit: row.optionalDouble("rate_limit"),
            developer: developer,
            verification: verification,
            createdBy: createdBy,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            revokedAt: row.optionalDate("revoked_at")
        )
    }

    static func stringArray(_ text: String) throws -> [String] {
        guard case .array(let items) = try JSONValue.parse(text: text) else { return [] }
        return items.compactMap(\.stringValue)
    }
}
