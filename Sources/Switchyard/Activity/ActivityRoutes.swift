import Foundation
import Hummingbird
import NIOCore

extension ActivityEntry: ResponseEncodable {}

/// `GET /v1/activity` (JSON, newest first, cursor pages) and `GET /v1/activity.csv` (the same
/// filters, every matching entry, streamed page by page).
struct ActivityRoutes {
    let authenticator: Authenticator
    let activity: ActivityService

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get("activity", use: list)
            .get("activity.csv", use: export)
    }

    /// Owners and admins with an organization-wide credential read the log.
    private func authorize(_ context: AppRequestContext, to action: String) async throws {
        let principal = try await authenticator.principal(context)
        try principal.require(Role.userManagers, to: action)
        try principal.requireOrganizationWide(to: action)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<ActivityEntry> {
        try await authorize(context, to: "read the activity log")
        let filter = try Self.filter(request)
        return Page(try await activity.list(filter), limit: filter.limit, cursor: \.id)
    }

    @Sendable func export(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await authorize(context, to: "export the activity log")
        return try await Self.csv(try Self.filter(request), activity: activity, filename: "activity.csv")
    }

    /// Every entry `filter` matches as CSV, streamed page by page; the first page is read before
    /// answering, so a failure is still an error status.
    static func csv(_ filter: ActivityFilter, activity: ActivityService, filename: String) async throws -> Response {
        var start = filter
        start.limit = 500
        let first = try await activity.list(start)
        return Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(filename)\""],
            body: ResponseBody { [start] writer in
                var filter = start
                try await writer.write(ByteBuffer(string: ActivityCSV.line(ActivityCSV.header)))
                var page = first
                while !page.isEmpty {
                    try await writer.write(ByteBuffer(string: page.map(ActivityCSV.row).joined()))
                    guard page.count == filter.limit, let last = page.last else { break }
                    filter.after = last.id
                    page = try await activity.list(filter)
                }
                try await writer.finish(nil)
            }
        )
    }

    static func filter(_ request: Request) throws -> ActivityFilter {
        func time(_ name: String) throws -> Date? {
            guard let value = request.query(name) else { return nil }
            guard let date = RFC3339.parse(value) else {
                throw APIError.validation("`\(name)` must be an RFC 3339 time such as 2026-01-31T00:00:00Z.", field: name)
            }
            return date
        }
        var outcome: ActivityEntry.Outcome?
        if let value = request.query("outcome") {
            guard let parsed = ActivityEntry.Outcome(rawValue: value) else {
                throw APIError.validation("`outcome` must be success or failure.", field: "outcome")
            }
            outcome = parsed
        }
        return ActivityFilter(
            action: request.query("action"),
            actorID: request.query("actor_id"),
            workspaceID: request.query("workspace_id"),
            targetID: request.query("target_id"),
            outcome: outcome,
            since: try time("since"),
            until: try time("until"),
            after: request.query("after"),
            limit: try Validate.limit(request.query("limit"))
        )
    }
}
