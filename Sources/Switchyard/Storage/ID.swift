import Foundation
import NIOConcurrencyHelpers

/// Time-ordered, prefixed identifiers (`ws_01J…`): a ULID (48-bit millisecond time, 80 random bits,
/// Crockford base32) so new rows land at the end of indexes, which keeps inserts local. Ids made
/// in the same millisecond (or under a clock that stands still, as in tests) increase too: the
/// random part is incremented, as the ULID spec's monotonic mode does, so ordering by id is
/// ordering by creation within a process.
public enum ID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private struct Last {
        var milliseconds: UInt64 = 0
        var high: UInt64 = 0
        var low: UInt16 = 0
    }
    private static let last = NIOLockedValueBox(Last())

    public static func make(_ prefix: String, at date: Date = Date()) -> String {
        let requested = UInt64(max(0, date.millisecondsSince1970))
        let (milliseconds, high, low) = last.withLockedValue { state -> (UInt64, UInt64, UInt16) in
            if requested > state.milliseconds {
                var rng = SystemRandomNumberGenerator()
                // Keep headroom in the top bit so increments within one millisecond never wrap.
                state = Last(milliseconds: requested, high: rng.next() >> 1, low: rng.next())
            } else {
                let (low, carry) = state.low.addingReportingOverflow(1)
                state.low = low
                if carry { state.high += 1 }
            }
            return (state.milliseconds, state.high, state.low)
        }
        return encode(prefix, milliseconds: milliseconds, high: high, low: low)
    }

    static func encode(_ prefix: String, milliseconds: UInt64, high: UInt64, low: UInt16) -> String {
        var out = [UInt8](repeating: 0, count: 26)
        var time = milliseconds
        for i in stride(from: 9, through: 0, by: -1) {
            out[i] = alphabet[Int(time & 31)]
            time >>= 5
        }
        // 80 bits = high (64) then low (16), as 16 base32 characters, most significant first.
        var bits = (UInt128(high) << 16) | UInt128(low)
        for i in stride(from: 25, through: 10, by: -1) {
            out[i] = alphabet[Int(bits & 31)]
            bits >>= 5
        }
        return prefix + "_" + String(decoding: out, as: UTF8.self)
    }

    /// The smallest id of this kind made at `date`: `id >= floor` selects rows made since then.
    public static func floor(_ prefix: String, at date: Date) -> String {
        encode(prefix, milliseconds: UInt64(max(0, date.millisecondsSince1970)), high: 0, low: 0)
    }

    /// Whether `value` looks like an id of this kind; used to answer 404 rather than query for junk.
    public static func isValid(_ value: String, prefix: String) -> Bool {
        guard value.hasPrefix(prefix + "_") else { return false }
        let body = value.utf8.dropFirst(prefix.utf8.count + 1)
        return body.count == 26 && body.allSatisfy { alphabet.contains($0) }
    }
}
