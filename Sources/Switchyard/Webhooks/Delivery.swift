import Foundation

/// One event on its way to one endpoint.
public struct Delivery: Sendable {
    public enum Status: String, Sendable, CaseIterable {
        case pending, succeeded, failed
        /// The endpoint's transformation cancelled it: nothing was sent, and nothing will be.
        case cancelled
    }

    public var id: String
    public var endpointID: String
    public var workspaceID: String
    public var eventID: String
    public var eventType: String
    public var eventPosition: Int64
    public var status: Status
    public var attempts: Int
    public var roundAttempts: Int
    public var nextAttemptAt: Date?
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?

    public var json: JSONValue {
        func time(_ date: Date?) -> JSONValue { date.map { .string(RFC3339.format($0)) } ?? .null }
        return .object([
            "id": .string(id),
            "endpoint_id": .string(endpointID),
            "event_id": .string(eventID),
            "event_type": .string(eventType),
            "status": .string(status.rawValue),
            "attempts": .int(Int64(attempts)),
            "next_attempt_at": status == .pending ? time(nextAttemptAt) : .null,
            "last_status": lastStatus.map { .int(Int64($0)) } ?? .null,
            "last_error": lastError.map(JSONValue.string) ?? .null,
            "created_at": time(createdAt),
            "updated_at": time(updatedAt),
            "finished_at": time(finishedAt),
        ])
    }
}

/// One try at a delivery (or a ping): what was sent and what came back.
public struct DeliveryAttempt: Sendable {
    public var id: String
    public var deliveryID: String?
    public var endpointID: String
    public var number: Int
    public var url: String
    public var requestHeaders: [(String, String)]
    public var requestBody: String
    public var responseStatus: Int?
    public var responseHeaders: [(String, String)]?
    public var responseBody: String?
    public var durationMilliseconds: Double
    public var error: String?
    public var attemptedAt: Date

    public var succeeded: Bool { responseStatus.map { (200..<300).contains($0) } ?? false }

    static func headersJSON(_ headers: [(String, String)]) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for (name, value) in headers {
            let key = name.lowercased()
            if case .string(let earlier)? = object[key] { object[key] = .string(earlier + ", " + value) } else { object[key] = .string(value) }
        }
        return .object(object)
    }

    public var json: JSONValue {
        .object([
            "id": .string(id),
            "delivery_id": deliveryID.map(JSONValue.string) ?? .null,
            "endpoint_id": .string(endpointID),
            "number": .int(Int64(number)),
            "url": .string(url),
            "attempted_at": .string(RFC3339.format(attemptedAt)),
            "request_headers": Self.headersJSON(requestHeaders),
            "request_body": .string(requestBody),
            "response_status": responseStatus.map { .int(Int64($0)) } ?? .null,
            "response_headers": responseHeaders.map(Self.headersJSON) ?? .null,
            "response_body": responseBody.map(JSONValue.string) ?? .null,
            "duration_ms": .double((durationMilliseconds * 10).rounded() / 10),
            "error": error.map(JSONValue.string) ?? .null,
            "succeeded": .bool(succeeded),
        ])
    }
}
