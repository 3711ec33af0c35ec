import Foundation
import Logging

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything `switchyard serve` can be told, with defaults that run on a laptop with no setting.
public struct AppConfiguration: Sendable {
    public var databaseURL: DatabaseURL
    public var host: String
    public var port: Int
    public var publicURL: String
    /// Where the SQLite file (by default) and the generated secret key live.
    public var dataDirectory: String
    public var secretKey: String?
    public var smtpURL: SMTPURL?
    public var mailFrom: String
    public var maximumBodySize: Int
    public var bcryptCost: UInt8
    public var ownerEmail: String
    public var mailPollInterval: Duration
    public var logLevel: Logger.Level
    /// Data fields an object type may have (Oneflow's limit is 150).
    public var maximumDataFields: Int
    /// Peers whose `X-Forwarded-For` is believed (the reverse proxies); none by default.
    public var trustedProxies: [IPNetwork]
    /// Days a delivered, logged or failed message stays in the outbox (its body is personal
    /// data); nil keeps them forever.
    public var outboxRetentionDays: Int?
    /// Days an activity entry is kept; nil (the default) keeps the log forever.
    public var activityRetentionDays: Int?
    /// The loaded secret key (`SecretKey.load`) that seals secrets at rest; nil makes a random one
    /// for this process only (tests), so nothing sealed survives a restart.
    public var secretKeyBytes: [UInt8]?
    /// Webhook delivery: schedule, timeout, auto-disable, allowed target networks.
    public var webhooks = WebhookSettings()
    /// Days an event stays in the log once its deliveries are finished; nil (the default) keeps
    /// the log whole.
    public var eventRetentionDays: Int?
    /// API calls per second an app may make (bursts of twice that), unless its own `rate_limit` says otherwise.
    public var appRateLimit: Double = 100
    /// Script worker processes (`switchyard script-worker`), started on first use.
    public var scriptWorkers = 2
    /// Seconds a script run may take, awaits included (a run past it is killed with its worker).
    public var scriptTimeLimit: TimeInterval = 10
    /// Resident memory a script worker may use, in MB (past it the run is killed with its worker).
    public var scriptMemoryLimitMB = 128
    /// The program the script workers run as `<it> script-worker`; nil is the running binary
    /// (/proc/self/exe), right for `serve`. Tests point it at the built `switchyard`.
    public var scriptWorkerExecutable: String?

    public init(
        databaseURL: DatabaseURL = .sqlite(path: "switchyard-data/switchyard.sqlite"),
        host: String = "127.0.0.1",
        port: Int = 8080,
        publicURL: String? = nil,
        dataDirectory: String = "switchyard-data",
        secretKey: String? = nil,
        smtpURL: SMTPURL? = nil,
        mailFrom: String = "Switchyard <switchyard@localhost>",
        maximumBodySize: Int = 1 << 20,
        bcryptCost: UInt8 = 11,
        ownerEmail: String = "owner@example.com",
        mailPollInterval: Duration = .seconds(1),
        logLevel: Logger.Level = .info,
        maximumDataFields: Int = 150,
        trustedProxies: [IPNetwork] = [],
        outboxRetentionDays: Int? = 30,
        activityRetentionDays: Int? = nil,
        eventRetentionDays: Int? = nil
    ) {
        self.databaseURL = databaseURL
        self.host = host
        self.port = port
        self.publicURL = publicURL ?? "http://\(host == "0.0.0.0" ? "localhost" : host):\(port)"
        self.dataDirectory = dataDirectory
        self.secretKey = secretKey
        self.smtpURL = smtpURL
        self.mailFrom = mailFrom
        self.maximumBodySize = maximumBodySize
        self.bcryptCost = bcryptCost
        self.ownerEmail = ownerEmail
        self.mailPollInterval = mailPollInterval
        self.logLevel = logLevel
        self.maximumDataFields = maximumDataFields
        self.trustedProxies = trustedProxies
        self.outboxRetentionDays = outboxRetentionDays
        self.activityRetentionDays = activityRetentionDays
        self.eventRetentionDays = eventRetentionDays
    }
}

/// The master key that seals third-party credentials: `--secret-key`, or a key file created with
/// mode 0600 in the data folder on first start.
public enum SecretKey {
    public static func load(configured: String?, dataDirectory: String) throws -> [UInt8] {
        if let configured {
            let bytes = Array(configured.utf8)
            guard bytes.count >= 32 else {
                throw ConfigurationError("--secret-key must be at least 32 characters (try: openssl rand -hex 32)")
            }
            return bytes
        }
        let path = (dataDirectory as NSString).appendingPathComponent("secret.key")
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count >= 32 else {
                throw ConfigurationError("the secret key file \(path) holds fewer than 32 bytes; restore it from a backup, or set --secret-key")
            }
            return Array(data)
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        var rng = SystemRandomNumberGenerator()
        let hex = Hex.encode((0..<32).map { _ in rng.next() as UInt8 })
        guard FileManager.default.createFile(atPath: path, contents: Data(hex.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("cannot write the secret key file \(path); set --secret-key or make the data folder writable")
        }
        return Array(hex.utf8)
    }
}
