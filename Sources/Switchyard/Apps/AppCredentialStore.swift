import Foundation

/// SQL for an app's client secrets and access tokens, both kept as SHA-256 only.
enum AppCredentialStore {
    static func insertSecret(_ tx: SQLTx, _ secret: AppSecret, secretHash: String) throws {
        try tx.execute(
            "INSERT INTO app_secrets (id, app_id, secret_hash, last_four, created_at) VALUES (?, ?, ?, ?, ?)",
            secret.id,
            secret.appId,
            secretHash,
            secret.lastFour,
            secret.createdAt
        )
    }

    /// The app's secrets that still work, oldest first.
    static func secrets(_ tx: SQLTx, appID: String) throws -> [AppSecret] {
        try tx.query("SELECT * FROM app_secrets WHERE app_id = ? AND deleted_at IS NULL ORDER BY id", appID).map(secret(from:))
    }

    /// The working secret with this hash and its app, in one read: the token endpoint's lookup.
    static func secretWithApp(_ tx: SQLTx, secretHash: String) throws -> (AppSecret, App)? {
        guard
            let row = try tx.queryOne(
                """
                SELECT s.id AS secret_id, s.last_four AS secret_last_four, s.created_at AS secret_created_at,
                       s.last_used_at AS secret_last_used_at, a.*
                FROM app_secrets s JOIN apps a ON a.id = s.app_id WHERE s.secret_hash = ? AND s.deleted_at IS NULL
                """,
                secretHash
            )
        else { return nil }
        let app = try AppStore.app(from: row)
        let secret = AppSecret(
            id: try row.string("secret_id"),
            appId: app.id,
            lastFour: try row.string("secret_last_four"),
            createdAt: try row.date("secret_created_at"),
            lastUsedAt: row.optionalDate("secret_last_used_at")
        )
        return (secret, app)
    }

    /// Deletes a secret; answers whether it was there.
    static func deleteSecret(_ tx: SQLTx, id: String, appID: String, at: Date) throws -> Bool {
        try tx.execute("UPDATE app_secrets SET deleted_at = ? WHERE id = ? AND app_id = ? AND deleted_at IS NULL", at, id, appID) > 0
    }

    static func touchSecret(_ tx: SQLTx, id: String, at: Date) throws {
        try tx.execute("UPDATE app_secrets SET last_used_at = ? WHERE id = ?", at, id)
    }

    static func insertToken(
        _ tx: SQLTx,
        id: String,
        appID: String,
        secretID: String,
        tokenHash: String,
        mode: TokenMode,
        scope: [String]?,
        expiresAt: Date,
        createdAt: Date
    ) throws {
        try tx.execute(
            """
            INSERT INTO app_tokens (id, app_id, secret_id, secret_hash, mode, scope, expires_at, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            id,
            appID,
            secretID,
            tokenHash,
            mode.rawValue,
            scope.map { JSONValue.array($0.map(JSONValue.string)).jsonText },
            expiresAt,
            createdAt
        )
    }

    /// An access token as read with its app, in one query: app authentication is on every call.
    struct TokenRow: Sendable {
        var id: String
        var scope: [String]?
        var expiresAt: Date
        var revokedAt: Date?
        var app: App
    }

    static func tokenWithApp(_ tx: SQLTx, tokenHash: String) throws -> TokenRow? {
        guard
            let row = try tx.queryOne(
                """
                SELECT t.id AS token_id, t.scope AS token_scope, t.expires_at AS token_expires_at,
                       t.revoked_at AS token_revoked_at, a.*
                FROM app_tokens t JOIN apps a ON a.id = t.app_id WHERE t.secret_hash = ?
                """,
                tokenHash
            )
        else { return nil }
        return TokenRow(
            id: try row.string("token_id"),
            scope: try row.optionalString("token_scope").map(AppStore.stringArray),
            expiresAt: try row.date("token_expires_at"),
            revokedAt: row.optionalDate("token_revoked_at"),
            app: try AppStore.app(from: row)
        )
    }

    /// What an app's API call needs of its token and app, as stored: every call reads this, so it
    /// names eleven columns rather than the app's twenty-five, and leaves its JSON arrays as text for
    /// `AppTokenResolver`'s memo.
    struct TokenCaller: Sendable {
        var id: String
        var scopeText: String?
        var expiresAt: Date
        var revokedAt: Date?
        var appID: String
        var appName: String
        var mode: TokenMode
        var status: App.Status
        var workspacesText: String?
        var permissionsText: String
        var rateLimit: Double?
    }

    static func tokenCaller(_ tx: SQLTx, tokenHash: String) throws -> TokenCaller? {
        guard
            let row = try tx.queryOne(
                """
                SELECT t.id, t.scope, t.expires_at, t.revoked_at, a.id AS app_id, a.name, a.mode, a.status,
                       a.workspace_ids, a.permissions, a.rate_limit
                FROM app_tokens t JOIN apps a ON a.id = t.app_id WHERE t.secret_hash = ?
                """,
                tokenHash
            )
        else { return nil }
        return TokenCaller(
            id: try row.string("id"),
            scopeText: row.optionalString("scope"),
            expiresAt: try row.date("expires_at"),
            revokedAt: row.optionalDate("revoked_at"),
            appID: try row.string("app_id"),
            appName: try row.string("name"),
            mode: TokenMode(rawValue: try row.string("mode")) ?? .live,
            status: App.Status(rawValue: try row.string("status")) ?? .revoked,
            workspacesText: row.optionalString("workspace_ids"),
            permissionsText: try row.string("permissions"),
            rateLimit: row.optionalDouble("rate_limit")
        )
    }

    /// Revokes one token (RFC 7009); answers whether it was live.
    static func revokeToken(_ tx: SQLTx, id: String, at: Date) throws -> Bool {
        try tx.execute("UPDATE app_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", at, id) > 0
    }

    /// The tokens issued with a secret stop with it: a deleted secret is one thought leaked.
    static func revokeTokens(_ tx: SQLTx, secretID: String, at: Date) throws {
        try tx.execute("UPDATE app_tokens SET revoked_at = ? WHERE secret_id = ? AND revoked_at IS NULL", at, secretID)
    }

    /// Everything that lets the app in stops: its tokens and secrets.
    static func revokeAll(_ tx: SQLTx, appID: String, at: Date) throws {
        try tx.execute("UPDATE app_tokens SET revoked_at = ? WHERE app_id = ? AND revoked_at IS NULL", at, appID)
        try tx.execute("UPDATE app_secrets SET deleted_at = ? WHERE app_id = ? AND deleted_at IS NULL", at, appID)
    }

    static func secret(from row: SQLRow) throws -> AppSecret {
        AppSecret(
            id: try row.string("id"),
            appId: try row.string("app_id"),
            lastFour: try row.string("last_four"),
            createdAt: try row.date("created_at"),
            lastUsedAt: row.optionalDate("last_used_at")
        )
    }
}
