import Foundation
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where to send mail, and how to protect the connection:
///
/// - `smtp://[user:password@]host[:25]`: plain SMTP, for a local relay or a mail catcher;
/// - `smtp+starttls://[user:password@]host[:587]?ca=…`: plain, then STARTTLS before anything else;
/// - `smtps://[user:password@]host[:465]?ca=…`: TLS from the first byte.
public struct SMTPURL: Sendable, Equatable, CustomStringConvertible {
    public enum Security: String, Sendable, CaseIterable {
        case plain = "smtp"
        case startTLS = "smtp+starttls"
        case implicitTLS = "smtps"

        var defaultPort: Int {
            switch self {
            case .plain: 25
            case .startTLS: 587
            case .implicitTLS: 465
            }
        }
    }

    public var security: Security
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    /// A PEM file of the roots to trust instead of the system's (`?ca=`).
    public var caFile: String?

    static let options: Set<String> = ["ca"]

    public init(parsing string: String) throws {
        let shape = "--smtp-url must look like smtp://host:port, smtp+starttls://user:password@host:587 or smtps://user:password@host:465"
        guard let components = URLComponents(string: string),
            let security = components.scheme.flatMap({ Security(rawValue: $0.lowercased()) }),
            var host = components.host, !host.isEmpty
        else {
            throw ConfigurationError(shape)
        }
        // Foundation keeps the brackets of an IPv6 literal; connecting and verifying need it bare.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard components.path.isEmpty || components.path == "/", components.fragment == nil else {
            throw ConfigurationError("\(shape) (no path or #fragment)")
        }
        let port = components.port ?? security.defaultPort
        guard (1...65535).contains(port) else { throw ConfigurationError("--smtp-url: the port must be from 1 to 65535") }

        let items = components.queryItems ?? []
        // Only names: a value could be a secret someone put in the wrong place.
        let unknown = items.map(\.name).filter { !Self.options.contains($0) }
        guard unknown.isEmpty else {
            throw ConfigurationError("--smtp-url has unknown options: \(unknown.joined(separator: ", ")) (the only option is ?ca=/path/to/ca.pem)")
        }
        let cas = items.filter { $0.name == "ca" }
        guard cas.count <= 1 else { throw ConfigurationError("--smtp-url: give ?ca= once") }
        var caFile: String?
        if let ca = cas.first {
            guard security != .plain else {
                throw ConfigurationError("--smtp-url: ?ca= applies to smtp+starttls:// and smtps:// only; smtp:// does not use TLS")
            }
            guard let path = ca.value, !path.isEmpty else { throw ConfigurationError("--smtp-url: ?ca= needs the path of a PEM file") }
            try Self.checkCAFile(path)
            caFile = path
        }

        self.security = security
        self.host = host
        self.port = port
        self.user = components.user.flatMap { $0.isEmpty ? nil : $0 }
        self.password = components.password
        self.caFile = caFile
        guard self.user != nil || password == nil else {
            throw ConfigurationError("--smtp-url has a password but no user; use user:password@host")
        }
        // AUTH PLAIN is base64, not encryption: over plain SMTP it is readable by anyone on the way.
        if security == .plain, self.user != nil, !Self.isLoopback(host) {
            throw ConfigurationError(
                "--smtp-url would send the SMTP password in clear to \(host): use smtp+starttls://…:587 or smtps://…:465 "
                    + "(plain smtp:// with a user is allowed only to a loopback host: localhost, 127.0.0.0/8, ::1)"
            )
        }
    }

    /// Loaded once at start so a missing or unreadable file stops the server instead of failing
    /// every message later.
    private static func checkCAFile(_ path: String) throws {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw ConfigurationError("--smtp-url: cannot read CA certificates (PEM) from \(path)")
        }
        guard !certificates.isEmpty else { throw ConfigurationError("--smtp-url: \(path) holds no PEM certificate") }
    }

    /// `localhost`, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address): traffic to them never
    /// leaves the machine.
    static func isLoopback(_ host: String) -> Bool {
        let name = host.lowercased()
        if name == "localhost" || name == "localhost." { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
        return bytes.prefix(12) == [UInt8](repeating: 0, count: 10) + [0xff, 0xff] && bytes[12] == 127
    }

    /// Without the password, for logs and errors.
    public var description: String {
        let address = host.contains(":") ? "[\(host)]" : host
        let ca = caFile.map { "?ca=\($0)" } ?? ""
        return "\(security.rawValue)://\(user.map { $0 + "@" } ?? "")\(address):\(port)\(ca)"
    }
}
