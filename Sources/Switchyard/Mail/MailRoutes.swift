import Foundation
import Hummingbird

extension MailMessage: ResponseEncodable {}

/// `GET /v1/outbox`: the local mail viewer, for owners and admins.
struct MailRoutes {
    let mail: MailService
    let identity: IdentityService

    func add(to router: Router<AppRequestContext>) {
        router.get("v1/outbox") { request, context in
            let principal = try await identity.principal(context)
            try principal.require(Role.userManagers, to: "read the outbox")
            try principal.requireOrganizationWide(to: "read the outbox")
            var status: MailMessage.Status?
            if let value = request.query("status") {
                guard let parsed = MailMessage.Status(rawValue: value) else {
                    throw APIError.validation("`status` must be one of queued, sent, logged, failed.", field: "status")
                }
                status = parsed
            }
            let limit = try Validate.limit(request.query("limit"))
            return Page(try await mail.list(status: status, after: request.query("after"), limit: limit), limit: limit, cursor: \.id)
        }
    }
}
