import Foundation
import Hummingbird

extension MailMessage: ResponseEncodable {}

/// `GET /v1/outbox`: the local mail viewer, for owners and admins.
struct MailRoutes {
    let authenticator: Authenticator
    let mail: MailService

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self).get(use: list)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Page<MailMessage> {
        let principal = try await authenticator.principal(context)
        try principal.require(Role.userManagers, to: "read the outbox")
        try principal.requireOrganizationWide(to: "read the outbox")
        let status: MailMessage.Status? = try Validate.choice(request.query("status"), field: "status")
        let limit = try Validate.limit(request.query("limit"))
        return Page(try await mail.list(status: status, after: request.query("after"), limit: limit), limit: limit, cursor: \.id)
    }
}
