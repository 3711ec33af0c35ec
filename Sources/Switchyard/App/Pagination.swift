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
    /// The query's name/value pairs, both percent-decoded (`filter%5Bstatus%5D` is
    /// `filter[status]`, as browsers and Python send it), `+` read as a space.
    public var queryItems: [(name: String, value: String)] {
        guard let query = uri.query, !query.isEmpty else { return [] }
        func decode(_ part: Substring) -> String {
            let spaced = part.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        return query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// A query parameter, with an empty value treated as absent.
    public func query(_ name: String) -> String? {
        queryItems.first { $0.name == name && !$0.value.isEmpty }?.value
    }

    /// Every value of a repeated query parameter.
    public func queryAll(_ name: String) -> [String] {
        queryItems.filter { $0.name == name && !$0.value.isEmpty }.map(\.value)
    }
}
