import Foundation
import Logging

/// Keeps OAuth 2.0 tokens valid with nobody watching: a background worker of `serve` refreshes
/// tokens ahead of expiry (`margin` before, or half the lifetime when that is shorter), and runs
/// ask it on demand (`ensure`: a token found due, a 401 from the provider).
///
/// One refresh at a time per connection, across processes: the refresh lease
/// (`refresh_lease_until`, `refresh_lease_id`) is claimed by a conditional UPDATE; whoever loses
/// waits for the lease to end and reads the token again, so a rotated refresh token is never used
/// twice. The winner reads the tokens only after claiming, and writes its answer only while it
/// still holds the lease (a re-authorization meanwhile takes it away and wins).
///
/// Outcomes: new tokens; `invalid_grant` makes the connection `needs_reauthorization` at once;
/// other failures (timeouts, 5xx, answers that are not tokens, scripts that fail) are counted with
/// a cooldown (`schedule`), and the fifth in a row needs reauthorization too. Either way the
/// integration managers are mailed and an activity entry says why.
public struct TokenRefresher: Worker {
    public struct Job: Sendable {
        public let connectionID: String
        let leaseID: String
    }

    /// What asked for a refresh.
    enum Trigger: Sendable, Equatable {
        /// The token is due: the background scan, or a run that found it so.
        case due
        /// The provider answered 401 to this access token.
        case unauthorized(rejected: String)
    }

    public let name = "token refresher"
    public let batchSize = 8
    /// Outlasts one refresh: a token request (15 s at most) or a script run (10 s).
    public let lease: TimeInterval = 60
    /// Refresh this long before expiry (or at half the lifetime when that is sooner).
    public static let margin: TimeInterval = 600
    /// Failures in a row after which the connection needs reauthorization.
    public static let maximumFailures = 5
    /// With nothing to refresh (authentication code said the token is valid): look again after this.
    static let recheckInterval: TimeInterval = 300
    /// How long to wait after each failure; the fifth is the last.
    var schedule = RetrySchedule(delays: .list([60, 300, 900, 1800]), cap: 3600, jitter: 0.1, maximumAttempts: maximumFailures)
    /// How often a caller waiting for another's refresh looks again.
    var leasePoll: Duration = .milliseconds(50)

    let database: Database
    let clock: any WallClock
    let sealer: Sealer
    let oauth: OAuthClient
    let scripts: any ScriptRunner
    let activity: ActivityService
    let mail: MailService
    let publicURL: String
    let logger: Logger

    var redirectURI: String { publicURL + "/integrations/callback" }

    /// Refreshes one batch of due tokens, as the background service does; answers how many it took.
    @discardableResult
    public func runDue() async throws -> Int {
        try await WorkerService(self, database: database, clock: clock, pollInterval: .seconds(30), logger: logger).runDue()
    }

    public func claim(_ tx: SQLTx, now: Date, leasedUntil: Date, limit: Int) throws -> [Job] {
        let leaseID = ID.make("lease", at: now)
        return try ConnectionStore.claimDue(tx, now: now, leaseID: leaseID, until: leasedUntil, limit: limit).map {
            Job(connectionID: $0, leaseID: leaseID)
        }
    }

    public func run(_ job: Job) async throws {
        _ = try await perform(job, trigger: .due)
    }

    /// When a connection's token is due: `margin` before it expires, or half its lifetime before
    /// when that is shorter (ConnectionStore.dueAtSQL says the same in SQL).
    static func dueAt(_ connection: Connection) -> Date? {
        guard let expiresAt = connection.expiresAt else { return nil }
        var issued = connection.lastAuthorizedAt ?? connection.createdAt
        if let refreshed = connection.lastRefreshedAt, refreshed > (connection.lastAuthorizedAt ?? .distantPast) { issued = refreshed }
        return expiresAt.addingTimeInterval(-min(margin, max(0, expiresAt.timeIntervalSince(issued)) / 2))
    }

    enum Decision: Equatable {
        case current
        case refresh
        case coolingDown(until: Date)
    }

    /// Whether `trigger` calls for a refresh of these credentials now.
    static func decide(_ credentials: ConnectionCredentials, _ state: ConnectionRefreshState, _ trigger: Trigger, now: Date) -> Decision {
        guard credentials.integration.auth.type == .oauth2, credentials.connection.status == .active else { return .current }
        switch trigger {
        case .due:
            guard let due = dueAt(credentials.connection), due <= now else { return .current }
        case .unauthorized(let rejected):
            // Another caller already replaced the refused token: use the new one.
            guard credentials.secrets.objectValue?["access_token"]?.stringValue == rejected else { return .current }
        }
        // A cooldown after failures holds every trigger back; a deferral without failures (nothing
        // to refresh with yet) only the scan's, so a 401 is still answered with a refresh.
        if let notBefore = state.notBefore, notBefore > now, trigger == .due || state.failures > 0 { return .coolingDown(until: notBefore) }
        return .refresh
    }

    enum Outcome: Sendable {
        /// Nothing was needed after all (refreshed meanwhile, or not due), or nothing could be done yet.
        case current(ConnectionCredentials)
        case refreshed(ConnectionCredentials)
        /// Counted; the old tokens stay (they may still be valid).
        case failed(ConnectionCredentials, String)
        /// The connection needs reauthorization now.
        case dead(ConnectionCredentials, String)
    }

    /// The credentials after doing what `trigger` asks: refreshed by this caller, or by another
    /// process it waited for. Throws `ConnectionUnusable` when there are no usable tokens.
    func ensure(connectionID: String, trigger: Trigger) async throws -> ConnectionCredentials {
        for _ in 0..<3 {
            let now = clock.now
            let (credentials, state) = try await read(connectionID)
            switch Self.decide(credentials, state, trigger, now: now) {
            case .current:
                return credentials
            case .coolingDown(let until):
                let why = "refreshing failed \(state.failures) time(s); the next try is at \(RFC3339.format(until))"
                return try usable(credentials, trigger: trigger, failure: credentials.connection.lastError.map { "\(why): \($0.message)" } ?? why)
            case .refresh:
                break
            }
            let leaseID = ID.make("lease", at: now)
            let until = now.addingTimeInterval(lease)
            if try await database.write({ tx in try ConnectionStore.claimLease(tx, id: connectionID, leaseID: leaseID, until: until, now: now) }) {
                switch try await perform(Job(connectionID: connectionID, leaseID: leaseID), trigger: trigger) {
                case .current(let credentials), .refreshed(let credentials): return credentials
                case .failed(let credentials, let why): return try usable(credentials, trigger: trigger, failure: why)
                case .dead(let credentials, let why): throw ConnectionUnusable(connection: credentials.connection, message: why)
                }
            }
            try await waitForLease(connectionID)
        }
        let (credentials, _) = try await read(connectionID)
        return try usable(credentials, trigger: trigger, failure: "another process kept the token's refresh lease")
    }

    /// After a failed refresh: the old token while it is still valid (and was not refused), else
    /// `ConnectionUnusable`.
    private func usable(_ credentials: ConnectionCredentials, trigger: Trigger, failure: String) throws -> ConnectionCredentials {
        var credentials = credentials
        let expired = credentials.connection.expiresAt.map { $0 <= clock.now } ?? false
        guard trigger == .due, !expired else {
            throw ConnectionUnusable(connection: credentials.connection, message: "The token could not be refreshed: \(failure)")
        }
        credentials.authLogs.append(ScriptLogLine(level: "warn", message: "token refresh: \(failure); the current token is used", at: clock.now))
        return credentials
    }

    /// Waits until nobody holds the connection's refresh lease (or it ended), at most a lease's time.
    private func waitForLease(_ connectionID: String) async throws {
        let deadline = ContinuousClock.now + .seconds(lease + 5)
        while ContinuousClock.now < deadline {
            let state = try await database.read { tx in try ConnectionStore.refreshState(tx, id: connectionID) }
            guard let state, state.leaseID != nil, let until = state.leaseUntil, until > clock.now else { return }
            try await Task.sleep(for: leasePoll)
        }
    }

    func read(_ connectionID: String) async throws -> (ConnectionCredentials, ConnectionRefreshState) {
        let sealer = sealer
        return try await database.read { tx in
            let credentials = try ConnectionCredentials.read(tx, connectionID: connectionID, sealer: sealer)
            return (credentials, try ConnectionStore.refreshState(tx, id: connectionID) ?? ConnectionRefreshState(failures: 0))
        }
    }
}

extension ConnectionRefreshState {
    init(failures: Int) { self.init(failures: failures, notBefore: nil, leaseUntil: nil, leaseID: nil) }
}

extension TokenRefresher {
    /// How often `serve` looks for tokens due: well inside the smallest margin that matters.
    public static let pollInterval: Duration = .seconds(15)
}
