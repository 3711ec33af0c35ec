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
    /// finished mail and activity entries past their retention.
    public func sweep() async throws {
        let now = clock.now
        try await database.write { tx in try Idempotency.sweep(tx, now: now) }
        try await sessions.deleteExpiredSessions()
        if let days = configuration.outboxRetentionDays { try await mail.deleteFinished(olderThanDays: days) }
        if let days = configuration.activityRetentionDays { try await activity.deleteOlderThan(days: days) }
    }
}

/// Runs `AppServices.sweep` every ten minutes until shutdown.
struct HousekeepingService: Service {
    let services: AppServices
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await services.sweep() } catch { logger.warning("housekeeping: \(error)") }
                try? await Task.sleep(for: .seconds(600))
            }
        }
    }
}

/// Delivers the outbox in the background until shutdown.
struct MailSenderService: Service {
    let sender: MailSender
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    // Drain everything due before sleeping, so a burst is not paced by the interval.
                    while try await sender.deliverDue() > 0 && !Task.isCancelled {}
                } catch {
                    logger.warning("mail sender: \(error)")
                }
                try? await Task.sleep(for: interval)
            }
        }
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
        services: [
            MailSenderService(sender: services.mailSender, interval: configuration.mailPollInterval, logger: logger),
            HousekeepingService(services: services, logger: logger),
        ],
        onServerRunning: onServerRunning,
        logger: logger
    )
}
