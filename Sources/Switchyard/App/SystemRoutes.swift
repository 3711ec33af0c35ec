import Foundation
import Hummingbird
import Prometheus

/// Probes and metrics, outside `/v1` and without authentication.
enum SystemRoutes {
    static func add(to router: Router<AppRequestContext>, database: Database, registry: PrometheusCollectorRegistry) {
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
