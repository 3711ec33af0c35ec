import Foundation
import HTTPTypes
import Hummingbird
import Metrics

/// The `/v1` group's middleware for apps' calls (`Authorization: Bearer sya_…`), after
/// `AuthenticationMiddleware`: gives the request an `AppCallNote`, which the authenticator fills in
/// (the app; its rate limit, checked before the call's body runs), then stamps the answer —
/// success or problem — with `RateLimit-Limit`, `-Remaining` and `-Reset`, and queues the call's
/// `app.request` activity entry. Any other request passes at the cost of a prefix check.
struct AppCallMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let authenticator: Authenticator
    let limiter: AppRateLimiter
    let batcher: ActivityBatcher
    let maximumBodySize: Int
    /// 429 entries an app can cause at will, as fast as it likes: at most 60 a minute per app are
    /// written, the rest counted (`switchyard_activity_unrecorded_total`), as refusals are.
    let refusedEntries = FloodBudget(perMinute: 60)

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard case .bearer(let token) = context.credentials, token.utf8.starts(with: "sya_".utf8) else {
            return try await next(request, context)
        }
        let note = AppCallNote()
        var context = context
        context.appCall = note
        do {
            var response = try await next(request, context)
            if let state = await finish(request, context: context, note: note, status: response.status) {
                Self.stamp(&response.headers, state)
            }
            return response
        } catch {
            // Made the problem it would become anyway, so the answer can carry the headers.
            var problem =
                error as? APIError
                ?? ProblemMiddleware.problem(for: error, path: request.uri.path, maximumBodySize: maximumBodySize, context: context)
            if let state = await finish(request, context: context, note: note, status: problem.status) {
                Self.stamp(&problem.headers, state)
            }
            throw problem
        }
    }

    /// Queues the call's entry and answers its rate-limit figures; nil when the token named no app
    /// (a refused credential is recorded as such already, and is no app's call).
    private func finish(
        _ request: Request,
        context: Context,
        note: AppCallNote,
        status: HTTPResponse.Status
    ) async
        -> AppRateLimitState?
    {
        var state = note.rateLimit
        let app: AppPrincipal
        if let noted = note.app {
            app = noted
        } else {
            // Answered before any service looked the token up (a body refused first): still the
            // app's call, so it is found, counted and logged; a 401 was a refused token.
            guard status != .unauthorized, let credentials = context.credentials, let found = (try? await authenticator.app(of: credentials)) ?? nil
            else {
                return nil
            }
            app = found
            state = limiter.charge(found.id, rate: limiter.rate(for: found))
        }
        if status != .tooManyRequests || refusedEntries.allow(app.id, now: limiter.clock.now) {
            batcher.add(Self.entry(request, context: context, app: app, workspaceID: note.workspaceID, status: status, now: limiter.clock.now))
        } else {
            Counter(label: "switchyard_activity_unrecorded_total", dimensions: [("action", "app.request")]).increment()
        }
        return state
    }

    static func stamp(_ headers: inout HTTPFields, _ state: AppRateLimitState) {
        headers[.rateLimitLimit] = String(state.limit)
        headers[.rateLimitRemaining] = String(state.remaining)
        headers[.rateLimitReset] = String(state.reset)
    }

    /// `GET /v1/workspaces/ws_…/records/work_order/rec_… 200`, by the app, about the workspace the
    /// service noted or the path names.
    static func entry(
        _ request: Request,
        context: Context,
        app: AppPrincipal,
        workspaceID: String?,
        status: HTTPResponse.Status,
        now: Date
    ) -> ActivityEntry {
        let path = request.uri.path
        return ActivityEntry(
            id: ID.make("act", at: now),
            occurredAt: now,
            actorType: "app",
            actorId: app.id,
            actorLabel: app.name,
            action: "app.request",
            targetType: nil,
            targetId: nil,
            targetLabel: nil,
            workspaceId: workspaceID ?? Self.workspaceID(inPath: path),
            workspaceName: nil,
            appId: app.id,
            ip: context.remoteIP,
            outcome: status.code < 400 ? .success : .failure,
            detail: "\(request.method.rawValue) \(path.prefix(500)) \(status.code)",
            requestId: context.requestID
        )
    }

    /// The `ws_…` of `/v1/workspaces/{ws}` or `/v1/workspaces/{ws}/…`, when it looks like an id.
    static func workspaceID(inPath path: String) -> String? {
        // A scan of the bytes, not a split: this runs on every app call.
        let utf8 = path.utf8
        let prefix = "/v1/workspaces/".utf8
        guard utf8.starts(with: prefix) else { return nil }
        let start = utf8.index(utf8.startIndex, offsetBy: prefix.count)
        let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
        let id = utf8[start..<end]
        guard id.starts(with: "ws_".utf8), id.count <= 64,
            id.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 })
        else { return nil }
        return String(decoding: id, as: UTF8.self)
    }
}

extension HTTPField.Name {
    // The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers); names are valid tokens.
    static let rateLimitLimit = rateLimitField("RateLimit-Limit")
    static let rateLimitRemaining = rateLimitField("RateLimit-Remaining")
    static let rateLimitReset = rateLimitField("RateLimit-Reset")

    private static func rateLimitField(_ name: String) -> Self {
        guard let field = Self(name) else { preconditionFailure("\(name) is not a valid header name") }
        return field
    }
}
