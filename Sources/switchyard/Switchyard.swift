import ArgumentParser
import Foundation
import Logging
import Switchyard

@main
struct SwitchyardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "Switchyard, the self-hosted integration hub.",
        version: SwitchyardVersion.current,
        subcommands: [Serve.self, Migrate.self, Users.self, Tokens.self, Integrations.self, ScriptWorkerCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// Options every command shares; each flag falls back to a `SWITCHYARD_*` environment variable.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "sqlite:///path or postgres://user@host:port/db?sslmode=disable|prefer|require (env SWITCHYARD_DATABASE_URL)")
    var databaseURL: String?

    @Option(help: "Folder for the SQLite file and the generated secret key (env SWITCHYARD_DATA_DIR)")
    var dataDir: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (env SWITCHYARD_LOG_LEVEL)")
    var logLevel: String?

    func value(_ flag: String?, _ variable: String) -> String? {
        flag ?? ProcessInfo.processInfo.environment["SWITCHYARD_\(variable)"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A whole-number setting from its flag or environment variable; a variable that is not a
    /// number is an error, not silently the default.
    func number(_ flag: Int?, _ variable: String) throws -> Int? {
        if let flag { return flag }
        guard let text = value(nil, variable) else { return nil }
        guard let number = Int(text) else { throw ValidationError("SWITCHYARD_\(variable) must be a whole number, not \(text)") }
        return number
    }

    func configuration() throws -> AppConfiguration {
        var configuration = AppConfiguration()
        if let dataDir = value(dataDir, "DATA_DIR") {
            configuration.dataDirectory = dataDir
            configuration.databaseURL = .sqlite(path: (dataDir as NSString).appendingPathComponent("switchyard.sqlite"))
        }
        if let url = value(databaseURL, "DATABASE_URL") {
            configuration.databaseURL = try DatabaseURL(parsing: url)
        }
        // Mail written by the command line (a new user's welcome) links to the same place as the server's.
        if let url = value(nil, "PUBLIC_URL") { configuration.publicURL = url }
        if let level = value(logLevel, "LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
            }
            configuration.logLevel = parsed
        }
        return configuration
    }

    func bootstrapLogging(_ level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "switchyard")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (migrations run first).")

    @OptionGroup var common: DatabaseOptions
    @Option(help: "Address to listen on (env SWITCHYARD_HOST; default 127.0.0.1)") var host: String?
    @Option(help: "Port to listen on (env SWITCHYARD_PORT; default 8080)") var port: Int?
    @Option(help: "The URL users reach this server at, for links in mail (env SWITCHYARD_PUBLIC_URL)") var publicURL: String?
    @Option(help: "Master key for sealing credentials, 32+ characters (env SWITCHYARD_SECRET_KEY; default: a key file in the data folder)")
    var secretKey: String?
    @Option(
        help:
            "smtp://host:port (plain), smtp+starttls://user:password@host:587 or smtps://user:password@host:465, optionally ?ca=/path/ca.pem; without it mail is logged and kept in the outbox (env SWITCHYARD_SMTP_URL)"
    )
    var smtpURL: String?
    @Option(help: "From address of outgoing mail (env SWITCHYARD_MAIL_FROM)") var mailFrom: String?
    @Option(help: "Largest request body in bytes (env SWITCHYARD_MAX_BODY_SIZE; default 1048576)") var maxBodySize: Int?
    @Option(help: "Email of the owner created on first start (env SWITCHYARD_OWNER_EMAIL)") var ownerEmail: String?
    @Option(help: "Data fields an object type may have (env SWITCHYARD_MAX_DATA_FIELDS; default 150)") var maxDataFields: Int?
    @Option(
        help:
            "A reverse proxy (address or network, e.g. 10.0.0.0/8) whose X-Forwarded-For gives the client address; repeat for several (env SWITCHYARD_TRUSTED_PROXIES, comma-separated; default none)"
    )
    var trustedProxy: [String] = []
    @Option(help: "Days delivered, logged and failed mail stays in the outbox; 0 keeps it forever (env SWITCHYARD_OUTBOX_RETENTION_DAYS; default 30)")
    var outboxRetentionDays: Int?
    @Option(help: "Days activity entries are kept; 0 keeps them forever (env SWITCHYARD_ACTIVITY_RETENTION_DAYS; default 0)")
    var activityRetentionDays: Int?
    @Option(
        help:
            "Networks webhook URLs may reach although private or loopback, e.g. 127.0.0.0/8,::1/128 (env SWITCHYARD_ALLOWED_TARGET_NETWORKS; default none)"
    )
    var allowedTargetNetworks: String?
    @Option(
        help:
            "Wait before each delivery attempt, the first being the first attempt (env SWITCHYARD_RETRY_SCHEDULE; default 0,5s,5m,30m,2h,5h,10h,10h)"
    )
    var retrySchedule: String?
    @Option(help: "Seconds a webhook receiver has to answer (env SWITCHYARD_WEBHOOK_TIMEOUT; default 15)")
    var webhookTimeout: String?
    @Option(help: "Disable an endpoint whose attempts have all failed this long, e.g. 5d or 12h (env SWITCHYARD_WEBHOOK_DISABLE_AFTER; default 5d)")
    var webhookDisableAfter: String?
    @Option(help: "Disable an endpoint whose last N deliveries all failed (env SWITCHYARD_WEBHOOK_DISABLE_AFTER_FAILURES; default 20)")
    var webhookDisableAfterFailures: Int?
    @Option(
        help:
            "Days events stay in the log once every webhook delivery of theirs is finished; 0 keeps them forever (env SWITCHYARD_EVENT_RETENTION_DAYS; default 0)"
    )
    var eventRetentionDays: Int?
    @Option(
        help:
            "API calls per second an app may make, bursts of twice that; an app's own rate_limit overrides it (env SWITCHYARD_APP_RATE_LIMIT; default 100)"
    )
    var appRateLimit: Int?
    @Option(help: "Script worker processes running user JavaScript, started on first use (env SWITCHYARD_SCRIPT_WORKERS; default 2)")
    var scriptWorkers: Int?
    @Option(help: "How long a script run may take, awaits included, e.g. 10 or 2500ms (env SWITCHYARD_SCRIPT_TIME_LIMIT; default 10 seconds)")
    var scriptTimeLimit: String?
    @Option(help: "MB of resident memory a script worker may use (env SWITCHYARD_SCRIPT_MEMORY_LIMIT; default 128)")
    var scriptMemoryLimit: Int?

    /// A retention setting: 0 (keep forever) to 100 years.
    private func retentionDays(_ flag: Int?, _ variable: String, _ name: String) throws -> Int? {
        guard let days = try common.number(flag, variable) else { return nil }
        guard (0...36_500).contains(days) else { throw ValidationError("\(name) must be from 0 (keep forever) to 36500 days") }
        return days
    }

    func run() async throws {
        var configuration = try common.configuration()
        if let host = common.value(host, "HOST") { configuration.host = host }
        if let port = try common.number(port, "PORT") {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
            configuration.port = port
        }
        configuration.publicURL =
            common.value(publicURL, "PUBLIC_URL")
            ?? "http://\(configuration.host == "0.0.0.0" ? "localhost" : configuration.host):\(configuration.port)"
        configuration.secretKey = common.value(secretKey, "SECRET_KEY")
        if let smtp = common.value(smtpURL, "SMTP_URL") { configuration.smtpURL = try SMTPURL(parsing: smtp) }
        if let from = common.value(mailFrom, "MAIL_FROM") { configuration.mailFrom = from }
        if let size = try common.number(maxBodySize, "MAX_BODY_SIZE") {
            guard size >= 1024 else { throw ValidationError("--max-body-size must be at least 1024 bytes") }
            configuration.maximumBodySize = size
        }
        if let email = common.value(ownerEmail, "OWNER_EMAIL") { configuration.ownerEmail = email }
        if let fields = try common.number(maxDataFields, "MAX_DATA_FIELDS") {
            guard (1...10_000).contains(fields) else { throw ValidationError("--max-data-fields must be from 1 to 10000") }
            configuration.maximumDataFields = fields
        }

        let proxies = trustedProxy.isEmpty ? (common.value(nil, "TRUSTED_PROXIES")?.split(separator: ",").map(String.init) ?? []) : trustedProxy
        configuration.trustedProxies = try proxies.map { try IPNetwork(parsing: $0.trimmingCharacters(in: .whitespaces)) }
        if let days = try retentionDays(outboxRetentionDays, "OUTBOX_RETENTION_DAYS", "--outbox-retention-days") {
            configuration.outboxRetentionDays = days == 0 ? nil : days
        }
        if let days = try retentionDays(activityRetentionDays, "ACTIVITY_RETENTION_DAYS", "--activity-retention-days") {
            configuration.activityRetentionDays = days == 0 ? nil : days
        }
        if let rate = try common.number(appRateLimit, "APP_RATE_LIMIT") {
            guard (1...1_000_000).contains(rate) else { throw ValidationError("--app-rate-limit must be from 1 to 1000000 requests per second") }
            configuration.appRateLimit = Double(rate)
        }
        if let days = try retentionDays(eventRetentionDays, "EVENT_RETENTION_DAYS", "--event-retention-days") {
            configuration.eventRetentionDays = days == 0 ? nil : days
        }

        try configureWebhooks(&configuration.webhooks)
        try configureScripts(&configuration)

        let logger = common.bootstrapLogging(configuration.logLevel)
        configuration.secretKeyBytes = try SecretKey.load(configured: configuration.secretKey, dataDirectory: configuration.dataDirectory)
        let started = ContinuousClock.now
        let services = try await AppServices.open(configuration, logger: logger)
        if let first = try await services.users.bootstrapIfEmpty(ownerEmail: configuration.ownerEmail) {
            let message = Self.firstStartMessage(
                workspace: "\"\(first.workspace.name)\" (\(first.workspace.id))",
                email: first.email,
                password: first.password,
                token: first.token,
                publicURL: configuration.publicURL
            )
            // Straight to the file descriptor: print() is block-buffered when stdout is a pipe.
            FileHandle.standardOutput.write(Data(message.utf8))
        }
        let url = configuration.publicURL
        let database = configuration.databaseURL.description
        let app = buildApplication(services, logger: logger) { _ in
            logger.info(
                "switchyard is listening",
                metadata: [
                    "url": "\(url)", "database": "\(database)", "startup": "\(ContinuousClock.now - started)",
                    "version": "\(SwitchyardVersion.current)",
                ]
            )
        }
        try await app.runService()
        await services.scripts.shutdown()
        try? await services.outbound.shutdown()
        await services.database.close()
    }
}

extension Serve {
    func configureWebhooks(_ webhooks: inout WebhookSettings) throws {
        if let networks = common.value(allowedTargetNetworks, "ALLOWED_TARGET_NETWORKS") {
            webhooks.allowedTargetNetworks = try networks.split(separator: ",").map { part in
                try IPNetwork(parsing: part.trimmingCharacters(in: .whitespaces))
            }
        }
        if let schedule = common.value(retrySchedule, "RETRY_SCHEDULE") { webhooks.schedule = try WebhookSettings.parseSchedule(schedule) }
        if let timeout = common.value(webhookTimeout, "WEBHOOK_TIMEOUT") {
            let seconds = try WebhookSettings.parseDuration(timeout, flag: "--webhook-timeout")
            guard seconds >= 0.01, seconds <= 300 else { throw ValidationError("--webhook-timeout must be from 10ms to 300s") }
            webhooks.timeout = seconds
        }
        if let period = common.value(webhookDisableAfter, "WEBHOOK_DISABLE_AFTER") {
            webhooks.disableAfter = try WebhookSettings.parseDuration(period, flag: "--webhook-disable-after")
        }
        if let failures = try common.number(webhookDisableAfterFailures, "WEBHOOK_DISABLE_AFTER_FAILURES") {
            guard (1...100_000).contains(failures) else { throw ValidationError("--webhook-disable-after-failures must be from 1 to 100000") }
            webhooks.disableAfterFailures = failures
        }
    }

    func configureScripts(_ configuration: inout AppConfiguration) throws {
        if let workers = try common.number(scriptWorkers, "SCRIPT_WORKERS") {
            guard (1...64).contains(workers) else { throw ValidationError("--script-workers must be from 1 to 64") }
            configuration.scriptWorkers = workers
        }
        if let limit = common.value(scriptTimeLimit, "SCRIPT_TIME_LIMIT") {
            let seconds = try WebhookSettings.parseDuration(limit, flag: "--script-time-limit")
            guard seconds >= 0.01, seconds <= 300 else { throw ValidationError("--script-time-limit must be from 10ms to 300s") }
            configuration.scriptTimeLimit = seconds
        }
        if let megabytes = try common.number(scriptMemoryLimit, "SCRIPT_MEMORY_LIMIT") {
            guard (64...16_384).contains(megabytes) else { throw ValidationError("--script-memory-limit must be from 64 to 16384 MB") }
            configuration.scriptMemoryLimitMB = megabytes
        }
    }

    /// Printed once, on an empty database. Until the console lands the credentials reach the API
    /// only, so it says so and gives a call to try, rather than promising a sign-in page.
    static func firstStartMessage(workspace: String, email: String, password: String, token: String, publicURL: String) -> String {
        """
        First start: created the owner account and the workspace \(workspace).

        Switchyard is running at \(publicURL): open it in a browser for the version and
        links to the API's description. There is no web console yet; today Switchyard is used
        through its JSON API under /v1.

        The API token is what a script or curl sends to the API, as `Authorization: Bearer …`:
          token: \(token)
        Try it:
          \(FrontPage.curlExample(publicURL: publicURL, token: token))

        The owner's email and password are for the console once it lands; today they sign in
        through the API (POST /v1/sessions answers a session cookie):
          email: \(email)
          password: \(password)
        These are shown once; keep them somewhere safe.

        """
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bring the database schema up to date and exit.")
    @OptionGroup var common: DatabaseOptions

    func run() async throws {
        let configuration = try common.configuration()
        let logger = common.bootstrapLogging(configuration.logLevel)
        let database = try await Database.open(configuration.databaseURL, logger: logger)
        let applied = try await Migrator.migrate(database)
        print(applied.isEmpty ? "The schema is up to date." : "Applied migrations: \(applied.map(String.init).joined(separator: ", "))")
        await database.close()
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage users.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user; prints the password when one is generated.")
        @OptionGroup var common: DatabaseOptions
        @Option(help: "Email address") var email: String
        @Option(help: "owner, admin, integration_admin, developer or member") var role: String
        @Option(help: "Password (10+ characters); generated when left out") var password: String?
        @Option(help: "Display name") var name: String?

        func run() async throws {
            guard let role = Role(rawValue: role) else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let configuration = try common.configuration()
            let services = try await AppServices.open(configuration, logger: common.bootstrapLogging(configuration.logLevel))
            let created = try await services.users.create(
                CreateUserInput(email: email, name: name, role: role, password: password),
                by: nil,
                audit: .system("command line")
            )
            await services.database.close()
            print("Created \(created.user.role.rawValue) \(created.user.email) (\(created.user.id)).")
            if let generated = created.password { print("password: \(generated)") }
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage API tokens.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token for a user; prints only the token.")
        @OptionGroup var common: DatabaseOptions
        @Option(help: "The user's email") var email: String
        @Option(help: "A name to recognise the token by") var name: String
        @Option(help: "Limit the token to this workspace id (repeatable)") var workspace: [String] = []
        @Option(help: "live or test") var mode: String = "live"

        func run() async throws {
            guard let mode = TokenMode(rawValue: mode) else { throw ValidationError("--mode must be live or test") }
            let configuration = try common.configuration()
            let services = try await AppServices.open(configuration, logger: common.bootstrapLogging(configuration.logLevel))
            guard let user = try await services.users.user(email: email) else {
                throw ValidationError("no user has the email \(email)")
            }
            let created = try await services.tokens.create(
                CreateTokenInput(name: name, mode: mode, workspaces: workspace.isEmpty ? nil : workspace),
                for: user.id,
                by: nil,
                audit: .system("command line")
            )
            print(created.token)
            await services.database.close()
        }
    }
}
