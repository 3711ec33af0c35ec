import Foundation
import Hummingbird
import NIOCore
import Prometheus

/// The front page, the API's description, probes and metrics: outside `/v1` and without
/// authentication.
enum SystemRoutes {
    /// docs/openapi.yaml, compiled into the binary by Plugins/EmbedOpenAPI so that a binary copied
    /// anywhere serves the document it was built with; made into a buffer once.
    static let openAPIDocument = ByteBuffer(string: OpenAPIDocument.yaml)

    static func add(to router: Router<AppRequestContext>, database: Database, registry: PrometheusCollectorRegistry, publicURL: String) {
        router.get("/") { request, _ -> Response in
            FrontPage.response(to: request, publicURL: publicURL)
        }
        router.get("/openapi.yaml") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: Self.openAPIDocument))
        }
        router.get("/healthz") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string: #"{"status":"ok"}"#)))
        }
        router.get("/readyz") { _, _ -> Response in
            do {
                _ = try await database.read { tx in try tx.query("SELECT 1 AS one") }
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: .init(string: #"{"status":"ready","database":"ok"}"#))
                )
            } catch {
                return Response(
                    status: .serviceUnavailable,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: .init(string: #"{"status":"unavailable","database":"unreachable"}"#))
                )
            }
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: .init(bytes: registry.emitToBuffer()))
            )
        }
    }
}
