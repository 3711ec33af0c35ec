import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Why an address may not be the target of an outbound request (webhooks, connectors, OAuth).
public enum BlockReason: String, Sendable, Equatable, CustomStringConvertible {
    case loopback
    case privateNetwork = "private"
    case linkLocal = "link-local"
    case multicast
    case unspecified
    case broadcast
    /// Reserved or special-purpose ranges that are never a public receiver (240/4, 192.0.0/24, ...).
    case reserved
    /// A cloud provider's instance metadata service: refused even inside an allowed network.
    case metadata
    case notAnAddress = "not an address"

    public var description: String {
        switch self {
        case .loopback: "a loopback address"
        case .privateNetwork: "a private network address"
        case .linkLocal: "a link-local address"
        case .multicast: "a multicast address"
        case .unspecified: "an unspecified address"
        case .broadcast: "the broadcast address"
        case .reserved: "a reserved address"
        case .metadata: "a cloud metadata address, which is never allowed"
        case .notAnAddress: "not an IP address"
        }
    }
}

/// What is wrong with a target URL, in words an API answer can show (never a secret: URLs with
/// user info are refused, not echoed).
public enum URLProblem: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed
    case unsupportedScheme(String)
    case missingHost
    case userInfo
    case invalidHost(String)
    case invalidPort
    /// `host` is the URL's host (a name or the literal address itself), `address` what it is or
    /// resolves to: answered as `blocked-target`, the others as `validation-failed`.
    case blocked(host: String, address: String, reason: BlockReason)

    public var isBlocked: Bool {
        if case .blocked = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .malformed: "is not a valid URL"
        case .unsupportedScheme(let scheme): "must be an http or https URL, not \(scheme)"
        case .missingHost: "has no host"
        case .userInfo: "must not contain a user name or password"
        case .invalidHost(let host): "has an invalid host \(host)"
        case .invalidPort: "has an invalid port (1 to 65535)"
        case .blocked(let host, let address, let reason):
            host == address
                ? "\(address) is not an allowed target (\(reason))"
                : "\(host) resolves to \(address), which is not an allowed target (\(reason))"
        }
    }
}

/// The SSRF guard of every outbound request: which addresses may be connected to. Loopback,
/// private, link-local, multicast, unspecified, broadcast and reserved addresses are refused
/// unless the operator allowed a network holding them (`--allowed-target-networks`); cloud
/// metadata addresses are refused always. IPv4 written inside IPv6 (`::ffff:127.0.0.1`, NAT64
/// `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`) is judged as the IPv4 address it reaches.
public struct TargetGuard: Sendable {
    public let allowedNetworks: [IPNetwork]

    public init(allowedNetworks: [IPNetwork] = []) {
        self.allowedNetworks = allowedNetworks
    }

    /// nil when `address` (an IPv4 or IPv6 literal) may be connected to.
    public func check(address: String) -> BlockReason? {
        guard let bytes = IPNetwork.bytes(of: address) else { return .notAnAddress }
        return check(bytes: bytes)
    }

    func check(bytes: [UInt8]) -> BlockReason? {
        let embedded = Self.embeddedIPv4(bytes)
        if Self.metadata.contains(bytes) || embedded.map(Self.metadata.contains) == true { return .metadata }
        let allowed = allowedNetworks.contains { network in
            network.contains(bytes: bytes) || embedded.map { network.contains(bytes: $0) } == true
        }
        if allowed { return nil }
        if let reason = Self.classify(bytes) { return reason }
        return embedded.flatMap(Self.classify)
    }

    /// For creation time, without I/O: the URL's form, and its host when that is a literal
    /// address (numeric forms getaddrinfo would accept, such as `2130706433`, included).
    public func validate(url text: String) -> URLProblem? {
        switch OutboundTarget.parse(text) {
        case .failure(let problem): return problem
        case .success(let target):
            guard let bytes = target.literalBytes else { return nil }
            return check(bytes: bytes).map { .blocked(host: target.host, address: target.host, reason: $0) }
        }
    }

    /// `validate(url:)`, then every address the host resolves to (getaddrinfo, on NIO's blocking
    /// thread pool). A name that does not resolve is accepted: the receiver may come later, and
    /// every request checks again.
    public func validateResolving(url text: String) async -> URLProblem? {
        if let problem = validate(url: text) { return problem }
        guard case .success(let target) = OutboundTarget.parse(text), target.literalBytes == nil else { return nil }
        let host = target.host
        guard let addresses = try? await NIOThreadPool.singleton.runIfActive({ try HostResolver.addresses(of: host) }) else {
            return nil
        }
        return firstBlocked(addresses, host: host)
    }

    /// The first of `addresses` that is refused, as the problem to report.
    func firstBlocked(_ addresses: [String], host: String) -> URLProblem? {
        for address in addresses {
            if let reason = check(address: address) { return .blocked(host: host, address: address, reason: reason) }
        }
        return nil
    }

    // MARK: The tables

    private static let metadata: Set<[UInt8]> = Set(
        ["169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"].compactMap(IPNetwork.bytes(of:))
    )

    /// Most specific first: the first network holding an address gives its reason.
    private static let blocked: [(IPNetwork, BlockReason)] = [
        ("0.0.0.0/8", .unspecified), ("10.0.0.0/8", .privateNetwork), ("100.64.0.0/10", .privateNetwork),
        ("127.0.0.0/8", .loopback), ("169.254.0.0/16", .linkLocal), ("172.16.0.0/12", .privateNetwork),
        ("192.0.0.0/24", .reserved), ("192.168.0.0/16", .privateNetwork), ("198.18.0.0/15", .reserved),
        ("224.0.0.0/4", .multicast), ("255.255.255.255/32", .broadcast), ("240.0.0.0/4", .reserved),
        ("::/128", .unspecified), ("::1/128", .loopback), ("fc00::/7", .privateNetwork), ("fe80::/10", .linkLocal),
        ("fec0::/10", .privateNetwork), ("ff00::/8", .multicast), ("64:ff9b:1::/48", .privateNetwork),
        ("100::/64", .reserved),
    ].compactMap { text, reason in (try? IPNetwork(parsing: text)).map { ($0, reason) } }

    private static func classify(_ bytes: [UInt8]) -> BlockReason? {
        blocked.first { $0.0.contains(bytes: bytes) }?.1
    }

    /// The IPv4 address an IPv6 address stands for: NAT64 (64:ff9b::/96), 6to4 (2002::/16) and
    /// the deprecated IPv4-compatible form (::/96). IPv4-mapped addresses are already IPv4 bytes.
    static func embeddedIPv4(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16 else { return nil }
        let nat64: [UInt8] = [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]
        if bytes[0..<12].elementsEqual(nat64) || bytes[0..<12].allSatisfy({ $0 == 0 }) { return Array(bytes[12..<16]) }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return Array(bytes[2..<6]) }
        return nil
    }
}

/// A target URL taken apart the way async-http-client takes it apart (Foundation's `URL`, the
/// host without IPv6 brackets), so that the host we resolve and pin is the very host it connects to.
struct OutboundTarget: Sendable {
    let url: URL
    /// As async-http-client keys `dnsOverride`: `url.host` without brackets.
    let host: String
    /// The host is an IP literal by `inet_pton` (async-http-client then connects to it directly).
    let isAddress: Bool
    /// The address of a literal host, including the numeric forms `inet_aton` accepts (`127.1`,
    /// `0x7f000001`), which async-http-client would hand to getaddrinfo.
    let literalBytes: [UInt8]?

    static func parse(_ text: String) -> Result<OutboundTarget, URLProblem> {
        guard let url = URL(string: text), let scheme = url.scheme else { return .failure(.malformed) }
        guard ["http", "https"].contains(scheme.lowercased()) else { return .failure(.unsupportedScheme(scheme)) }
        guard var host = url.host, !host.isEmpty else { return .failure(.missingHost) }
        if url.user != nil || url.password != nil { return .failure(.userInfo) }
        if let port = url.port, !(1...65535).contains(port) { return .failure(.invalidPort) }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let bytes = IPNetwork.bytes(of: host) {
            return .success(OutboundTarget(url: url, host: host, isAddress: true, literalBytes: bytes))
        }
        // Letters, digits, '-', '_' and '.' only: no percent-encoding or zone id that could make
        // the name we check differ from the name that is connected to.
        let allowed = host.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F
        }
        guard allowed, !host.hasPrefix("."), !host.contains("..") else { return .failure(.invalidHost(host)) }
        var v4 = in_addr()
        let numeric = inet_aton(host, &v4) != 0 ? withUnsafeBytes(of: &v4) { Array($0) } : nil
        return .success(OutboundTarget(url: url, host: host, isAddress: false, literalBytes: numeric))
    }
}

/// getaddrinfo, blocking: call it on a thread pool, never on Swift's concurrency threads or an
/// event loop.
enum HostResolver {
    struct Failure: Error, CustomStringConvertible {
        let host: String
        let message: String
        var description: String { "\(host) could not be resolved: \(message)" }
    }

    /// Every address of `host`, as text (`inet_ntop`), in getaddrinfo's order, duplicates removed.
    static func addresses(of host: String) throws -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else { throw Failure(host: host, message: String(cString: gai_strerror(status))) }
        defer { freeaddrinfo(list) }
        var result: [String] = []
        var entry = list
        while let info = entry?.pointee {
            entry = info.ai_next
            guard let address = info.ai_addr, let text = text(of: address, family: info.ai_family) else { continue }
            if !result.contains(text) { result.append(text) }
        }
        guard !result.isEmpty else { throw Failure(host: host, message: "no address") }
        return result
    }

    private static func text(of address: UnsafeMutablePointer<sockaddr>, family: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written: UnsafePointer<CChar>?
        switch family {
        case AF_INET:
            written = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var raw = v4.pointee.sin_addr
                return inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
            }
        case AF_INET6:
            written = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var raw = v6.pointee.sin6_addr
                return inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
            }
        default:
            return nil
        }
        guard written != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
