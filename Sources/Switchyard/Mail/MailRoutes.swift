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
        let found = try await mail.list(status: status, after: request.query("after"), limit: limit)
        let messages = principal.user?.role == .owner ? found : found.map(Self.withoutLinks)
        return Page(messages, limit: limit, cursor: \.id)
    }

    /// Admins see messages without the secret of their links (invites, password resets): an admin
    /// reading a reset mailed to an owner must not be able to take the owner's account. Owners,
    /// who could do anything those links do, see them whole (a laptop without SMTP needs them).
    static func withoutLinks(_ message: MailMessage) -> MailMessage {
        var message = message
        var body = message.body
        var searchFrom = body.startIndex
        while let range = body.range(of: Invites.prefix, range: searchFrom..<body.endIndex) {
            let end = body[range.upperBound...].firstIndex { !($0.isASCII && ($0.isLetter || $0.isNumber)) } ?? body.endIndex
            body.replaceSubrange(range.upperBound..<end, with: "[hidden]")
            searchFrom = body.index(range.upperBound, offsetBy: "[hidden]".count)
        }
        message.body = body
        return message
    }
}
