import Foundation
import NIOConcurrencyHelpers

/// The limit on wrong client credentials at the OAuth endpoints: per client id from one address,
/// and per address for any client ids — as console sign-ins are limited per email and address. Not
/// per client id from everywhere: a client id is no secret, and that limit would let anyone lock a
/// partner out by sending wrong secrets under its id.
///
/// A token request with the right secret must stay one write, so the shared count (the activity
/// log's counted refusals, every process's) is read inside the write of a request that failed, where
/// it costs nothing on the hot path; this process's attempts (in flight ones too, so that a parallel
/// burst cannot all pass) and the keys found over the limit are checked in memory before any I/O.
final class OAuthThrottle: Sendable {
    static let failuresPerClient = 10
    static let failuresPerAddress = 50
    static let window: TimeInterval = 15 * 60

    /// The details of the refusals that count (wrong guesses); the log's other `app.token_refused`
    /// entries (malformed requests, throttled ones) do not, or a throttled client would prolong its wait.
    static let countedDetails = ["wrong client secret", "unknown client id", "revoked app"]

    private let recent = RecentSignIns()
    private let blocked = NIOLockedValueBox<[String: Date]>([:])

    struct Keys: Sendable {
        var clientID: String
        var ip: String?

        var pair: String { "oauth \(clientID) \(ip ?? "-")" }
        var address: String? { ip.map { "oauth address \($0)" } }
        var all: [String] { [pair] + (address.map { [$0] } ?? []) }
    }

    enum Admission {
        case allowed(RecentSignIns.Attempt?)
        case refused(seconds: Int)
    }

    /// Before any I/O: refused while a key is known to be over its limit, else the attempt is counted
    /// until it succeeds.
    func begin(_ keys: Keys, now: Date) -> Admission {
        let until = blocked.withLockedValue { blocked -> Date? in
            if blocked.count > 10_000 { blocked = blocked.filter { $0.value > now } }
            return keys.all.compactMap { blocked[$0] }.filter { $0 > now }.max()
        }
        if let until { return .refused(seconds: Self.seconds(until: until, now: now)) }
        var checks = [RecentSignIns.Check(key: keys.pair, recorded: [], limit: Self.failuresPerClient)]
        if let address = keys.address { checks.append(RecentSignIns.Check(key: address, recorded: [], limit: Self.failuresPerAddress)) }
        switch recent.begin(checks, at: now, since: now.addingTimeInterval(-Self.window)) {
        case .allowed(let attempt): return .allowed(attempt)
        case .refused(let oldest): return .refused(seconds: Self.seconds(until: oldest.addingTimeInterval(Self.window), now: now))
        }
    }

    /// The right credentials: the attempt was no failure.
    func succeeded(_ attempt: RecentSignIns.Attempt?) {
        recent.succeeded(attempt)
    }

    /// Inside the write of a request whose credentials were wrong: the seconds to wait when the
    /// failures already logged for `keys` (by every process) reach a limit, which this process then
    /// remembers; nil to refuse it as the wrong guess it is.
    func check(_ tx: SQLTx, _ keys: Keys, now: Date) throws -> Int? {
        let since = now.addingTimeInterval(-Self.window)
        let rows = try tx.query(
            """
            SELECT occurred_at, actor_label, ip FROM activity_entries
            WHERE action = 'app.token_refused' AND id >= ? AND occurred_at >= ? AND outcome = 'failure' AND detail IN (?, ?, ?)
                  AND (actor_label = ? OR ip = ?)
            ORDER BY id
            """,
            ID.floor("act", at: since),
            since,
            Self.countedDetails[0],
            Self.countedDetails[1],
            Self.countedDetails[2],
            keys.clientID,
            keys.ip
        )
        var pair: [Date] = []
        var address: [Date] = []
        for row in rows {
            let at = try row.date("occurred_at")
            let ip = row.optionalString("ip")
            if keys.ip != nil, ip == keys.ip { address.append(at) }
            if ip == keys.ip, row.optionalString("actor_label") == keys.clientID { pair.append(at) }
        }
        var until: [String: Date] = [:]
        if pair.count >= Self.failuresPerClient {
            until[keys.pair] = pair[pair.count - Self.failuresPerClient].addingTimeInterval(Self.window)
        }
        if let key = keys.address, address.count >= Self.failuresPerAddress {
            until[key] = address[address.count - Self.failuresPerAddress].addingTimeInterval(Self.window)
        }
        guard let latest = until.values.max() else { return nil }
        blocked.withLockedValue { blocked in blocked.merge(until) { max($0, $1) } }
        return Self.seconds(until: latest, now: now)
    }

    static func seconds(until: Date, now: Date) -> Int {
        max(1, Int(until.timeIntervalSince(now).rounded(.up)))
    }
}
