import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The Authorize flow's two routes: `GET /v1/integrations/{integration_id}/authorize` behind the
/// API's authentication (`routes`), and `GET /integrations/callback` at the root with none of
/// ours (`callback`): the provider sends the browser there, and the state is the credential.
struct AuthorizeRoutes {
    let connections: ConnectionService

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get("integrations/:integration_id/authorize", use: authorize)
    }

    var callback: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get("integrations/callback", use: complete)
    }

    /// 302 to the provider, or (`?format=json`) 200 `{"authorization_url", "connection_id", "expires_at"}`.
    @Sendable func authorize(_ request: Request, context: AppRequestContext) async throws -> Response {
        let format = request.query("format")
        guard format == nil || format == "json" || format == "redirect" else {
            throw APIError.validation("`format` must be json or redirect.", field: "format")
        }
        let start = try await connections.startAuthorization(
            caller: try context.caller(),
            integrationID: try context.parameters.require("integration_id"),
            workspaceID: request.query("workspace")
        )
        var headers: HTTPFields = [.cacheControl: "no-store"]
        guard format == "json" else {
            headers[.location] = start.url
            return Response(status: .found, headers: headers)
        }
        headers[.contentType] = "application/json"
        let body = JSONValue.object([
            "authorization_url": .string(start.url), "connection_id": .string(start.connection.id),
            "expires_at": .string(RFC3339.format(start.expiresAt)),
        ])
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.jsonText)))
    }

    @Sendable func complete(_ request: Request, context: AppRequestContext) async throws -> Response {
        var query: [String: String] = [:]
        for item in request.queryItems where query[item.name] == nil { query[item.name] = item.value }
        do {
            switch try await connections.completeAuthorization(query: query, audit: context.audit()) {
            case .connected(let connection, let integration, let workspace):
                return AuthorizePage.connected(connection, integration: integration, workspace: workspace)
            case .refused(let title, let message):
                return AuthorizePage.failed(status: .badRequest, title: title, message: message)
            }
        } catch let error as APIError {
            return AuthorizePage.failed(status: error.status, title: error.title, message: error.detail)
        } catch {
            let problem = APIError.internalError(context.requestID)
            return AuthorizePage.failed(status: problem.status, title: problem.title, message: problem.detail)
        }
    }
}

/// The pages the callback answers a browser with: self-contained, every outside text escaped,
/// never cached, no Referer leaving them (their address held the code).
enum AuthorizePage {
    static func connected(_ connection: Connection, integration: String, workspace: String) -> Response {
        let body = """
            <p>Connected <strong>\(FrontPage.escape(integration))</strong> to the workspace <strong>\(FrontPage.escape(workspace))</strong>.
            You can close this window.</p>
            <p>Connection <code>\(FrontPage.escape(connection.id))</code>, authorized at \(connection.lastAuthorizedAt.map { FrontPage.escape(RFC3339.format($0)) } ?? "now").</p>
            """
        return PortalInvitePage.page(status: .ok, title: "Connected", body: body)
    }

    static func failed(status: HTTPResponse.Status, title: String, message: String) -> Response {
        let body = """
            <p>\(FrontPage.escape(message))</p>
            <p>The connection's <code>last_error</code> and the activity log say the same.</p>
            """
        return PortalInvitePage.page(status: status, title: title, body: body)
    }
}
