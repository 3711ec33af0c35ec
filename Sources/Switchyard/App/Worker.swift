import Foundation
import Logging
import ServiceLifecycle

/// One kind of background job: how to claim a batch of due jobs and how to run one. Job state
/// lives in the database, so any process can claim a job and a killed one loses nothing: a job it
/// held comes back when its lease ends.
public protocol Worker: Sendable {
    associatedtype Job: Sendable

    /// Names the worker in logs.
    var name: String { get }
    /// How many jobs one claim takes. All jobs of a batch run at once, so the lease only has to
    /// outlast one run, and a large batch (webhook deliveries) costs one claim, not hundreds.
    var batchSize: Int { get }
    /// How long a claimed job is held. Longer than one run can take, or another process retakes a
    /// job that is still under way; it is also how long a job held by a killed process waits.
    var lease: TimeInterval { get }

    /// Runs once, in a write, when the service starts (a periodic job is made due at once).
    func prepare(_ tx: SQLTx, now: Date) throws
    /// Claims up to `limit` due jobs, leased until `leasedUntil` (usually `SQLTx.claimDue`).
    func claim(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [Job]
    /// Runs one job and records its outcome (done, retry at a time, given up), freeing its lease.
    /// A thrown error is logged; the job is claimed again when its lease ends.
    func run(_ job: Job) async throws
}

extension Worker {
    public func prepare(_ tx: SQLTx, now: Date) throws {}
}

/// Runs a worker in the background: claims and runs batches until nothing is due, then waits
/// `pollInterval`. On graceful shutdown it stops waiting at once; a batch under way is not
/// cancelled but finishes first (a job cut short would only come back after its lease). If the
/// process dies instead, the leases of that batch end and another process retakes its jobs.
public struct WorkerService<W: Worker>: Service {
    public let worker: W
    public let pollInterval: Duration
    let database: Database
    let clock: any WallClock
    let logger: Logger

    public init(_ worker: W, database: Database, clock: any WallClock, pollInterval: Duration, logger: Logger) {
        self.worker = worker
        self.pollInterval = pollInterval
        self.database = database
        self.clock = clock
        self.logger = logger
    }

    /// Claims one batch of due jobs, runs them all and returns how many there were (0: nothing
    /// was due). Tests call this, after moving their clock, instead of sleeping.
    @discardableResult
    public func runDue() async throws -> Int {
        let worker = self.worker
        let now = clock.now
        let leasedUntil = now.addingTimeInterval(worker.lease)
        let jobs = try await database.write { tx in
            try worker.claim(tx, now: now, leasedUntil: leasedUntil, limit: worker.batchSize)
        }
        if jobs.count == 1, let job = jobs.first {
            await perform(job)
        } else if !jobs.isEmpty {
            await withTaskGroup(of: Void.self) { group in
                for job in jobs { group.addTask { await perform(job) } }
            }
        }
        return jobs.count
    }

    /// Runs `Worker.prepare`, as the service does when it starts.
    public func prepare() async throws {
        let worker = self.worker
        let now = clock.now
        try await database.write { tx in try worker.prepare(tx, now: now) }
    }

    public func run() async throws {
        do { try await prepare() } catch { logger.warning("\(worker.name): \(error)") }
        while !Self.stopping {
            do {
                // Drain everything due before waiting, so a burst is not paced by the interval.
                while try await runDue() > 0, !Self.stopping {}
            } catch {
                logger.warning("\(worker.name): \(error)")
            }
            guard !Self.stopping else { break }
            let interval = pollInterval
            // Only the wait is cut short by a graceful shutdown, never a batch under way.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    private static var stopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    private func perform(_ job: W.Job) async {
        do {
            try await worker.run(job)
        } catch {
            logger.warning("\(worker.name): a job failed; it is retried when its lease ends", metadata: ["error": "\(error)"])
        }
    }
}
