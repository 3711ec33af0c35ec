import Foundation
import Logging

/// Everything a running Switchyard holds, built once and handed to routes and workers. Features
/// are built in the order they depend on each other: nothing calls back up.
public struct AppServices: Sendable {
    public let configuration: AppConfiguration
    public let database: Database
    public let clock: any WallClock
    public let activity: ActivityService
    public let mail: MailService
    public let mailSender: MailSender
    public let authenticator: Authenticator
    public let users: UserService
    public let workspaces: WorkspaceService
    public let tokens: TokenService
    public let sessions: SessionService
    public let events: EventService
    public let objectTypes: ObjectTypeService
    public let records: RecordService
    public let outbound: OutboundHTTP
    public let webhooks: WebhookService
    public let deliveryWorker: DeliveryWorker
    public let eventTypes: EventTypeCatalog
    public let apps: AppService
    /// Apps' OAuth 2.0 endpoints (helper "oauth").
    public let oauth: OAuthService
    /// The developer portal (issue 14, helper "portal").
    public let portal: PortalService
    /// Apps' rate limits and the batched `app.request` entries (Apps/AppCallMiddleware.swift).
    public let appRateLimiter: AppRateLimiter
    public let activityBatcher: ActivityBatcher
    /// Seals secrets at rest under the installation's key.
    public let sealer: Sealer
    /// Integrations' connections to workspaces, their credentials and tokens (issue 15).
    public let connections: ConnectionService
    /// User JavaScript (connectors, custom auth, transformations): the pool of script workers.
    public let scripts: any ScriptRunner
    /// Integrations, their connectors, test runs and connector runs (issue 15, helper "integrations").
    public let integrations: IntegrationService

    public init(configuration: AppConfiguration, database: Database, clock: any WallClock = SystemClock(), logger: Logger) {
        self.configuration = configuration
        self.database = database
        self.clock = clock
        activity = ActivityService(database: database, clock: clock)
        mail = MailService(database: database, clock: clock)
        let smtp = configuration.smtpURL.map { SMTPClient(url: $0, from: configuration.mailFrom) }
        mailSender = MailSender(database: database, clock: clock, smtp: smtp, logger: logger)
        appRateLimiter = AppRateLimiter(database: database, clock: clock, defaultRate: configuration.appRateLimit, logger: logger)
        activityBatcher = ActivityBatcher(database: database, logger: logger)
        authenticator = Authenticator(
            database: database,
            clock: clock,
            activity: activity,
            resolvers: [APITokenResolver(), AppTokenResolver(), SessionResolver()],
            rateLimiter: appRateLimiter
        )
        let passwords = Passwords(cost: configuration.bcryptCost)
        users = UserService(
            database: database,
            clock: clock,
            passwords: passwords,
            activity: activity,
            mail: mail,
            publicURL: configuration.publicURL
        )
        workspaces = WorkspaceService(database: database, clock: clock, activity: activity)
        tokens = TokenService(database: database, clock: clock, activity: activity)
        sessions = SessionService(
            database: database,
            clock: clock,
            passwords: passwords,
            activity: activity,
            throttle: SignInThrottle(action: "session.created", throttledAction: "session.throttled", activity: activity, clock: clock)
        )
        let appended = EventSignal()
        events = EventService(
            database: database,
            clock: clock,
            authenticator: authenticator,
            workspaces: workspaces,
            isRecordEventType: { tx, workspaceID, type in try ObjectTypeService.ownsEventType(tx, workspaceID: workspaceID, type: type) },
            appended: appended,
            retentionDays: configuration.eventRetentionDays
        )
        objectTypes = ObjectTypeService(
            database: database,
            clock: clock,
            authenticator: authenticator,
            workspaces: workspaces,
            activity: activity,
            events: events,
            maximumFields: configuration.maximumDataFields
        )
        records = RecordService(
            clock: clock,
            authenticator: authenticator,
            workspaces: workspaces,
            types: objectTypes,
            activity: activity,
            events: events
        )
        var rng = SystemRandomNumberGenerator()
        sealer = Sealer(secretKey: configuration.secretKeyBytes ?? (0..<32).map { _ in rng.next() as UInt8 })
        scripts = ScriptPool(
            settings: ScriptPoolSettings(
                workers: configuration.scriptWorkers,
                executable: configuration.scriptWorkerExecutable ?? "/proc/self/exe",
                timeLimit: configuration.scriptTimeLimit,
                memoryLimitMB: configuration.scriptMemoryLimitMB
            ),
            logger: logger
        )
        outbound = OutboundHTTP(guard: TargetGuard(allowedNetworks: configuration.webhooks.allowedTargetNetworks))
        let sender = DeliverySender(
            database: database,
            clock: clock,
            outbound: outbound,
            settings: configuration.webhooks,
            activity: activity,
            mail: mail,
            users: users,
            transformations: WebhookTransformation(scripts: scripts),
            publicURL: configuration.publicURL,
            logger: logger
        )
        let targets = DeliveryTargets(sealer: sealer)
        webhooks = WebhookService(
            database: database,
            clock: clock,
            authenticator: authenticator,
            workspaces: workspaces,
            activity: activity,
            sealer: sealer,
            outbound: outbound,
            scripts: scripts,
            sender: sender,
            targets: targets,
            wake: appended,
            events: events,
            objectTypes: objectTypes
        )
        deliveryWorker = DeliveryWorker(
            database: database,
            clock: clock,
            events: events,
            sender: sender,
            targets: targets,
            signal: appended,
            logger: logger
        )
        eventTypes = EventTypeCatalog(authenticator: authenticator, workspaces: workspaces, objectTypes: objectTypes, events: events)
        apps = AppService(
            database: database,
            clock: clock,
            activity: activity,
            mail: mail,
            workspaces: workspaces,
            objectTypes: objectTypes,
            webhooks: webhooks,
            publicURL: configuration.publicURL
        )
        oauth = OAuthService(database: database, clock: clock, activity: activity, publicURL: configuration.publicURL)
        // Developer portal (issue 14, helper "portal").
        portal = PortalService(
            database: database,
            clock: clock,
            passwords: passwords,
            activity: activity,
            users: users,
            publicURL: configuration.publicURL
        )
        connections = ConnectionService(
            database: database,
            clock: clock,
            sealer: sealer,
            authenticator: authenticator,
            workspaces: workspaces,
            activity: activity,
            mail: mail,
            outbound: outbound,
            scripts: scripts,
            publicURL: configuration.publicURL,
            logger: logger
        )
        var runnerSettings = ConnectorRunner.Settings()
        runnerSettings.timeLimit = configuration.scriptTimeLimit
        integrations = IntegrationService(
            database: database,
            clock: clock,
            authenticator: authenticator,
            workspaces: workspaces,
            activity: activity,
            sealer: sealer,
            outbound: outbound,
            scripts: scripts,
            runner: ConnectorRunner(scripts: scripts, outbound: outbound, connections: connections, clock: clock, settings: runnerSettings)
        )
    }

    /// Opens the database the configuration names and brings its schema up to date.
    public static func open(_ configuration: AppConfiguration, clock: any WallClock = SystemClock(), logger: Logger) async throws -> AppServices {
        let database = try await Database.open(configuration.databaseURL, logger: logger)
        try await Migrator.migrate(database, now: clock.now)
        return AppServices(configuration: configuration, database: database, clock: clock, logger: logger)
    }
}
