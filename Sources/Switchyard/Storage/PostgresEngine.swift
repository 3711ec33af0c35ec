import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import NIOSSL

/// PostgreSQL through libpq (`PostgresConnection`). A read body runs on a thread of a dedicated pool
/// with a connection of its own, writing its statements and reading the answers itself, so stores
/// stay synchronous and Swift's concurrency threads never block. Writes go through the
/// group-commit writer (`PostgresWriter`), on threads and connections of its own.
final class PostgresEngine: DatabaseEngine {
    let dialect = SQLDialect.postgres
    private let threads: NIOThreadPool
    private let connections: PostgresConnectionPool
    private let writer: PostgresWriter

    init(config: PostgresURL, logger: Logger) async throws {
        // Before any thread starts: a bad CA file is refused with nothing to shut down.
        let parameters = try PostgresTLS.parameters(for: config)
        threads = NIOThreadPool(numberOfThreads: config.poolSize)
        threads.start()
        connections = PostgresConnectionPool(parameters: parameters, logger: logger)
        writer = PostgresWriter(connections: connections, lanes: config.writeLanes, maximumBatch: config.writeBatch)
        // Fail at start, with the reason, rather than on the first request.
        do {
            _ = try await read(oneTrip: false) { tx in try tx.query("SELECT 1 AS one") }
        } catch {
            await close()
            throw error
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        // Unsafe continuation: the writer finishes each unit exactly once (as on SQLite).
        try await withUnsafeThrowingContinuation { continuation in
            writer.submit(TypedWriteUnit(body: body, continuation: continuation))
        }
    }

    /// A read body runs in one read-only `REPEATABLE READ` transaction, so all its statements see
    /// one snapshot (as on SQLite) and a write in it is refused; a read of one round trip in
    /// PostgreSQL's implicit one (`PostgresRead`).
    func read<T: Sendable>(oneTrip: Bool, _ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        try await threads.runIfActive { [connections] in
            try connections.withConnection { connection in try PostgresRead.run(on: connection, oneTrip: oneTrip, body) }
        }
    }

    func close() async {
        await writer.close()
        try? await threads.shutdownGracefully()
        connections.closeAll()
    }
}

/// Connections handed to the read and write threads: taken from the idle ones, or opened.
final class PostgresConnectionPool: Sendable {
    let logger: Logger
    private let parameters: PostgresTLS.Parameters
    private let idle = NIOLockedValueBox<[PostgresConnection]>([])
    private let closed = NIOLockedValueBox(false)

    /// How long a read's queued COMMIT (`PostgresRead`) waits for its connection's next statements
    /// before it is sent alone (checked as often, so at most twice this): under load the next read
    /// comes within microseconds; an idle connection holds its snapshot (and vacuum's horizon) no
    /// longer.
    static let commitDelay = Duration.milliseconds(10)

    init(parameters: PostgresTLS.Parameters, logger: Logger) {
        self.logger = logger
        self.parameters = parameters
        Task.detached { [weak self] in
            while true {
                try? await Task.sleep(for: Self.commitDelay)
                guard let pool = self, !pool.closed.withLockedValue({ $0 }) else { return }
                pool.sendQueuedCommits()
            }
        }
    }

    /// Sends the COMMIT an idle connection has queued for `commitDelay`; its answer is read when
    /// the connection is next taken. Under the lock, not with the connections taken out: a body
    /// finding none idle meanwhile would open one more than `pool_size + write_lanes`.
    private func sendQueuedCommits() {
        let due = ContinuousClock.now - Self.commitDelay
        idle.withLockedValue { idle in
            for connection in idle where connection.hasQueuedStatements && connection.trailingQueuedAt.map({ $0 <= due }) ?? true {
                connection.sync()
            }
        }
    }

    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try take()
        defer { give(connection) }
        return try body(connection)
    }

    private func take() throws -> PostgresConnection {
        while let connection = idle.withLockedValue({ $0.popLast() }) {
            // A read's COMMIT still queued leaves with this body's first statements. One already
            // sent is read now; a connection whose COMMIT failed is not reused.
            if !connection.hasQueuedStatements {
                connection.settle()
                if connection.isBroken || connection.lastCommitFailed() { continue }
            }
            connection.resetIfNeeded()
            return connection
        }
        return try parameters.open()
    }

    private func give(_ connection: PostgresConnection) {
        // A broken connection is dropped; the next body opens a new one.
        guard !connection.isBroken, !connection.discarded else { return }
        let kept = idle.withLockedValue { idle in
            guard !closed.withLockedValue({ $0 }) else { return false }
            idle.append(connection)
            return true
        }
        // Given back after closeAll: dropped, its queued COMMIT sent and answered first.
        if !kept { connection.settle() }
    }

    func closeAll() {
        closed.withLockedValue { $0 = true }
        let connections = idle.withLockedValue { idle in
            defer { idle.removeAll() }
            return idle
        }
        // A queued COMMIT is sent before the connection closes (PostgreSQL would roll it back,
        // which for a read is the same, but the server's log would call it an unexpected EOF).
        for connection in connections where connection.hasQueuedStatements { connection.settle() }
    }
}

/// TLS towards PostgreSQL: always full verification (chain and name), against the system's CAs or
/// the ones in `sslrootcert`. Unlike libpq's own `require`, `require` verifies (libpq's
/// `verify-full`): encryption to an unchecked peer protects nothing from a man in the middle.
/// `prefer` verifies the same way once the server agrees to TLS, and goes without TLS only when the
/// server has none.
enum PostgresTLS {
    /// Debian's bundle of the system's CAs (libpq 15 has no `sslrootcert=system`).
    static let systemRoots = "/etc/ssl/certs/ca-certificates.crt"

    /// libpq's connection parameters for the URL, and how to open a connection with them.
    struct Parameters: Sendable {
        let common: [(String, String)]
        let tls: PostgresURL.TLSMode
        let caFile: String?
        let host: String
        let port: Int

        func open() throws -> PostgresConnection {
            switch tls {
            case .disable:
                return try connect(common + [("sslmode", "disable")])
            case .require:
                return try connect(common + verified)
            case .prefer:
                do {
                    return try connect(common + verified)
                } catch let refusal as StorageError where refusal.description.contains("does not accept TLS") {
                    return try connect(common + [("sslmode", "disable")])
                }
            }
        }

        private var verified: [(String, String)] {
            [("sslmode", "verify-full"), ("sslrootcert", caFile ?? PostgresTLS.systemRoots), ("ssl_min_protocol_version", "TLSv1.2")]
        }

        private func connect(_ parameters: [(String, String)]) throws -> PostgresConnection {
            do {
                return try PostgresConnection.open(parameters)
            } catch let error as PostgresConnectError {
                throw PostgresTLS.describe(error.message, host: host, port: port, caFile: caFile)
            }
        }
    }

    static func parameters(for url: PostgresURL) throws -> Parameters {
        if let caFile = url.sslRootCert { _ = try rootCertificates(caFile) }
        // A read needs no BEGIN of its own: outside one, a session reads in read-only REPEATABLE
        // READ (`PostgresRead`); the writer's BEGIN asks for READ COMMITTED, READ WRITE.
        var options =
            "-c statement_timeout=30s -c idle_in_transaction_session_timeout=60s"
            + " -c default_transaction_isolation=repeatable\\ read -c default_transaction_read_only=on"
        if let searchPath = url.searchPath {
            // libpq's options string: a backslash escapes a space or a backslash.
            let escaped = searchPath.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: " ", with: "\\ ")
            options += " -c search_path=\(escaped)"
        }
        var common = [
            ("host", url.host), ("port", String(url.port)), ("user", url.user), ("dbname", url.database),
            ("application_name", "switchyard"), ("client_encoding", "UTF8"), ("connect_timeout", "10"), ("options", options),
        ]
        if let password = url.password { common.append(("password", password)) }
        return Parameters(common: common, tls: url.tls, caFile: url.sslRootCert, host: url.host, port: url.port)
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

    /// libpq's reason for a failed connection, in words an operator can act on (never the URL,
    /// which may hold the password; libpq's messages name the host and port only).
    static func describe(_ message: String, host: String, port: Int, caFile: String?) -> StorageError {
        let peer = "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        let failed = "TLS with the database at \(peer) failed"
        if message.contains("server does not support SSL") {
            return .unavailable(
                "the database at \(peer) does not accept TLS, and sslmode=require asks for it; "
                    + "turn on ssl in PostgreSQL (or, on a network you trust, use sslmode=prefer or disable)"
            )
        }
        if message.contains("does not match host name") {
            return .unavailable("\(failed): the server's certificate is not valid for \(host)")
        }
        if message.contains("certificate verify failed") {
            let trust =
                caFile.map { "by the CA certificates in sslrootcert=\($0)" }
                ?? "by the system's CA certificates; for a private CA add sslrootcert=/path/to/ca.pem to the URL"
            return .unavailable("\(failed): the server's certificate is not trusted (unknown issuer, expired or otherwise invalid) \(trust)")
        }
        if message.contains("wrong version number") {
            return .unavailable("\(failed): the server does not speak TLS there (WRONG_VERSION_NUMBER)")
        }
        if message.lowercased().contains("ssl") {
            return .unavailable("\(failed): \(message)")
        }
        return .unavailable("cannot connect to PostgreSQL at \(peer): \(message)")
    }
}
