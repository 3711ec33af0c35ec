import Foundation
import Hummingbird
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import ServiceLifecycle

/// The process-wide metrics registry: swift-metrics has one global factory, bootstrapped once.
public enum AppMetrics {
    private static let state = NIOLockedValueBox<PrometheusCollectorRegistry?>(nil)

    public static var registry: PrometheusCollectorRegistry {
        state.withLockedValue { current in
            if let current { return current }
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            current = registry
            return registry
        }
    }
}

extension AppServices {
    /// Removes what has outlived its use: idempotency keys past 24 hours, expired sessions, and
    /// finished mail, activity entries and events past their retention.
    public func sweep() async throws {
        let now = clock.now
        try await database.write { tx in try Idempotency.sweep(tx, now: now) }
        try await sessions.deleteExpiredSessions()
        if let days = configuration.outboxRetentionDays { try await mail.deleteFinished(olderThanDays: days) }
        if let days = configuration.activityRetentionDays { try await activity.deleteOlderThan(days: days) }
        if let days = configuration.eventRetentionDays { try await events.deleteExpired(olderThanDays: days) }
    }
}

public func buildApplication(
    _ services: AppServices,
    logger: Logger,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let configuration = services.configuration
    return Application(
        router: buildRouter(services),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "switchyard"),
        services: services.workerServices(logger: logger),
        onServerRunning: onServerRunning,
        logger: logger
    )
}
