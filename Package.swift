// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "switchyard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
        .library(name: "Switchyard", targets: ["Switchyard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Outbound HTTP (webhook deliveries, later connectors and OAuth exchanges): pooling,
        // keep-alive and TLS, wrapped once in App/OutboundHTTP.swift with the SSRF guard.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Already in the graph through hummingbird-auth; named here because record cursors use it.
        .package(url: "https://github.com/swift-extras/swift-extras-base64.git", from: "1.2.0"),
        // Integrations exported and imported as YAML documents (issue 15).
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "Switchyard",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                // SQLite's C interface only: Storage/SQLiteConnection.swift says why not GRDB itself.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                "SwitchyardScript",
                "CJavaScriptCore",
                "CLibPQ",
            ],
            plugins: ["EmbedOpenAPI"]
        ),
        // libpq, PostgreSQL's C client, from Debian's libpq-dev (scripts/deps.sh installs it):
        // Storage/PostgresConnection.swift says why not postgres-nio.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // JavaScriptCore's C API from Debian's libjavascriptcoregtk-4.1-dev (scripts/deps.sh installs it).
        .systemLibrary(
            name: "CJavaScriptCore",
            pkgConfig: "javascriptcoregtk-4.1",
            providers: [.apt(["libjavascriptcoregtk-4.1-dev"])]
        ),
        // The JavaScript engine of the script workers (`switchyard script-worker`): contexts, the
        // prelude, module code, the worker's frame loop. No Foundation, no JSON library.
        .target(name: "SwitchyardScript", dependencies: ["CJavaScriptCore"]),
        // docs/openapi.yaml into the binary, served at /openapi.yaml.
        .plugin(name: "EmbedOpenAPI", capability: .buildTool()),
        .executableTarget(
            name: "switchyard",
            dependencies: [
                "Switchyard",
                "SwitchyardScript",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "switchyard-bench",
            dependencies: [
                "Switchyard",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/SwitchyardBench"
        ),
        // The fuzz properties, shared by switchyard-fuzz (libFuzzer, `make fuzz`) and the bounded
        // pass in SwitchyardTests; `@testable import Switchyard` reaches the query parser.
        .target(name: "SwitchyardFuzzChecks", dependencies: ["Switchyard"], path: "fuzz/FuzzChecks"),
        .target(name: "CLibFuzzer", path: "fuzz/CLibFuzzer"),
        .executableTarget(name: "switchyard-fuzz", dependencies: ["SwitchyardFuzzChecks", "CLibFuzzer"], path: "fuzz/SwitchyardFuzz"),
        .testTarget(
            name: "SwitchyardTests",
            dependencies: [
                "Switchyard",
                "SwitchyardFuzzChecks",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The loopback HTTP receiver of the outbound and webhook tests.
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
