import Foundation
import Hummingbird
import Testing

@testable import Switchyard

/// docs/openapi.yaml describes every route the router serves: a route added without its
/// documentation fails here.
@Suite("OpenAPI document")
struct OpenAPITests {
    static let specPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml").path

    /// "METHOD /path/{param}" for every operation under `paths:` (two-space path keys, four-space
    /// method keys, as the file is written).
    static func documentedOperations() throws -> Set<String> {
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        var operations: Set<String> = []
        var inPaths = false
        var currentPath: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line.hasPrefix("paths:")
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2)).trimmingCharacters(in: CharacterSet(charactersIn: ": \"'"))
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let path = currentPath {
                let key = line.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: ":"))
                if ["get", "post", "put", "patch", "delete"].contains(key) {
                    operations.insert("\(key.uppercased()) \(path)")
                }
            }
        }
        return operations
    }

    static func servedOperations() async throws -> Set<String> {
        try await TestDatabase.with { database in
            let services = AppServices(configuration: AppConfiguration(), database: database, logger: TestDatabase.logger)
            let router = buildRouter(services)
            var operations: Set<String> = []
            for route in router.routes {
                let path = route.path.description
                    .split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                    .joined(separator: "/")
                operations.insert("\(route.method.rawValue) /\(path)")
            }
            return operations
        }
    }

    @Test("every route is documented, and every documented route exists")
    func everyRouteIsDocumented() async throws {
        let served = try await Self.servedOperations()
        let documented = try Self.documentedOperations()
        #expect(served.count > 10)
        #expect(served.subtracting(documented).sorted() == [], "routes missing from docs/openapi.yaml")
        #expect(documented.subtracting(served).sorted() == [], "documented routes the server does not serve")
    }
}
