import Crypto
import Foundation
import NIOConcurrencyHelpers

/// An endpoint as delivery needs it, its secrets opened: built once per endpoint version and kept,
/// so a delivery costs no AES-GCM open and no JSON parse of the endpoint.
struct DeliveryTarget: Sendable {
    var id: String
    var workspaceID: String
    var label: String
    var url: String
    var status: Endpoint.Status
    var fifo: Bool
    var rateLimit: Int?
    var createdAt: Date
    var headers: [(String, String)]
    var secretHeaders: [(String, String)]
    var key: SymmetricKey
    var previousKey: SymmetricKey?
    var previousKeyUntil: Date?
    var alertEmails: [String]
    var matcher: CompiledSubscriptions
    var transformation: String?

    func signingKeys(at now: Date) -> [SymmetricKey] {
        guard let previousKey, let until = previousKeyUntil, now < until else { return [key] }
        return [key, previousKey]
    }
}

/// Targets by endpoint id, rebuilt when the endpoint's row changed (its `updated_at`).
final class DeliveryTargets: Sendable {
    private let sealer: Sealer
    private let cache = NIOLockedValueBox<[String: (updatedAt: Date, target: DeliveryTarget)]>([:])

    init(sealer: Sealer) { self.sealer = sealer }

    func target(for row: EndpointStore.Row) throws -> DeliveryTarget {
        let endpoint = row.endpoint
        if let cached = cache.withLockedValue({ $0[endpoint.id] }), cached.updatedAt == endpoint.updatedAt,
            cached.target.status == endpoint.status
        {
            return cached.target
        }
        guard let key = WebhookSignature.key(of: try sealer.open(row.secret)) else {
            throw SealerError("the signing secret of \(endpoint.id) is not a whsec_ secret")
        }
        var secretHeaders: [(String, String)] = []
        if let sealed = row.secretHeaders, case .object(let map) = try JSONValue.parse(text: try sealer.open(sealed)) {
            secretHeaders = map.keys.sorted().map { ($0, map[$0]?.stringValue ?? "") }
        }
        let target = DeliveryTarget(
            id: endpoint.id,
            workspaceID: endpoint.workspaceID,
            label: endpoint.name ?? endpoint.url,
            url: endpoint.url,
            status: endpoint.status,
            fifo: endpoint.fifo,
            rateLimit: endpoint.rateLimit,
            createdAt: endpoint.createdAt,
            headers: endpoint.headers.keys.sorted().map { ($0, endpoint.headers[$0] ?? "") },
            secretHeaders: secretHeaders,
            key: key,
            previousKey: try row.previousSecret.flatMap { WebhookSignature.key(of: try sealer.open($0)) },
            previousKeyUntil: row.previousSecretUntil,
            alertEmails: endpoint.alertEmails,
            matcher: try SubscriptionList(storedText: endpoint.subscriptions.jsonText).compiled(),
            transformation: endpoint.transformation
        )
        cache.withLockedValue { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[endpoint.id] = (endpoint.updatedAt, target)
        }
        return target
    }
}

/// Spaces one endpoint's deliveries `1/rate_limit` seconds apart in this process.
final class DeliveryPacer: Sendable {
    private let next = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    /// Longer waits are not spent holding a leased delivery in memory: it is put back, due then.
    static let longestWait = Duration.seconds(1)

    enum Turn {
        case now
        case after(Duration)
        /// Not within `longestWait`: the endpoint's next free slot is this far away.
        case later(Duration)
    }

    func reserve(_ target: DeliveryTarget) -> Turn {
        guard let rate = target.rateLimit, rate > 0 else { return .now }
        let spacing = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        let now = ContinuousClock.now
        return next.withLockedValue { next in
            let slot = max(now, next[target.id] ?? now)
            guard slot - now <= Self.longestWait else { return .later(slot - now) }
            next[target.id] = slot + spacing
            return slot > now ? .after(slot - now) : .now
        }
    }
}
