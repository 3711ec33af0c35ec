import Foundation

/// The organization and its workspaces; every feature finds its workspace here first.
public struct WorkspaceService: Sendable {
    let database: Database
    let clock: any WallClock
    let activity: ActivityService

    public func organization(by principal: Principal) async throws -> Organization {
        try principal.require(Role.readers, to: "read the organization")
        guard let organization = try await database.read({ tx in try WorkspaceStore.organization(tx) }) else {
            throw APIError.notFound("organization", "-")
        }
        return organization
    }

    /// Whether the caller may create a workspace of this mode at all.
    public func authorizeCreate(_ input: CreateWorkspaceInput, by principal: Principal) throws {
        try principal.require(Role.userManagers, to: "create workspaces")
        if principal.workspaceLimit != nil {
            throw APIError.forbidden("A token limited to workspaces cannot create workspaces; use a token for all workspaces.")
        }
        if principal.mode == .test && input.mode != .sandbox {
            throw APIError.forbidden("A test token (sy_test_…) can only create sandbox workspaces: send \"mode\": \"sandbox\".")
        }
    }

    /// Creates a workspace in the caller's transaction (`authorizeCreate` first).
    public func create(_ tx: SQLTx, _ input: CreateWorkspaceInput, by principal: Principal, audit: AuditContext) throws -> Workspace {
        let name = try Validate.name(input.name)
        let now = clock.now
        let workspace = Workspace(id: ID.make("ws", at: now), name: name, mode: input.mode ?? .live, createdAt: now, updatedAt: now)
        try WorkspaceStore.insert(tx, workspace)
        try record(tx, "workspace.created", workspace, by: principal, audit: audit)
        return workspace
    }

    public func list(by principal: Principal, after: String?, limit: Int) async throws -> [Workspace] {
        try principal.requireReader(to: "list workspaces")
        // Filtered in SQL, so a page is never cut short by workspaces the caller cannot see.
        let sandboxOnly = principal.mode == .test
        let ids = principal.workspaceLimit
        return try await database.read { tx in
            try WorkspaceStore.workspaces(tx, after: after, limit: limit, sandboxOnly: sandboxOnly, ids: ids)
        }
    }

    /// The workspace, if it exists and the caller may reach it.
    public func workspace(id: String, by principal: Principal) async throws -> Workspace {
        try await database.read { tx in try workspace(tx, id: id, by: principal) }
    }

    /// The workspace, if it exists and the caller may reach it, in the caller's transaction:
    /// features call this first.
    public func workspace(_ tx: SQLTx, id: String, by principal: Principal) throws -> Workspace {
        try principal.requireReader(to: "use workspaces")
        guard ID.isValid(id, prefix: "ws") else { throw APIError.notFound("workspace", id) }
        return try workspace(WorkspaceStore.prefetchWorkspace(tx, id: id), id: id, by: principal)
    }

    /// `workspace(_:id:by:)` from its row sent earlier (`prefetchWorkspace`).
    public func workspace(_ pending: SQLPending, id: String, by principal: Principal) throws -> Workspace {
        try principal.requireReader(to: "use workspaces")
        guard ID.isValid(id, prefix: "ws"), let workspace = try pending.one(WorkspaceStore.workspace(from:)) else {
            throw APIError.notFound("workspace", id)
        }
        try principal.requireAccess(to: workspace)
        return workspace
    }

    /// The workspace's row, sent now (`SQLTx.prefetch`), for `workspace(_:id:by:)` once the caller is known.
    public func prefetchWorkspace(_ tx: SQLTx, id: String) -> SQLPending {
        WorkspaceStore.prefetchWorkspace(tx, id: id)
    }

    /// Whether the caller may use a workspace known to exist, for reads that found it by a join.
    public func requireAccess(_ principal: Principal, workspaceID: String, mode: WorkspaceMode) throws {
        try principal.requireReader(to: "use workspaces")
        try principal.requireAccess(to: workspaceID, mode: mode)
    }

    public func update(id: String, _ input: UpdateWorkspaceInput, by principal: Principal, audit: AuditContext) async throws -> Workspace {
        var workspace = try await self.workspace(id: id, by: principal)
        try principal.require(Role.userManagers, to: "change workspaces")
        if let mode = input.mode, mode != workspace.mode {
            throw APIError.validation("`mode` is fixed when a workspace is created; create a \(mode.rawValue) workspace instead.", field: "mode")
        }
        if let name = input.name { workspace.name = try Validate.name(name) }
        workspace.updatedAt = clock.now
        let updated = workspace
        try await database.write { tx in
            try WorkspaceStore.updateWorkspace(tx, updated)
            try record(tx, "workspace.updated", updated, by: principal, audit: audit)
        }
        return updated
    }

    private func record(_ tx: SQLTx, _ action: String, _ workspace: Workspace, by principal: Principal, audit: AuditContext) throws {
        let actor = principal.audit(from: audit)
        try activity.record(
            tx,
            actor,
            action: action,
            targetType: "workspace",
            targetID: workspace.id,
            targetLabel: workspace.name,
            workspaceID: workspace.id
        )
    }
}
