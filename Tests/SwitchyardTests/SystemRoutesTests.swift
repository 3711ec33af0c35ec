import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

/// The anonymous routes outside `/v1` that a newcomer meets first.
@Suite("Front page and OpenAPI document")
struct SystemRoutesTests {
    @Test("GET /openapi.yaml serves docs/openapi.yaml byte for byte")
    func openAPIDocument() async throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: OpenAPITests.specPath))
        try await TestApp.run { app in
            let answer = try await app.request(.get, "/openapi.yaml")
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType] == "application/yaml")
            #expect(Array(answer.body.utf8) == Array(file), "rebuild after editing docs/openapi.yaml")
        }
    }
}
