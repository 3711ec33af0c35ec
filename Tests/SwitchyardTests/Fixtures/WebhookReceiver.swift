import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

@testable import Switchyard

/// A real HTTP receiver on loopback for webhook tests: records every request and answers as
/// `answer` says for the request's number (from 1).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var headers: [String: String]
        var body: String
        var json: JSONValue? { try? JSONValue.parse(text: body) }
    }

    struct Answer: Sendable {
        var status: Int
        var headers: [String: String] = [:]
        var body: String = ""
        static let ok = Answer(status: 204)
    }

    private let received: NIOLockedValueBox<[Received]>
    let answer: NIOLockedValueBox<@Sendable (Int) -> Answer>
    let port: Int
    private let task: Task<Void, Error>

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var requests: [Received] { received.withLockedValue { $0 } }

    private init(port: Int, task: Task<Void, Error>, received: NIOLockedValueBox<[Received]>, answer: NIOLockedValueBox<@Sendable (Int) -> Answer>) {
        self.port = port
        self.task = task
        self.answer = answer
        self.received = received
    }

    func answer(_ make: @escaping @Sendable (Int) -> Answer) { answer.withLockedValue { $0 = make } }

    static func start(_ answer: @escaping @Sendable (Int) -> Answer = { _ in .ok }) async throws -> WebhookReceiver {
        let received = NIOLockedValueBox<[Received]>([])
        let answerBox = NIOLockedValueBox<@Sendable (Int) -> Answer>(answer)
        let router = Router()
        router.post("hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 22)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let number = received.withLockedValue { list in
                list.append(Received(headers: headers, body: String(buffer: body)))
                return list.count
            }
            let answer = answerBox.withLockedValue { $0 }(number)
            var fields = HTTPFields()
            for (name, value) in answer.headers { if let name = HTTPField.Name(name) { fields[name] = value } }
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: TestDatabase.logger
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw SealerError("the receiver did not start") }
        return WebhookReceiver(port: port, task: task, received: received, answer: answerBox)
    }

    func stop() { task.cancel() }
}
