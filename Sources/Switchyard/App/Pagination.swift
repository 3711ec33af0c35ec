import Foundation
import Hummingbird

/// A page of a list: `data`, and `next_after` to pass as `after` for the next page (null at the end).
public struct Page<Item: Codable & Sendable>: ResponseEncodable, Sendable {
    public var data: [Item]
    public var nextAfter: String?

    public init(_ data: [Item], limit: Int, cursor: (Item) -> String) {
        self.data = data
        self.nextAfter = data.count == limit ? data.last.map(cursor) : nil
    }

    // `next_after` is always present, as null on the last page, so clients need not test for it.
    enum CodingKeys: String, CodingKey { case data, nextAfter }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(data, forKey: .data)
        try container.encode(nextAfter, forKey: .nextAfter)
    }
}

extension Request {
    /// A query parameter, with an empty value treated as absent.
    public func query(_ name: String) -> String? {
        guard let value = uri.queryParameters[name[...]], !value.isEmpty else { return nil }
        return String(value)
    }
}
