// TEMPORARY: stands in for the outbound helper's App/OutboundHTTP.swift until it is merged.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

public struct TargetGuard: Sendable {
    public var allowed: [IPNetwork]
    public init(allowed: [IPNetwork]) { self.allowed = allowed }
    public func validate(url: String) -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
            return "must be an http or https URL with a host"
        }
        return nil
    }
    public func validateResolving(url: String) async -> String? { validate(url: url) }
}

public struct OutboundRequest: Sendable {
    public var method: HTTPMethod = .POST
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var timeout: TimeInterval
    public var maximumResponseBytes: Int
    public init(url: String, headers: [(String, String)], body: [UInt8], timeout: TimeInterval, maximumResponseBytes: Int) {
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.maximumResponseBytes = maximumResponseBytes
    }
}

public struct OutboundResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var bodyTruncated: Bool
    public var duration: TimeInterval
}

public struct OutboundFailure: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable { case invalidURL, blocked, resolution, timeout, connection, tls, tooLarge, protocolError }
    public var kind: Kind
    public var description: String
    public var duration: TimeInterval
}

public final class OutboundHTTP: Sendable {
    public let targetGuard: TargetGuard
    static let shared: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
    var client: HTTPClient { Self.shared }
    public init(guard targetGuard: TargetGuard) {
        self.targetGuard = targetGuard
    }

    public func send(_ request: OutboundRequest) async throws -> OutboundResponse {
        let start = ContinuousClock.now
        func elapsed() -> TimeInterval {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = request.method
        for (name, value) in request.headers { outbound.headers.add(name: name, value: value) }
        outbound.body = .bytes(ByteBuffer(bytes: request.body))
        do {
            let response = try await client.execute(outbound, timeout: .milliseconds(Int64(request.timeout * 1000)))
            var body: [UInt8] = []
            var truncated = false
            for try await chunk in response.body {
                body.append(contentsOf: chunk.readableBytesView.prefix(request.maximumResponseBytes - body.count))
                if body.count >= request.maximumResponseBytes {
                    truncated = true
                    break
                }
            }
            return OutboundResponse(
                status: Int(response.status.code),
                headers: response.headers.map { ($0.name, $0.value) },
                body: body,
                bodyTruncated: truncated,
                duration: elapsed()
            )
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw OutboundFailure(kind: .timeout, description: "no answer within \(request.timeout) s", duration: elapsed())
        } catch {
            throw OutboundFailure(kind: .connection, description: "\(error)", duration: elapsed())
        }
    }

}
