import Foundation

/// Time-ordered, prefixed identifiers (`ws_01J…`): a ULID (48-bit millisecond time, 80 random bits,
/// Crockford base32) so new rows land at the end of indexes, which keeps inserts local.
public enum ID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(_ prefix: String, at date: Date = Date()) -> String {
        var rng = SystemRandomNumberGenerator()
        return make(prefix, milliseconds: UInt64(max(0, date.millisecondsSince1970)), using: &rng)
    }

    static func make<R: RandomNumberGenerator>(_ prefix: String, milliseconds: UInt64, using rng: inout R) -> String {
        var out = [UInt8](repeating: 0, count: 26)
        var time = milliseconds
        for i in stride(from: 9, through: 0, by: -1) {
            out[i] = alphabet[Int(time & 31)]
            time >>= 5
        }
        // 80 random bits as 16 base32 characters: 60 from one word, 20 from another.
        var first = rng.next() as UInt64
        var second = rng.next() as UInt64
        for i in stride(from: 21, through: 10, by: -1) {
            out[i] = alphabet[Int(first & 31)]
            first >>= 5
        }
        for i in stride(from: 25, through: 22, by: -1) {
            out[i] = alphabet[Int(second & 31)]
            second >>= 5
        }
        return prefix + "_" + String(decoding: out, as: UTF8.self)
    }

    /// Whether `value` looks like an id of this kind; used to answer 404 rather than query for junk.
    public static func isValid(_ value: String, prefix: String) -> Bool {
        guard value.hasPrefix(prefix + "_") else { return false }
        let body = value.utf8.dropFirst(prefix.utf8.count + 1)
        return body.count == 26 && body.allSatisfy { alphabet.contains($0) }
    }
}
