import Foundation

/// SQL for the organization and its workspaces.
enum WorkspaceStore {
    static func organization(_ tx: SQLTx) throws -> Organization? {
        try tx.queryOne("SELECT * FROM organizations ORDER BY id LIMIT 1").map {
            Organization(id: try $0.string("id"), name: try $0.string("name"), createdAt: try $0.date("created_at"))
        }
    }

    static func insert(_ tx: SQLTx, _ workspace: Workspace) throws {
        try tx.execute(
            "INSERT INTO workspaces (id, name, mode, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            workspace.id,
            workspace.name,
            workspace.mode.rawValue,
            workspace.createdAt,
            workspace.updatedAt
        )
    }

    static func updateWorkspace(_ tx: SQLTx, _ workspace: Workspace) throws {
        try tx.execute(
            "UPDATE workspaces SET name = ?, updated_at = ? WHERE id = ?",
            workspace.name,
            workspace.updatedAt,
            workspace.id
        )
    }

    static func workspace(_ tx: SQLTx, id: String) throws -> Workspace? {
        try prefetchWorkspace(tx, id: id).one(workspace(from:))
    }

    /// The workspace's row, sent now and read later (`SQLTx.prefetch`).
    static func prefetchWorkspace(_ tx: SQLTx, id: String) -> SQLPending {
        tx.prefetch("SELECT * FROM workspaces WHERE id = ?", id)
    }

    static func workspaces(_ tx: SQLTx, ids: [String]) throws -> [Workspace] {
        guard !ids.isEmpty else { return [] }
        return try tx.query("SELECT * FROM workspaces WHERE id IN (\(tx.placeholders(ids.count)))", ids.map(SQLValue.text))
            .map(workspace(from:))
    }

    /// A page of workspaces, only sandboxes when `sandboxOnly`, only `ids` when given.
    static func workspaces(_ tx: SQLTx, after: String?, limit: Int, sandboxOnly: Bool = false, ids: [String]? = nil) throws -> [Workspace] {
        var sql = "SELECT * FROM workspaces WHERE id > ?"
        var arguments: [SQLValue] = [.text(after ?? "")]
        if sandboxOnly { sql += " AND mode = 'sandbox'" }
        if let ids {
            guard !ids.isEmpty else { return [] }
            sql += " AND id IN (\(tx.placeholders(ids.count)))"
            arguments += ids.map(SQLValue.text)
        }
        return try tx.query(sql + " ORDER BY id LIMIT ?", arguments + [.int(Int64(limit))]).map(workspace(from:))
    }

    static func workspace(from row: SQLRow) throws -> Workspace {
        Workspace(
            id: try row.string("id"),
            name: try row.string("name"),
            mode: WorkspaceMode(rawValue: try row.string("mode")) ?? .live,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }
}
