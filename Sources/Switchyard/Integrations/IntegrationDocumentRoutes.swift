import Foundation
import Hummingbird
import NIOCore

/// `GET /v1/integrations/{id}.yaml` and `POST /v1/integrations/import`.
struct IntegrationDocumentRoutes {
    let integrations: IntegrationService
    let maximumBodySize: Int

    var routes: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get("integrations/{integration_id}.yaml", use: export)
            .post("integrations/import", use: importDocument)
    }

    @Sendable func export(_ request: Request, context: AppRequestContext) async throws -> Response {
        var id = try context.parameters.require("integration_id")
        if id.hasSuffix(".yaml") { id.removeLast(".yaml".count) }
        let document = try await integrations.exportDocument(caller: try context.caller(), id: id)
        let filename = document.name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/yaml; charset=utf-8",
                .contentDisposition: "attachment; filename=\"\(String(filename)).yaml\"",
            ],
            body: .init(byteBuffer: ByteBuffer(string: document.yaml))
        )
    }

    /// The body is the YAML document itself (JSON, being YAML, is read too).
    @Sendable func importDocument(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<Integration> {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maximumBodySize)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(maximumBodySize)
        }
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self) else {
            throw APIError.malformed("The document must be UTF-8 text.")
        }
        let created = try await integrations.importDocument(caller: try context.caller(), yaml: text)
        return EditedResponse(status: .created, response: created)
    }
}
