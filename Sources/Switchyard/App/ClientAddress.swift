import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 network, `10.0.0.0/8` or a single address: which peers are proxies whose
/// `X-Forwarded-For` may be believed.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefixLength: Int
    public let description: String

    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPNetwork.bytes(of: String(parts[0])) else {
            throw ConfigurationError("\(text) is not an IP address or network such as 10.0.0.0/8 or fd00::/8")
        }
        let maximum = address.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : maximum
        guard let length, (0...maximum).contains(length) else {
            throw ConfigurationError("\(text): the prefix length must be from 0 to \(maximum)")
        }
        bytes = address
        prefixLength = length
        description = text
    }

    public func contains(_ address: String) -> Bool {
        guard let other = IPNetwork.bytes(of: address) else { return false }
        return contains(bytes: other)
    }

    /// Whether an address given as `bytes(of:)` gives it (4 or 16 bytes) is inside.
    func contains(bytes other: [UInt8]) -> Bool {
        guard other.count == bytes.count else { return false }
        var remaining = prefixLength
        for (mine, theirs) in zip(bytes, other) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if mine & mask != theirs & mask { return false }
            remaining -= 8
        }
        return true
    }

    /// 4 or 16 bytes; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as its IPv4 bytes, since
    /// that is how a dual-stack socket reports IPv4 peers.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let raw = withUnsafeBytes(of: &v6) { Array($0) }
        if raw[0..<10].allSatisfy({ $0 == 0 }) && raw[10] == 0xFF && raw[11] == 0xFF { return Array(raw[12...]) }
        return raw
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not one (read right to left: each proxy appends the address it
/// got the request from, so only the entries our own proxies added can be believed).
public enum ClientAddress {
    public static func resolve(peer: String?, forwardedFor: [String], trusted: [IPNetwork]) -> String? {
        guard let peer, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { address(of: $0.trimmingCharacters(in: .whitespaces)) }
        var client = peer
        for hop in hops.reversed() {
            // Garbage means the chain can no longer be followed: keep the last address believed.
            guard IPNetwork.bytes(of: hop) != nil else { break }
            client = hop
            if !trusted.contains(where: { $0.contains(hop) }) { break }
        }
        return client
    }

    /// The address of an entry, without the port or brackets some load balancers add
    /// (`1.2.3.4:5678`, `[2001:db8::1]:443`).
    static func address(of entry: String) -> String {
        if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
            return String(entry[entry.index(after: entry.startIndex)..<close])
        }
        if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
            return String(entry[..<colon])
        }
        return entry
    }
}
