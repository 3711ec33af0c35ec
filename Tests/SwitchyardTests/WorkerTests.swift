import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

@testable import Switchyard

/// A job table of the shape `SQLTx.claimDue` expects, and a worker over it that records what it ran.
enum TestJobs {
    static let start = Date(timeIntervalSince1970: 1_790_000_000)

    static func id(_ number: Int) -> String { "job_" + String(String(100_000 + number).dropFirst()) }

    /// Creates `test_jobs` with `count` jobs, due at `dueAt`, and returns their ids in order.
    @discardableResult
    static func make(_ database: Database, count: Int, dueAt: Date = start) async throws -> [String] {
        let ids = (0..<count).map(id)
        try await database.write { tx in
            try tx.execute(
                "CREATE TABLE test_jobs (id TEXT PRIMARY KEY, next_attempt_at BIGINT NOT NULL, leased_until BIGINT, done BIGINT NOT NULL DEFAULT 0)"
            )
            for chunk in stride(from: 0, to: ids.count, by: 200) {
                let part = ids[chunk..<min(chunk + 200, ids.count)]
                try tx.execute(
                    "INSERT INTO test_jobs (id, next_attempt_at) VALUES " + part.map { _ in "(?, ?)" }.joined(separator: ", "),
                    part.flatMap { [SQLValue.text($0), dueAt.sqlValue] }
                )
            }
        }
        return ids
    }

    static func claim(_ database: Database, at now: Date, lease: TimeInterval = 60, limit: Int) async throws -> [String] {
        try await database.write { tx in
            try tx.claimDue(from: "test_jobs", where: "done = 0", now: now, leasedUntil: now.addingTimeInterval(lease), limit: limit)
                .map { try $0.string("id") }
        }
    }
}

struct TableWorker: Worker {
    let name = "test jobs"
    let batchSize: Int
    let lease: TimeInterval = 60
    let database: Database
    let ran = NIOLockedValueBox<[String]>([])
    var onClaim: @Sendable () -> Void = {}
    var body: @Sendable (String) async throws -> Void = { _ in }

    func claim(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [String] {
        onClaim()
        return try tx.claimDue(from: "test_jobs", where: "done = 0", now: now, leasedUntil: leasedUntil, limit: limit)
            .map { try $0.string("id") }
    }

    func run(_ id: String) async throws {
        try await body(id)
        ran.withLockedValue { $0.append(id) }
        try await database.write { tx in try tx.execute("UPDATE test_jobs SET done = 1, leased_until = NULL WHERE id = ?", id) }
    }

    func service(clock: any WallClock, pollInterval: Duration = .seconds(3600)) -> WorkerService<TableWorker> {
        WorkerService(self, database: database, clock: clock, pollInterval: pollInterval, logger: TestDatabase.logger)
    }
}

@Suite("Worker claims")
struct WorkerClaimTests {
    @Test("a claim takes 500 due jobs at once, oldest first, and leases them")
    func batchOf500() async throws {
        try await TestDatabase.with { database in
            let ids = try await TestJobs.make(database, count: 600)
            let now = TestJobs.start
            let first = try await TestJobs.claim(database, at: now, limit: 500)
            #expect(first.count == 500)
            #expect(Set(first) == Set(ids.prefix(500)))
            let leased = try await database.read { tx in
                try tx.queryOne("SELECT COUNT(*) AS n FROM test_jobs WHERE leased_until = ?", now.addingTimeInterval(60))?.int("n")
            }
            #expect(leased == 500)
            #expect(Set(try await TestJobs.claim(database, at: now, limit: 500)) == Set(ids.suffix(100)))
            #expect(try await TestJobs.claim(database, at: now, limit: 500).isEmpty)
        }
    }

    @Test("jobs not yet due, or refused by the condition, are not claimed")
    func onlyDue() async throws {
        try await TestDatabase.with { database in
            try await TestJobs.make(database, count: 3, dueAt: TestJobs.start.addingTimeInterval(10))
            try await database.write { tx in try tx.execute("UPDATE test_jobs SET done = 1 WHERE id = ?", TestJobs.id(0)) }
            #expect(try await TestJobs.claim(database, at: TestJobs.start.addingTimeInterval(9.999), limit: 10).isEmpty)
            let due = try await TestJobs.claim(database, at: TestJobs.start.addingTimeInterval(10), limit: 10)
            #expect(Set(due) == [TestJobs.id(1), TestJobs.id(2)])
            #expect(try await TestJobs.claim(database, at: TestJobs.start, limit: 0).isEmpty)
        }
    }

    @Test("a lease that has ended is taken again")
    func expiredLease() async throws {
        try await TestDatabase.with { database in
            try await TestJobs.make(database, count: 1)
            let now = TestJobs.start
            #expect(try await TestJobs.claim(database, at: now, lease: 60, limit: 10).count == 1)
            #expect(try await TestJobs.claim(database, at: now.addingTimeInterval(59.999), limit: 10).isEmpty, "still leased")
            #expect(try await TestJobs.claim(database, at: now.addingTimeInterval(60), limit: 10) == [TestJobs.id(0)])
        }
    }

    @Test("concurrent claimers never get the same job")
    func concurrentClaimers() async throws {
        try await TestDatabase.with(poolSize: 4) { database in
            let ids = try await TestJobs.make(database, count: 1000)
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let batch = try await TestJobs.claim(database, at: TestJobs.start, limit: 25)
                            if batch.isEmpty { return mine }
                            mine += batch
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let all = claims.flatMap { $0 }
            #expect(all.count == 1000, "on \(TestDatabase.engineName)")
            #expect(Set(all) == Set(ids))
        }
    }
}

@Suite("Worker service")
struct WorkerServiceTests {
    @Test("runDue runs one batch per call, and returns 0 when nothing is due")
    func batches() async throws {
        try await TestDatabase.with { database in
            try await TestJobs.make(database, count: 7)
            let worker = TableWorker(batchSize: 3, database: database)
            let service = worker.service(clock: ManualClock(TestJobs.start))
            #expect(try await service.runDue() == 3)
            #expect(try await service.runDue() == 3)
            #expect(try await service.runDue() == 1)
            #expect(try await service.runDue() == 0)
            #expect(worker.ran.withLockedValue { $0 }.sorted() == (0..<7).map(TestJobs.id))
        }
    }

    @Test("two services on one database run each job once")
    func twoServices() async throws {
        try await TestDatabase.with(poolSize: 4) { database in
            try await TestJobs.make(database, count: 300)
            let clock = ManualClock(TestJobs.start)
            let workers = [TableWorker(batchSize: 20, database: database), TableWorker(batchSize: 20, database: database)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers {
                    group.addTask { while try await worker.service(clock: clock).runDue() > 0 {} }
                }
                try await group.waitForAll()
            }
            let ran = workers.flatMap { worker in worker.ran.withLockedValue { $0 } }
            #expect(ran.count == 300, "on \(TestDatabase.engineName)")
            #expect(Set(ran).count == 300)
        }
    }

    @Test("a job that throws keeps its lease and is retried when the lease ends")
    func failingJob() async throws {
        try await TestDatabase.with { database in
            try await TestJobs.make(database, count: 1)
            let failures = NIOLockedValueBox(1)
            var worker = TableWorker(batchSize: 10, database: database)
            worker.body = { _ in
                let fail = failures.withLockedValue { count in
                    count -= 1
                    return count >= 0
                }
                if fail { throw StorageError.unavailable("test") }
            }
            let clock = ManualClock(TestJobs.start)
            let service = worker.service(clock: clock)
            #expect(try await service.runDue() == 1)
            #expect(worker.ran.withLockedValue { $0 }.isEmpty)
            #expect(try await service.runDue() == 0)
            clock.advance(by: worker.lease)
            #expect(try await service.runDue() == 1)
            #expect(worker.ran.withLockedValue { $0 } == [TestJobs.id(0)])
        }
    }

    // The limits catch a hang; on PostgreSQL the wait for a fresh schema (MigrationTurns) counts in them.
    @Test("graceful shutdown ends the wait at once", .timeLimit(.minutes(5)))
    func shutdownWhileIdle() async throws {
        try await TestDatabase.with { database in
            try await TestJobs.make(database, count: 0)
            let (claims, claimed) = AsyncStream<Void>.makeStream()
            var worker = TableWorker(batchSize: 10, database: database)
            worker.onClaim = { claimed.yield() }
            let group = ServiceGroup(services: [worker.service(clock: ManualClock(TestJobs.start))], logger: TestDatabase.logger)
            async let running: Void = group.run()
            for await _ in claims { break }  // it has polled once and now waits an hour
            await group.triggerGracefulShutdown()
            try await running
        }
    }

    @Test("a job under way when shutdown starts finishes, and nothing more is claimed", .timeLimit(.minutes(5)))
    func shutdownFinishesTheBatch() async throws {
        try await TestDatabase.with { database in
            try await TestJobs.make(database, count: 3)
            let (starts, started) = AsyncStream<Void>.makeStream()
            let cancelled = NIOLockedValueBox(false)
            var worker = TableWorker(batchSize: 1, database: database)
            worker.body = { _ in
                started.yield()
                // Returns once the shutdown has reached the job; throws if the job was cancelled.
                do { try await gracefulShutdown() } catch { cancelled.withLockedValue { $0 = true } }
            }
            let group = ServiceGroup(services: [worker.service(clock: ManualClock(TestJobs.start))], logger: TestDatabase.logger)
            async let running: Void = group.run()
            for await _ in starts { break }
            await group.triggerGracefulShutdown()
            try await running
            #expect(cancelled.withLockedValue { $0 } == false)
            #expect(worker.ran.withLockedValue { $0 } == [TestJobs.id(0)])
            let done = try await database.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM test_jobs WHERE done = 1")?.int("n") }
            #expect(done == 1)
        }
    }
}

@Suite("Retry schedules")
struct RetryScheduleTests {
    @Test("exponential delays grow by the factor up to the cap")
    func exponential() {
        let schedule = RetrySchedule(delays: .exponential(base: 5, factor: 2), cap: 3600, maximumAttempts: 12)
        #expect((1...12).map(schedule.delay(afterAttempt:)) == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600])
        #expect(schedule.delay(afterAttempt: 5000) == 3600, "a huge exponent is still capped")
        #expect(schedule.delay(afterAttempt: 0) == 5)
    }

    @Test("an explicit list is followed, its last delay repeating")
    func list() {
        let schedule = RetrySchedule(delays: .list([5, 300, 1800]), maximumAttempts: nil)
        #expect((1...5).map(schedule.delay(afterAttempt:)) == [5, 300, 1800, 1800, 1800])
        #expect(RetrySchedule(delays: .list([]), maximumAttempts: nil).delay(afterAttempt: 1) == 0)
    }

    @Test("jitter takes up to its fraction off each delay, never past the cap")
    func jitter() {
        let draw = NIOLockedValueBox(0.0)
        let schedule = RetrySchedule(
            delays: .exponential(base: 10, factor: 3),
            cap: 60,
            jitter: 0.2,
            maximumAttempts: nil,
            random: { draw.withLockedValue { $0 } }
        )
        #expect(schedule.delay(afterAttempt: 1) == 10)
        draw.withLockedValue { $0 = 0.5 }
        #expect(schedule.delay(afterAttempt: 1) == 9)
        #expect(schedule.delay(afterAttempt: 2) == 27)
        #expect(schedule.delay(afterAttempt: 3) == 54, "capped at 60, then jittered")
        draw.withLockedValue { $0 = 0.999_999 }
        #expect(schedule.delay(afterAttempt: 3) > 48 && schedule.delay(afterAttempt: 3) < 48.001)
        let wide = RetrySchedule(delays: .list([100]), jitter: 5, maximumAttempts: nil, random: { 1 })
        #expect(wide.delay(afterAttempt: 1) == 0, "jitter is at most 1")
    }

    @Test("nextAttempt gives up after the maximum, or never without one")
    func nextAttempt() {
        let now = TestJobs.start
        let schedule = RetrySchedule(delays: .exponential(base: 5, factor: 2), cap: 3600, maximumAttempts: 3)
        #expect(schedule.nextAttempt(after: 1, now: now) == now.addingTimeInterval(5))
        #expect(schedule.nextAttempt(after: 2, now: now) == now.addingTimeInterval(10))
        #expect(schedule.nextAttempt(after: 3, now: now) == nil)
        let forever = RetrySchedule(delays: .list([60]), maximumAttempts: nil)
        #expect(forever.nextAttempt(after: 10_000, now: now) == now.addingTimeInterval(60))
    }

    @Test("the mail sender keeps its schedule: 5 s doubling to an hour, 12 attempts")
    func mail() {
        #expect(MailSender.schedule.maximumAttempts == 12)
        #expect(MailSender.schedule.jitter == 0)
        #expect(MailSender.schedule.nextAttempt(after: 12, now: TestJobs.start) == nil)
        #expect((1...11).map(MailSender.backoff(afterAttempt:)).reduce(0, +) == 8715)
    }
}

@Suite("Periodic workers")
struct PeriodicWorkerTests {
    @Test("housekeeping is due at once, then every ten minutes, and sweeps finished mail")
    func housekeeping() async throws {
        try await TestApp.run(configure: { $0.outboxRetentionDays = 30 }) { app in
            _ = try await app.makeUser("ann@example.com", role: .member)
            #expect(try await app.services.mailSender.deliverDue() == 1)
            let service = WorkerService(
                app.services.housekeeping(logger: TestDatabase.logger),
                database: app.database,
                clock: app.clock,
                pollInterval: .seconds(30),
                logger: TestDatabase.logger
            )
            #expect(try await service.runDue() == 1, "the first claim creates the job, due now")
            #expect(try await service.runDue() == 0)
            app.clock.advance(by: 599)
            #expect(try await service.runDue() == 0)
            app.clock.advance(by: 31 * 86_400)
            #expect(try await app.count("mail_messages") == 1)
            #expect(try await service.runDue() == 1)
            #expect(try await app.count("mail_messages") == 0, "the logged message was past its 30 days")
            try await service.prepare()
            #expect(try await service.runDue() == 1, "a process that starts sweeps at once")
        }
    }

    @Test("a failed run is recorded and the job is due again after its interval")
    func failedRun() async throws {
        try await TestDatabase.with { database in
            let clock = ManualClock(TestJobs.start)
            let runs = NIOLockedValueBox(0)
            let worker = PeriodicWorker(name: "flaky", every: 60, database: database, clock: clock, logger: TestDatabase.logger) {
                runs.withLockedValue { $0 += 1 }
                throw StorageError.unavailable("test")
            }
            let service = WorkerService(worker, database: database, clock: clock, pollInterval: .seconds(1), logger: TestDatabase.logger)
            #expect(try await service.runDue() == 1)
            #expect(try await worker.nextRun() == clock.now.addingTimeInterval(60))
            let error = try await database.read { tx in
                try tx.queryOne("SELECT last_error FROM periodic_jobs WHERE id = 'flaky'")?.optionalString("last_error")
            }
            #expect(error?.contains("test") == true)
            #expect(try await service.runDue() == 0)
            clock.advance(by: 60)
            #expect(try await service.runDue() == 1)
            #expect(runs.withLockedValue { $0 } == 2)
        }
    }

    @Test("two processes run a periodic job once per interval between them")
    func sharedSchedule() async throws {
        try await TestDatabase.with { database throws in
            let clock = ManualClock(TestJobs.start)
            let worker = PeriodicWorker(name: "shared", every: 600, database: database, clock: clock, logger: TestDatabase.logger) {}
            let services = [
                WorkerService(worker, database: database, clock: clock, pollInterval: .seconds(1), logger: TestDatabase.logger),
                WorkerService(worker, database: database, clock: clock, pollInterval: .seconds(1), logger: TestDatabase.logger),
            ]
            #expect(try await services[0].runDue() == 1)
            #expect(try await services[1].runDue() == 0)
            clock.advance(by: 600)
            #expect(try await services[1].runDue() == 1)
            #expect(try await services[0].runDue() == 0)
        }
    }
}
