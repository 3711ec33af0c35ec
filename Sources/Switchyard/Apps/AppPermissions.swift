import Foundation

/// A permission as the workspace offers it, for admins choosing an app's grants.
public struct OfferedPermission: Codable, Sendable {
    public var permission: String
    public var description: String
}

/// An app's grants as a table: one row per object type, and the grants of no object type.
public struct PermissionTable: Codable, Sendable {
    public struct Row: Codable, Sendable {
        public var objectType: String
        public var read: Bool
        public var create: Bool
        /// true (any field), false, or the fields (and `field=value`s) it may update.
        public var update: JSONValue
        public var delete: Bool
    }

    public var data: [Row]
    public var global: [String]
}

extension AppService {
    /// Refuses grants that do not fit the app: unknown workspaces or permissions, a live workspace
    /// for a test app, a write permission for a read app, an object type (or field, or value) a
    /// listed workspace does not have. With `"*"`, a permission applies wherever its type exists,
    /// so its type must exist in at least one workspace of the app's mode.
    func checkGrants(_ tx: SQLTx, _ app: App) throws {
        let reachable: [Workspace]
        switch app.workspaces {
        case .list(let ids):
            let found = try WorkspaceStore.workspaces(tx, ids: ids)
            for (index, id) in ids.enumerated() {
                guard let workspace = found.first(where: { $0.id == id }) else {
                    throw APIError.validation("Workspace \(id) does not exist.", field: "workspaces[\(index)]")
                }
                if app.mode == .test && workspace.mode == .live {
                    throw APIError.validation(
                        "A test app reaches only sandbox workspaces; \(id) (\(workspace.name)) is live.",
                        field: "workspaces[\(index)]"
                    )
                }
            }
            reachable = ids.compactMap { id in found.first { $0.id == id } }
        case .all:
            reachable = try WorkspaceStore.workspaces(tx, after: nil, limit: 100_000, sandboxOnly: app.mode == .test, ids: nil)
        }
        var typesByWorkspace: [String: [String: ObjectType]] = [:]
        for workspace in reachable {
            typesByWorkspace[workspace.id] = Dictionary(
                try objectTypes.objectTypes(tx, workspaceID: workspace.id).map { ($0.key, $0) },
                uniquingKeysWith: { first, _ in first }
            )
        }
        for (index, name) in app.permissions.enumerated() {
            let field = "permissions[\(index)]"
            guard let permission = Permission(name) else {
                throw APIError.validation(
                    "Unknown permission `\(name.prefix(100))`. Permissions are `<object type>:read|create|delete|update`, "
                        + "`<object type>:update:<field>`, `<object type>:update:<field>=<value>`, `events:read`, `webhooks:manage` "
                        + "or `connections:run`; GET /v1/workspaces/{id}/permissions lists them.",
                    field: field
                )
            }
            if app.access == .read && !permission.isRead {
                throw APIError.validation("A read app holds only read permissions; `\(name)` writes. Register a read_write app.", field: field)
            }
            guard case .object(let typeKey, let action) = permission.kind else { continue }
            let holders = reachable.filter { typesByWorkspace[$0.id]?[typeKey] != nil }
            switch app.workspaces {
            case .list:
                if let missing = reachable.first(where: { typesByWorkspace[$0.id]?[typeKey] == nil }) {
                    throw APIError.validation(
                        "Unknown permission `\(name)`: workspace \(missing.id) (\(missing.name)) has no object type `\(typeKey)`.",
                        field: field
                    )
                }
            case .all:
                if holders.isEmpty {
                    throw APIError.validation(
                        "Unknown permission `\(name)`: no workspace the app reaches has an object type `\(typeKey)`.",
                        field: field
                    )
                }
            }
            guard case .update(let fieldKey?, let value) = action else { continue }
            for workspace in holders {
                guard let type = typesByWorkspace[workspace.id]?[typeKey] else { continue }
                guard let dataField = type.fields.first(where: { $0.key == fieldKey }) else {
                    throw APIError.validation(
                        "Unknown permission `\(name)`: the object type `\(typeKey)` of \(workspace.id) has no field `\(fieldKey)`.",
                        field: field
                    )
                }
                if let value, let options = dataField.options, !options.contains(value) {
                    throw APIError.validation(
                        "Unknown permission `\(name)`: `\(value)` is not an option of `\(typeKey).\(fieldKey)` (\(options.joined(separator: ", "))).",
                        field: field
                    )
                }
            }
        }
    }

    /// The app's grants as a table (object type × action).
    public func permissionTable(id: String, by principal: Principal) async throws -> PermissionTable {
        try Self.requireReader(principal)
        let app = try await database.read { tx in try Self.find(tx, id) }
        var rows: [String: PermissionTable.Row] = [:]
        var global: [String] = []
        var updates: [String: [String]] = [:]
        for name in app.permissions {
            guard let permission = Permission(name) else { continue }
            guard case .object(let type, let action) = permission.kind else {
                global.append(name)
                continue
            }
            var row = rows[type] ?? PermissionTable.Row(objectType: type, read: false, create: false, update: .bool(false), delete: false)
            switch action {
            case .read: row.read = true
            case .create: row.create = true
            case .delete: row.delete = true
            case .update(nil, _): row.update = .bool(true)
            case .update(let field?, let value):
                updates[type, default: []].append(value.map { "\(field)=\($0)" } ?? field)
            }
            rows[type] = row
        }
        for (type, fields) in updates where rows[type]?.update != .bool(true) {
            rows[type]?.update = .array(fields.sorted().map(JSONValue.string))
        }
        return PermissionTable(data: rows.values.sorted { $0.objectType < $1.objectType }, global: global.sorted())
    }

    /// Every permission the workspace's object types offer, with what it allows.
    public func offeredPermissions(workspaceID: String, by principal: Principal) async throws -> [OfferedPermission] {
        try principal.require(Role.readers, to: "list permissions")
        return try await database.read { [self] tx in
            _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
            var offered: [OfferedPermission] = []
            for type in try objectTypes.objectTypes(tx, workspaceID: workspaceID) {
                let name = type.name
                offered.append(OfferedPermission(permission: "\(type.key):read", description: "Read \(name) records and list them."))
                offered.append(OfferedPermission(permission: "\(type.key):create", description: "Create \(name) records."))
                offered.append(OfferedPermission(permission: "\(type.key):update", description: "Update any field of \(name) records."))
                for field in type.fields {
                    offered.append(
                        OfferedPermission(permission: "\(type.key):update:\(field.key)", description: "Update the \(field.label) of \(name) records.")
                    )
                    for option in field.options ?? [] {
                        offered.append(
                            OfferedPermission(
                                permission: "\(type.key):update:\(field.key)=\(option)",
                                description: "Set the \(field.label) of \(name) records to \(option), and no other value."
                            )
                        )
                    }
                }
                offered.append(OfferedPermission(permission: "\(type.key):delete", description: "Delete \(name) records."))
            }
            offered.append(OfferedPermission(permission: "events:read", description: "Read the workspace's event log."))
            offered.append(
                OfferedPermission(
                    permission: "webhooks:manage",
                    description: "Manage webhook endpoints, which receive the events of the app's own records."
                )
            )
            offered.append(OfferedPermission(permission: "connections:run", description: "Run the workspace's connections' connectors."))
            return offered
        }
    }
}
