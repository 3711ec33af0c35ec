import Crypto
import Foundation

/// Secrets shown once: `sy_live_` / `sy_test_` (API tokens) or `sys_` (sessions), then 32 random
/// bytes in base62, then a 6-character CRC-32 checksum in base62. The checksum lets a secret
/// scanner tell a real token from a look-alike offline, and lets the server refuse junk unread.
public enum TokenFormat {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let bodyLength = 43
    static let checksumLength = 6

    public static func prefix(for mode: TokenMode) -> String { mode == .live ? "sy_live_" : "sy_test_" }

    public static func generate(prefix: String) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = rng.next() }
        let body = base62(bytes, length: bodyLength)
        return prefix + body + checksum(prefix + body)
    }

    /// Whether `token` has a known prefix, the right length and a matching checksum. Byte-wise:
    /// it runs on every authenticated request, and Character counting showed in the profile.
    public static func isWellFormed(_ token: String, prefixes: [String] = ["sy_live_", "sy_test_"]) -> Bool {
        let bytes = Array(token.utf8)
        guard let prefix = prefixes.first(where: { bytes.starts(with: $0.utf8) }) else { return false }
        let bodyEnd = prefix.utf8.count + bodyLength
        guard bytes.count == bodyEnd + checksumLength, bytes[prefix.utf8.count...].allSatisfy(isBase62) else { return false }
        return bytes[bodyEnd...].elementsEqual(checksum(bytes[..<bodyEnd]))
    }

    private static func isBase62(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"): true
        default: false
        }
    }

    /// What is stored: the SHA-256 of the whole token, hex.
    public static func hash(_ token: String) -> String {
        Hex.sha256(token)
    }

    static func checksum(_ text: String) -> String {
        String(decoding: checksum(Array(text.utf8)[...]), as: UTF8.self)
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var value = UInt64(crc32(bytes))
        var out = [UInt8](repeating: alphabet[0], count: checksumLength)
        for index in stride(from: checksumLength - 1, through: 0, by: -1) {
            out[index] = alphabet[Int(value % 62)]
            value /= 62
        }
        return out
    }

    /// Base62 of a big-endian number, left-padded to `length`.
    static func base62(_ bytes: [UInt8], length: Int) -> String {
        var number = bytes
        var digits: [UInt8] = []
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in number.indices {
                let accumulator = remainder * 256 + Int(number[index])
                number[index] = UInt8(accumulator / 62)
                remainder = accumulator % 62
            }
            digits.append(alphabet[remainder])
        }
        while digits.count < length { digits.append(alphabet[0]) }
        return String(decoding: digits.reversed().prefix(length), as: UTF8.self)
    }

    static let crcTable: [UInt32] = (0..<256).map { index -> UInt32 in
        var c = UInt32(index)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
