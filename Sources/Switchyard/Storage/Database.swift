import Foundation
import Logging

/// What an engine provides; features never see an engine, only `Database`.
protocol DatabaseEngine: Sendable {
    var dialect: SQLDialect { get }
    func write<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T
    func read<T: Sendable>(oneTrip: Bool, _ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T
    func close() async
}

/// The one way into storage: `try await database.write { tx in … }` and `database.read { tx in … }`.
/// Bodies are synchronous and run on the engine's own threads, never on Swift's shared
/// concurrency threads or an event loop, so a whole transaction runs without a hop per statement.
public final class Database: Sendable {
    let engine: any DatabaseEngine
    public let url: DatabaseURL

    public var dialect: SQLDialect { engine.dialect }

    init(engine: any DatabaseEngine, url: DatabaseURL) {
        self.engine = engine
        self.url = url
    }

    /// Opens the database the URL names; migrations are run separately (`Migrator`).
    public static func open(_ url: DatabaseURL, logger: Logger) async throws -> Database {
        switch url {
        case .sqlite(let path):
            return Database(engine: try SQLiteEngine(path: path, logger: logger), url: url)
        case .postgres(let config):
            return Database(engine: try await PostgresEngine(config: config, logger: logger), url: url)
        }
    }

    /// Runs `body` in a write transaction. On SQLite it shares a commit with other waiting units, in
    /// a savepoint of its own: if it throws, only its own changes are undone.
    @discardableResult
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        try await engine.write(body)
    }

    /// Runs `body` in a read transaction: every statement of it sees one snapshot, and a write in
    /// it is refused. `oneTrip`: the body is meant to send its statements together and wait once
    /// (a hot read that prefetches, `Authenticator.read(_:prefetch:_:)`), so on PostgreSQL it
    /// needs no `BEGIN` and `COMMIT` of its own; one that waits again is run again from the start
    /// in a transaction (`PostgresRead`), so it must not act on the world. SQLite ignores it.
    public func read<T: Sendable>(oneTrip: Bool = false, _ body: @escaping @Sendable (SQLTx) throws -> T) async throws -> T {
        try await engine.read(oneTrip: oneTrip, body)
    }

    /// Whether a read reaches the database, for `/readyz`.
    public func isReachable() async -> Bool {
        (try? await read { tx in try tx.query("SELECT 1 AS one") }) != nil
    }

    public func close() async {
        await engine.close()
    }
}

/// `sqlite:///absolute/path`, `sqlite://relative/path`, or
/// `postgres://user:password@host:port/db?sslmode=disable|prefer|require&sslrootcert=/path/ca.pem`.
public enum DatabaseURL: Sendable, CustomStringConvertible, Equatable {
    case sqlite(path: String)
    case postgres(PostgresURL)

    public static let defaultSQLite = "sqlite://switchyard-data/switchyard.sqlite"

    public init(parsing string: String) throws {
        if string.hasPrefix("sqlite://") {
            let path = String(string.dropFirst("sqlite://".count))
            guard !path.isEmpty else {
                throw StorageError.invalidURL("sqlite URL has no path; use sqlite:///absolute/path or sqlite://relative/path")
            }
            self = .sqlite(path: path)
        } else if string.hasPrefix("postgres://") || string.hasPrefix("postgresql://") {
            self = .postgres(try PostgresURL(parsing: string))
        } else {
            throw StorageError.invalidURL("expected sqlite:///path or postgres://user@host:port/db")
        }
    }

    /// The URL without any password, for logs.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite://\(path)"
        case .postgres(let p):
            let host = p.host.contains(":") ? "[\(p.host)]" : p.host
            return "postgres://\(p.user)@\(host):\(p.port)/\(p.database)"
        }
    }
}

public struct PostgresURL: Sendable, Equatable {
    public enum TLSMode: String, Sendable { case disable, prefer, require }
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// Read threads per process (`pool_size`), each with a connection of its own.
    public var poolSize: Int
    /// Write transactions running at once (`write_lanes`), each on a connection of its own.
    public var writeLanes: Int
    /// Units one write transaction takes at most (`write_batch`); 1 makes each its own transaction.
    public var writeBatch: Int
    /// Tests give each suite its own schema in one database.
    public var searchPath: String?
    /// A PEM file of the CA certificates to trust instead of the system's (libpq's name), for a
    /// server whose certificate comes from a private CA (managed PostgreSQL, a corporate CA).
    /// Read when the database opens, so a bad file stops the server at start.
    public var sslRootCert: String?

    /// Chosen by measurement (docs/operations.md, PostgreSQL): group commit over a few lanes.
    public static let defaultPoolSize = 4
    public static let defaultWriteLanes = 2
    public static let defaultWriteBatch = 64

    public init(parsing string: String) throws {
        guard let components = URLComponents(string: string), var host = components.host, !host.isEmpty else {
            throw StorageError.invalidURL("could not read host from the postgres URL")
        }
        // URLComponents keeps the brackets of an IPv6 literal; the socket address and the TLS
        // name check need the bare address.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = components.port ?? 5432
        self.user = components.user ?? "postgres"
        self.password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.user : path
        var tls = TLSMode.disable
        var poolSize = PostgresURL.defaultPoolSize
        var searchPath: String?
        var sslRootCert: String?
        var writeLanes = PostgresURL.defaultWriteLanes
        var writeBatch = PostgresURL.defaultWriteBatch
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: item.value ?? "") else {
                    throw StorageError.invalidURL("sslmode must be disable, prefer or require")
                }
                tls = mode
            case "pool_size":
                guard let size = Int(item.value ?? ""), (1...256).contains(size) else {
                    throw StorageError.invalidURL("pool_size must be a number from 1 to 256")
                }
                poolSize = size
            case "write_lanes":
                guard let lanes = Int(item.value ?? ""), (1...64).contains(lanes) else {
                    throw StorageError.invalidURL("write_lanes must be a number from 1 to 64")
                }
                writeLanes = lanes
            case "write_batch":
                guard let batch = Int(item.value ?? ""), (1...1024).contains(batch) else {
                    throw StorageError.invalidURL("write_batch must be a number from 1 to 1024")
                }
                writeBatch = batch
            case "search_path":
                searchPath = item.value
            case "sslrootcert":
                guard let path = item.value, !path.isEmpty else {
                    throw StorageError.invalidURL("sslrootcert needs the path of a PEM file of CA certificates")
                }
                sslRootCert = path
            default:
                throw StorageError.invalidURL(
                    "unknown parameter \(item.name); known: sslmode, sslrootcert, pool_size, write_lanes, write_batch, search_path"
                )
            }
        }
        // Without TLS the CA would silently never be used: the operator meant to verify something.
        if sslRootCert != nil, tls == .disable {
            throw StorageError.invalidURL("sslrootcert needs sslmode=require (or prefer); without TLS there is no certificate to check")
        }
        self.tls = tls
        self.poolSize = poolSize
        self.writeLanes = writeLanes
        self.writeBatch = writeBatch
        self.searchPath = searchPath
        self.sslRootCert = sslRootCert
    }
}
