import Foundation
import Hummingbird
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import ServiceLifecycle

/// Everything a running Switchyard holds, built once and handed to routes and workers.
public struct AppServices: Sendable {
    public let configuration: AppConfiguration
    public let database: Database
    public let clock: any WallClock
    public let activity: ActivityService
    public let mail: MailService
    public let mailSender: MailSender
    public let identity: IdentityService
    public let events: EventService
    public let objectTypes: ObjectTypeService
    public let records: RecordService

    public init(configuration: AppConfiguration, database: Database, clock: any WallClock = SystemClock(), logger: Logger) {
        self.configuration = configuration
        self.database = database
        self.clock = clock
        activity = ActivityService(database: database, clock: clock)
        mail = MailService(database: database, clock: clock)
        let smtp = configuration.smtpURL.map { SMTPClient(url: $0, from: configuration.mailFrom) }
        mailSender = MailSender(database: database, clock: clock, smtp: smtp, logger: logger)
        identity = IdentityService(
            database: database,
            clock: clock,
            passwords: Passwords(cost: configuration.bcryptCost),
            activity: activity,
            mail: mail,
            publicURL: configuration.publicURL
        )
        events = EventService(
            database: database,
            clock: clock,
            identity: identity,
            isRecordEventType: { tx, workspaceID, type in try ObjectTypeService.ownsEventType(tx, workspaceID: workspaceID, type: type) }
        )
        objectTypes = ObjectTypeService(
            database: database,
            clock: clock,
            identity: identity,
            activity: activity,
            events: events,
            maximumFields: configuration.maximumDataFields
        )
        records = RecordService(
            database: database,
            clock: clock,
            identity: identity,
            types: objectTypes,
            activity: activity,
            events: events
        )
    }

    /// Opens the database the configuration names and brings its schema up to date.
    public static func open(_ configuration: AppConfiguration, clock: any WallClock = SystemClock(), logger: Logger) async throws -> AppServices {
        let database = try await Database.open(configuration.databaseURL, logger: logger)
        try await Migrator.migrate(database, now: clock.now)
        return AppServices(configuration: configuration, database: database, clock: clock, logger: logger)
    }
}

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

public func buildRouter(_ services: AppServices) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    let configuration = services.configuration
    let knownRoutes = KnownRoutes()
    router.add(
        middleware: ProblemMiddleware(
            maximumBodySize: configuration.maximumBodySize,
            routes: knownRoutes,
            trustedProxies: configuration.trustedProxies
        )
    )
    router.add(middleware: MetricsMiddleware())
    SystemRoutes.add(to: router, database: services.database, registry: AppMetrics.registry, publicURL: configuration.publicURL)
    router.add(middleware: AuthenticationMiddleware())
    IdentityRoutes(
        identity: services.identity,
        maximumBodySize: configuration.maximumBodySize,
        secureCookies: configuration.publicURL.hasPrefix("https:")
    ).add(to: router)
    ActivityRoutes(activity: services.activity, identity: services.identity).add(to: router)
    MailRoutes(mail: services.mail, identity: services.identity).add(to: router)
    ObjectRoutes(types: services.objectTypes, records: services.records, maximumBodySize: configuration.maximumBodySize).add(to: router)
    EventRoutes(events: services.events, maximumBodySize: configuration.maximumBodySize).add(to: router)
    knownRoutes.register(router.routes)
    return router
}

extension AppServices {
    /// Removes what has outlived its use: idempotency keys past 24 hours, expired sessions, and
    /// finished mail and activity entries past their retention.
    public func sweep() async throws {
        let now = clock.now
        try await database.write { tx in try Idempotency.sweep(tx, now: now) }
        try await identity.deleteExpiredSessions()
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
