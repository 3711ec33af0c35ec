import Foundation
import NIOConcurrencyHelpers

/// The limit on wrong client credentials at the OAuth endpoints: per client id from one address,
/// and per address for any client ids — as console sign-ins are limited per email and address. Not
/// per client id from everywhere: a client id is no secret, and that limit would let anyone lock a
/// partner out by sending wrong secrets under its id.
///
/// A token request with the right secret must stay one write, so the shared count (the activity
/// log's counted refusals, every process's) is read inside the write of a request that failed, where
/// it costs nothing on the hot path: on SQLite the single writer makes that count exact; on
/// PostgreSQL concurrent guesses can pass it by at most the writers running at once. A key found at
/// its limit is remembered here, so that until the window passes its requests (with the right secret
/// too) are refused before any I/O.
final class OAuthThrottle: Sendable {
    static let failuresPerClient = 10
    static let failuresPerAddress = 50
    static let window: TimeInterval = 15 * 60

    /// The details of the refusals that count (wrong guesses); the log's other `app.token_refused`
    /// entries (malformed requests, throttled ones) do not, or a throttled client would prolong its wait.
    static let countedDetails = ["wrong client secret", "unknown client id", "revoked app"]

    private let blocked = NIOLockedValueBox<[String: Date]>([:])

    struct Keys: Sendable {
        var clientID: String
        var ip: String?

        var pair: String { "oauth \(clientID) \(ip ?? "-")" }
        var address: String? { ip.map { "oauth address \($0)" } }
        var all: [String] { [pair] + (address.map { [$0] } ?? []) }
    }

    /// Before any I/O: the seconds to wait while a key is at its limit, else nil.
    func refusal(_ keys: Keys, now: Date) -> Int? {
        let until = blocked.withLockedValue { blocked -> Date? in
            if blocked.count > 10_000 { blocked = blocked.filter { $0.value > now } }
            return keys.all.compactMap { blocked[$0] }.filter { $0 > now }.max()
        }
        return until.map { Self.seconds(until: $0, now: now) }
    }

    /// Inside the write of a request whose credentials were wrong: the seconds to wait when the
    /// failures already logged for `keys` (by every process) are at a limit; nil to refuse it as
    /// the wrong guess it is.
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
        // At the limit already: refused unanswered. Else this failure (recorded by the caller) is
        // counted, and the key remembered once it reaches the limit.
        var over: [String: Date] = [:]
        var reached: [String: Date] = [:]
        for (key, dates, limit) in [(keys.pair, pair, Self.failuresPerClient)] + (keys.address.map { [($0, address, Self.failuresPerAddress)] } ?? [])
        {
            if dates.count >= limit {
                over[key] = dates[dates.count - limit].addingTimeInterval(Self.window)
            } else if dates.count + 1 >= limit {
                reached[key] = (dates + [now])[dates.count + 1 - limit].addingTimeInterval(Self.window)
            }
        }
        blocked.withLockedValue { blocked in blocked.merge(over.merging(reached) { max($0, $1) }) { max($0, $1) } }
        return over.values.max().map { Self.seconds(until: $0, now: now) }
    }

    static func seconds(until: Date, now: Date) -> Int {
        max(1, Int(until.timeIntervalSince(now).rounded(.up)))
    }
}
