import Foundation
import Logging
import ServiceLifecycle

/// A job that is due every `interval`: housekeeping today. Its schedule is a row in
/// `periodic_jobs`, so the processes sharing a database run it once per interval between them,
/// and a process that starts makes it due at once (a sweep at start, as before the worker layer).
/// A run that fails is logged and tried again at the next interval.
public struct PeriodicWorker: Worker {
    public struct Run: Sendable {
        public let id: String
    }

    public let name: String
    public let interval: TimeInterval
    public let lease: TimeInterval
    public var batchSize: Int { 1 }
    let database: Database
    let clock: any WallClock
    let logger: Logger
    let body: @Sendable () async throws -> Void

    /// `lease` defaults to the interval: a run that takes longer may be started again elsewhere,
    /// so `body` must be safe to run twice at once (a sweep is).
    public init(
        name: String,
        every interval: TimeInterval,
        lease: TimeInterval? = nil,
        database: Database,
        clock: any WallClock,
        logger: Logger,
        body: @escaping @Sendable () async throws -> Void
    ) {
        self.name = name
        self.interval = interval
        self.lease = lease ?? interval
        self.database = database
        self.clock = clock
        self.logger = logger
        self.body = body
    }

    public func prepare(_ tx: SQLTx, now: Date) throws {
        try PeriodicJobStore.makeDue(tx, id: name, at: now)
    }

    public func claim(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [Run] {
        try PeriodicJobStore.claim(tx, id: name, now: now, leasedUntil: leasedUntil) ? [Run(id: name)] : []
    }

    public func run(_ job: Run) async throws {
        var failure: String?
        do {
            try await body()
        } catch {
            logger.warning("\(name): \(error)")
            failure = String(String(describing: error).prefix(500))
        }
        let now = clock.now
        let next = now.addingTimeInterval(interval)
        try await database.write { [failure] tx in
            try PeriodicJobStore.finish(tx, id: job.id, ranAt: now, nextAttemptAt: next, error: failure)
        }
    }

    /// When the job is next due (nil before its first claim), for tests and diagnostics.
    public func nextRun() async throws -> Date? {
        let id = name
        return try await database.read { tx in try PeriodicJobStore.nextAttemptAt(tx, id: id) }
    }
}

extension AppServices {
    /// How often each process looks whether a periodic job is due: it is one small claim, and it
    /// bounds how late a sweep can start after its interval.
    static let periodicPollInterval: Duration = .seconds(30)

    /// `sweep` every ten minutes, across all processes.
    public func housekeeping(logger: Logger) -> PeriodicWorker {
        PeriodicWorker(name: "housekeeping", every: 600, database: database, clock: clock, logger: logger) { [self] in
            try await self.sweep()
        }
    }

    /// The background services of `serve`: the mail sender, housekeeping, webhook delivery, the
    /// token refresher, the return of apps' unused rate-limit shares and the batched activity entries. The HTTP server
    /// comes after them and so stops first on graceful shutdown: the last calls' entries and shares
    /// are flushed after the last answer.
    public func workerServices(logger: Logger) -> [any Service] {
        [
            WorkerService(mailSender, database: database, clock: clock, pollInterval: configuration.mailPollInterval, logger: logger),
            WorkerService(housekeeping(logger: logger), database: database, clock: clock, pollInterval: Self.periodicPollInterval, logger: logger),
            deliveryWorker,
            WorkerService(connections.refresher, database: database, clock: clock, pollInterval: TokenRefresher.pollInterval, logger: logger),
            appRateLimiter,
            activityBatcher,
        ]
    }
}
