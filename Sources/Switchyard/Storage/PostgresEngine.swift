import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// PostgreSQL through postgres-nio. A read body runs on a thread of a dedicated pool with a
/// connection of its own and waits for each statement's answer, so stores stay synchronous; the
/// event loops only move bytes and Swift's concurrency threads never block. Writes go through the
/// group-commit writer (`PostgresWriter`), on threads and connections of its own.
final class PostgresEngine: DatabaseEngine {
    let dialect = SQLDialect.postgres
    private let threads: NIOThreadPool
    private let eventLoops: MultiThreadedEventLoopGroup
    private let connections: PostgresConnectionPool
    private let writer: PostgresWriter

    init(config: PostgresURL, logger: Logger) async throws {
        // Before any thread starts: a bad CA file is refused with nothing to shut down.
        let tls = try PostgresTLS.configuration(for: config)
        threads = NIOThreadPool(numberOfThreads: config.poolSize)
        threads.start()
        eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        connections = PostgresConnectionPool(config: config, tls: tls, eventLoops: eventLoops, logger: logger)
        writer = PostgresWriter(connections: connections, lanes: config.writeLanes, maximumBatch: config.writeBatch)
        // Fail at start, with the reason, rather than on the first request.
        _ = try await read { tx in try tx.query("SELECT 1 AS one") }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        // Unsafe continuation: the writer finishes each unit exactly once (as on SQLite).
        try await withUnsafeThrowingContinuation { continuation in
            writer.submit(TypedWriteUnit(body: body, continuation: continuation))
        }
    }

    /// A read body runs in one read-only `REPEATABLE READ` transaction, so all its statements see
    /// one snapshot (as on SQLite) and a write in it is refused.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        try await threads.runIfActive { [connections] in
            try connections.withConnection { connection in
                try PostgresRead.run(on: connection, logger: connections.logger, body)
            }
        }
    }

    func close() async {
        await writer.close()
        try? await threads.shutdownGracefully()
        connections.closeAll()
        try? await eventLoops.shutdownGracefully()
    }
}

/// Connections handed to pool threads. There are never more bodies running than threads, and as
/// many connections as threads at most, so taking one never waits.
final class PostgresConnectionPool: Sendable {
    let logger: Logger
    private let config: PostgresConnection.Configuration
    private let eventLoops: MultiThreadedEventLoopGroup
    private let idle = NIOLockedValueBox<[PostgresConnection]>([])
    private let nextID = ManagedAtomicCounter()
    /// For the hint of an untrusted certificate.
    private let caFile: String?

    init(config url: PostgresURL, tls: PostgresConnection.Configuration.TLS, eventLoops: MultiThreadedEventLoopGroup, logger: Logger) {
        self.logger = logger
        self.eventLoops = eventLoops
        self.caFile = url.sslRootCert
        // postgres-nio sends the host as SNI and NIOSSL checks the certificate against it; for an IP
        // literal (not allowed in SNI) it sends none and NIOSSL matches the certificate's IP
        // addresses against the connected peer instead. So tlsServerName stays unset.
        var config = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.user,
            password: url.password,
            database: url.database,
            tls: tls
        )
        var parameters = [
            ("statement_timeout", "30s"),
            ("idle_in_transaction_session_timeout", "60s"),
            ("application_name", "switchyard"),
        ]
        if let searchPath = url.searchPath { parameters.append(("search_path", searchPath)) }
        config.options.additionalStartupParameters = parameters
        config.options.connectTimeout = .seconds(10)
        self.config = config
    }

    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try take()
        do {
            let result = try body(connection)
            give(connection)
            return result
        } catch {
            // A broken connection is dropped; the next body opens a new one.
            if !connection.isClosed { give(connection) }
            throw error
        }
    }

    private func take() throws -> PostgresConnection {
        if let connection = idle.withLockedValue({ $0.popLast() }), !connection.isClosed {
            return connection
        }
        do {
            return try PostgresConnection.connect(
                on: eventLoops.next(),
                configuration: config,
                id: nextID.next(),
                logger: logger
            ).wait()
        } catch {
            let host = config.host ?? "?"
            let port = config.port ?? 0
            if let tlsFailure = PostgresTLS.describe(error, host: host, port: port, caFile: caFile) { throw tlsFailure }
            throw StorageError.unavailable("cannot connect to PostgreSQL at \(host):\(port): \(String(reflecting: error))")
        }
    }

    private func give(_ connection: PostgresConnection) {
        idle.withLockedValue { $0.append(connection) }
    }

    func closeAll() {
        let all = idle.withLockedValue { list -> [PostgresConnection] in
            defer { list.removeAll() }
            return list
        }
        for connection in all { try? connection.close().wait() }
    }
}

/// TLS towards PostgreSQL: always full verification (chain and name), against the system's CAs or
/// the ones in `sslrootcert`. Unlike libpq, `require` verifies: encryption to an unchecked peer
/// protects nothing from a man in the middle.
enum PostgresTLS {
    static func configuration(for url: PostgresURL) throws -> PostgresConnection.Configuration.TLS {
        switch url.tls {
        case .disable: return .disable
        case .prefer: return .prefer(try makeContext(caFile: url.sslRootCert))
        case .require: return .require(try makeContext(caFile: url.sslRootCert))
        }
    }

    static func makeContext(caFile: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .certificates(try rootCertificates(caFile)) }
        return try NIOSSLContext(configuration: configuration)
    }

    /// The certificates of a PEM file, or an error that says what is wrong with it (never the URL,
    /// which may hold the password).
    static func rootCertificates(_ path: String) throws -> [NIOSSLCertificate] {
        func problem(_ why: String) -> StorageError { .invalidURL("sslrootcert=\(path): \(why)") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw problem("no such file") }
        guard !isDirectory.boolValue else { throw problem("is a directory, not a PEM file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw problem("cannot read the file") }
        guard !String(decoding: data, as: UTF8.self).allSatisfy(\.isWhitespace) else { throw problem("the file is empty") }
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(data)), !certificates.isEmpty else {
            throw problem("no certificate in PEM form (-----BEGIN CERTIFICATE-----) in the file")
        }
        return certificates
    }

    /// What went wrong with TLS, in words, or nil when `error` is not about TLS.
    static func describe(_ error: any Error, host: String, port: Int, caFile: String?) -> StorageError? {
        let peer = "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        let failed = "TLS with the database at \(peer) failed"
        if let error = error as? PSQLError {
            if error.code == .sslUnsupported {
                return .unavailable(
                    "the database at \(peer) does not accept TLS, and sslmode=require asks for it; "
                        + "turn on ssl in PostgreSQL (or, on a network you trust, use sslmode=prefer or disable)"
                )
            }
            return error.underlying.flatMap { describe($0, host: host, port: port, caFile: caFile) }
        }
        switch TLSFailure.classify(error) {
        case nil:
            return nil
        case .wrongHost:
            return .unavailable("\(failed): the server's certificate is not valid for \(host)")
        case .untrustedCertificate:
            let trust =
                caFile.map { "by the CA certificates in sslrootcert=\($0)" }
                ?? "by the system's CA certificates; for a private CA add sslrootcert=/path/to/ca.pem to the URL"
            return .unavailable("\(failed): the server's certificate is not trusted (unknown issuer, expired or otherwise invalid) \(trust)")
        case .notTLS:
            return .unavailable("\(failed): the server does not speak TLS there (WRONG_VERSION_NUMBER)")
        case .other(let detail):
            return .unavailable("\(failed): \(detail)")
        }
    }
}

final class ManagedAtomicCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int {
        value.withLockedValue {
            $0 += 1
            return $0
        }
    }
}
