import Foundation
import Hummingbird

extension App: ResponseEncodable {}
extension PermissionTable: ResponseEncodable {}

/// An app with its one-time password: the answer to a registration or a reset, the only time the
/// password is shown.
struct AppWithPasswordAnswer: ResponseEncodable {
    var app: App
    var oneTimePassword: String

    enum Keys: String, CodingKey { case oneTimePassword = "one_time_password" }

    func encode(to encoder: Encoder) throws {
        try app.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(oneTimePassword, forKey: .oneTimePassword)
    }
}

struct OfferedPermissions: ResponseEncodable {
    var data: [OfferedPermission]
}

/// `/v1/apps…` (admins) and `/v1/workspaces/{ws}/permissions`.
struct AppRoutes {
    let authenticator: Authenticator
    let apps: AppService
    let activity: ActivityService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post("apps", use: create)
            .get("apps", use: list)
            .get("apps/:app_id", use: app)
            .patch("apps/:app_id", use: update)
            .post("apps/:app_id/revoke", use: revoke)
            .post("apps/:app_id/developer/invite", use: resendInvite)
            .delete("apps/:app_id/developer", use: removeDeveloper)
            .put("apps/:app_id/developer", use: linkDeveloper)
            .post("apps/:app_id/one-time-password", use: resetOneTimePassword)
            .get("apps/:app_id/permissions", use: permissionTable)
            .get("apps/:app_id/activity", use: activityList)
            .get("apps/:app_id/activity.csv", use: activityCSV)
            .get("workspaces/:workspace_id/permissions", use: offered)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<AppWithPasswordAnswer> {
        let principal = try await authenticator.principal(context)
        let created = try await apps.refusalsRecorded("app.created", appID: nil, by: principal, audit: context.audit()) {
            try AppService.requireManager(principal)
            var request = request
            let input = try await request.decodeBody(CreateAppInput.self, limit: maximumBodySize)
            return try await apps.create(input, by: principal, audit: context.audit())
        }
        return EditedResponse(status: .created, response: AppWithPasswordAnswer(app: created.app, oneTimePassword: created.oneTimePassword))
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<App> {
        let principal = try await authenticator.principal(context)
        let limit = try Validate.limit(request.query("limit"))
        let status: App.Status? = try Validate.choice(request.query("status"), field: "status")
        let found = try await apps.list(by: principal, status: status, query: request.query("q"), after: request.query("after"), limit: limit)
        return Page(found, limit: limit, cursor: \.id)
    }

    @Sendable func app(_ request: Request, context: AppRequestContext) async throws -> App {
        let principal = try await authenticator.principal(context)
        return try await apps.app(id: try context.parameters.require("app_id"), by: principal)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> App {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        return try await apps.refusalsRecorded("app.updated", appID: id, by: principal, audit: context.audit()) {
            try AppService.requireManager(principal)
            var request = request
            let input = try await request.decodeBody(UpdateAppInput.self, limit: maximumBodySize)
            return try await apps.update(id: id, input, by: principal, audit: context.audit())
        }
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> App {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        return try await apps.refusalsRecorded("app.revoked", appID: id, by: principal, audit: context.audit()) {
            try await apps.revoke(id: id, by: principal, audit: context.audit())
        }
    }

    @Sendable func resendInvite(_ request: Request, context: AppRequestContext) async throws -> App {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        return try await apps.refusalsRecorded("app.invite_sent", appID: id, by: principal, audit: context.audit()) {
            try await apps.resendInvite(id: id, by: principal, audit: context.audit())
        }
    }

    @Sendable func removeDeveloper(_ request: Request, context: AppRequestContext) async throws -> App {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        return try await apps.refusalsRecorded("app.developer_removed", appID: id, by: principal, audit: context.audit()) {
            try await apps.removeDeveloper(id: id, by: principal, audit: context.audit())
        }
    }

    @Sendable func linkDeveloper(_ request: Request, context: AppRequestContext) async throws -> App {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        return try await apps.refusalsRecorded("app.developer_linked", appID: id, by: principal, audit: context.audit()) {
            try AppService.requireManager(principal)
            var request = request
            let input = try await request.decodeBody(LinkDeveloperInput.self, limit: maximumBodySize)
            return try await apps.linkDeveloper(id: id, email: input.email, by: principal, audit: context.audit())
        }
    }

    @Sendable func resetOneTimePassword(_ request: Request, context: AppRequestContext) async throws -> AppWithPasswordAnswer {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        let reset = try await apps.refusalsRecorded("app.one_time_password_reset", appID: id, by: principal, audit: context.audit()) {
            try await apps.resetOneTimePassword(id: id, by: principal, audit: context.audit())
        }
        return AppWithPasswordAnswer(app: reset.app, oneTimePassword: reset.oneTimePassword)
    }

    @Sendable func permissionTable(_ request: Request, context: AppRequestContext) async throws -> PermissionTable {
        let principal = try await authenticator.principal(context)
        return try await apps.permissionTable(id: try context.parameters.require("app_id"), by: principal)
    }

    @Sendable func activityList(_ request: Request, context: AppRequestContext) async throws -> Page<ActivityEntry> {
        let principal = try await authenticator.principal(context)
        let limit = try Validate.limit(request.query("limit"))
        let entries = try await apps.activity(
            id: try context.parameters.require("app_id"),
            by: principal,
            after: request.query("after"),
            limit: limit
        )
        return Page(entries, limit: limit, cursor: \.id)
    }

    @Sendable func activityCSV(_ request: Request, context: AppRequestContext) async throws -> Response {
        let principal = try await authenticator.principal(context)
        let id = try context.parameters.require("app_id")
        // The first page checks the caller and that the app exists.
        _ = try await apps.activity(id: id, by: principal, after: nil, limit: 1)
        return try await ActivityRoutes.csv(ActivityFilter(appID: id), activity: activity, filename: "\(id)-activity.csv")
    }

    @Sendable func offered(_ request: Request, context: AppRequestContext) async throws -> OfferedPermissions {
        let principal = try await authenticator.principal(context)
        return OfferedPermissions(data: try await apps.offeredPermissions(workspaceID: try context.parameters.require("workspace_id"), by: principal))
    }
}
