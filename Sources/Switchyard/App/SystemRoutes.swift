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
            guard await database.isReachable() else {
                return Response(
                    status: .serviceUnavailable,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: .init(string: #"{"status":"unavailable","database":"unreachable"}"#))
                )
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: .init(string: #"{"status":"ready","database":"ok"}"#))
            )
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
