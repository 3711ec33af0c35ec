import Foundation

/// Apps as admins manage them: registration (with the developer's invite and the one-time
/// password), the grants, the developer, revoke, the activity of an app.
public final class AppService: Sendable {
    let database: Database
    let clock: any WallClock
    let activity: ActivityService
    let mail: MailService
    let workspaces: WorkspaceService
    let objectTypes: ObjectTypeService
    let webhooks: WebhookService
    let publicURL: String

    init(
        database: Database,
        clock: any WallClock,
        activity: ActivityService,
        mail: MailService,
        workspaces: WorkspaceService,
        objectTypes: ObjectTypeService,
        webhooks: WebhookService,
        publicURL: String
    ) {
        self.database = database
        self.clock = clock
        self.activity = activity
        self.mail = mail
        self.workspaces = workspaces
        self.objectTypes = objectTypes
        self.webhooks = webhooks
        self.publicURL = publicURL
    }

    /// An app and the one-time password made for it, shown once.
    public struct WithPassword: Sendable {
        public var app: App
        public var oneTimePassword: String
    }

    static let oneTimePasswordLifetime: TimeInterval = 3 * 24 * 3600

    /// Apps are organization-wide, like users: managed by owners, admins and integration admins
    /// with an unrestricted live credential.
    static func requireManager(_ principal: Principal) throws {
        try principal.require(Role.integrationManagers, to: "manage apps")
        try principal.requireOrganizationWide(to: "manage apps")
    }

    static func requireReader(_ principal: Principal) throws {
        try principal.require(Role.readers, to: "read apps")
        try principal.requireOrganizationWide(to: "read apps")
    }

    public func create(_ input: CreateAppInput, by principal: Principal, audit: AuditContext) async throws -> WithPassword {
        try Self.requireManager(principal)
        let name = try Validate.name(input.name, maximum: 100)
        let description = try Validate.name(input.description, field: "description", maximum: 2000, multiline: true)
        let category = try Self.category(input.category)
        let email = try Validate.email(input.developerEmail, field: "developer_email")
        let now = clock.now
        let password = AppStore.generateOneTimePassword()
        let app = App(
            id: ID.make("app", at: now),
            name: name,
            description: description,
            category: category,
            access: input.access,
            mode: input.mode,
            workspaces: input.workspaces,
            permissions: input.permissions,
            status: .pendingVerification,
            clientId: ID.make("cid", at: now),
            rateLimit: input.rateLimit,
            developer: App.Developer(email: email, userId: nil, invitedAt: now, linkedAt: nil, verified: false, verifiedAt: nil),
            verification: App.Verification(
                expiresAt: now.addingTimeInterval(Self.oneTimePasswordLifetime),
                triesLeft: App.oneTimePasswordTries,
                locked: false
            ),
            createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID),
            createdAt: now,
            updatedAt: now,
            revokedAt: nil
        )
        let actor = principal.audit(from: audit)
        do {
            try await database.write { [self] tx in
                try checkGrants(tx, app)
                try AppStore.insert(tx, app, otpHash: AppStore.otpDigest(appID: app.id, password: password))
                try record(tx, actor, "app.created", app, detail: "access \(app.access.rawValue), mode \(app.mode.rawValue)")
                try sendInvite(tx, app, email: email, actor: actor, now: now)
            }
        } catch StorageError.uniqueViolation {
            throw APIError.conflict("An app named \(name) exists already; app names are unique.", field: "name")
        }
        return WithPassword(app: app, oneTimePassword: password)
    }

    static func category(_ value: String) throws -> String {
        guard App.categories.contains(value) else {
            throw APIError.validation("`category` must be one of \(App.categories.joined(separator: ", ")).", field: "category")
        }
        return value
    }

    public func list(by principal: Principal, status: App.Status?, query: String?, after: String?, limit: Int) async throws -> [App] {
        try Self.requireReader(principal)
        if let after, !ID.isValid(after, prefix: "app") {
            throw APIError.validation("`after` must be an app id (the `next_after` of the previous page).", field: "after")
        }
        return try await database.read { tx in try AppStore.apps(tx, status: status, query: query, after: after, limit: limit) }
    }

    public func app(id: String, by principal: Principal) async throws -> App {
        try Self.requireReader(principal)
        return try await database.read { tx in try Self.find(tx, id) }
    }

    static func find(_ tx: SQLTx, _ id: String, forUpdate: Bool = false) throws -> App {
        guard ID.isValid(id, prefix: "app"), let app = try AppStore.app(tx, id: id, forUpdate: forUpdate) else {
            throw APIError.notFound("app", id)
        }
        return app
    }

    public func update(id: String, _ input: UpdateAppInput, by principal: Principal, audit: AuditContext) async throws -> App {
        try Self.requireManager(principal)
        let description = try input.description.map { try Validate.name($0, field: "description", maximum: 2000, multiline: true) }
        let category = try input.category.map(Self.category)
        let now = clock.now
        let actor = principal.audit(from: audit)
        return try await database.write { [self] tx in
            var app = try Self.find(tx, id, forUpdate: true)
            for (key, value) in input.fixed.sorted(by: { $0.key < $1.key }) {
                let current: String =
                    switch key {
                    case "name": app.name
                    case "access": app.access.rawValue
                    default: app.mode.rawValue
                    }
                if value.stringValue != current {
                    throw APIError.validation(
                        "`\(key)` cannot change once an app is registered; register a new app instead.",
                        field: key
                    )
                }
            }
            if app.status == .revoked { throw APIError.conflict("The app \(app.name) was revoked; it cannot change any more.") }
            var changed: [String] = []
            if let description, description != app.description {
                app.description = description
                changed.append("description")
            }
            if let category, category != app.category {
                app.category = category
                changed.append("category")
            }
            if let workspaces = input.workspaces, workspaces != app.workspaces {
                app.workspaces = workspaces
                changed.append("workspaces")
            }
            if let permissions = input.permissions, permissions != app.permissions {
                app.permissions = permissions
                changed.append("permissions")
            }
            if let rate = input.rateLimit, rate != app.rateLimit {
                app.rateLimit = rate
                changed.append("rate_limit")
            }
            guard !changed.isEmpty else { return app }
            try checkGrants(tx, app)
            app.updatedAt = now
            try AppStore.update(tx, app)
            try record(tx, actor, "app.updated", app, detail: changed.joined(separator: ", "))
            return app
        }
    }

    /// Every token and secret of the app stops working on the next request, its webhooks stop, and
    /// its developer's invite link too. Final: a revoked app is registered anew.
    public func revoke(id: String, by principal: Principal, audit: AuditContext) async throws -> App {
        try Self.requireManager(principal)
        let now = clock.now
        let actor = principal.audit(from: audit)
        return try await database.write { [self] tx in
            var app = try Self.find(tx, id, forUpdate: true)
            guard app.status != .revoked else { return app }
            app.status = .revoked
            app.revokedAt = now
            app.updatedAt = now
            try AppStore.update(tx, app)
            try AppCredentialStore.revokeAll(tx, appID: app.id, at: now)
            try Invites.revoke(tx, kind: .developer, appID: app.id, now: now)
            let stopped = try webhooks.stopEndpoints(tx, createdByApp: app.id, reason: "the app \(app.name) was revoked", now: now)
            try record(tx, actor, "app.revoked", app, detail: stopped > 0 ? "\(stopped) webhook endpoints stopped" : nil)
            return app
        }
    }

    /// Everything about the app, newest first: its calls, its tokens, and what admins and its
    /// developer did to it.
    public func activity(id: String, by principal: Principal, after: String?, limit: Int) async throws -> [ActivityEntry] {
        try principal.require(Role.userManagers.union(Role.integrationManagers), to: "read an app's activity")
        try principal.requireOrganizationWide(to: "read an app's activity")
        _ = try await database.read { tx in try Self.find(tx, id) }
        return try await activity.list(ActivityFilter(appID: id, after: after, limit: limit))
    }

    /// Runs an admin action; a refusal (4xx) is recorded in the activity log before it is answered,
    /// so the log shows what was tried and why it was refused.
    func refusalsRecorded<T: Sendable>(
        _ action: String,
        appID: String?,
        by principal: Principal,
        audit: AuditContext,
        _ body: () async throws -> T
    ) async throws -> T {
        do {
            return try await body()
        } catch let error as APIError where error.status.code < 500 {
            try? await activity.recordFailure(
                principal.audit(from: audit),
                action: action,
                detail: "\(error.status.code) \(error.slug): \(error.detail)",
                flood: true,
                targetType: appID == nil ? nil : "app",
                targetID: appID
            )
            throw error
        }
    }

    /// An activity entry about `app`, named as it is called now.
    func record(
        _ tx: SQLTx,
        _ actor: AuditContext,
        _ action: String,
        _ app: App,
        outcome: ActivityEntry.Outcome = .success,
        detail: String? = nil
    )
        throws
    {
        try activity.record(
            tx,
            actor,
            action: action,
            targetType: "app",
            targetID: app.id,
            targetLabel: app.name,
            outcome: outcome,
            detail: detail
        )
    }
}
