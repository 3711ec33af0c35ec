import Crypto

/// Lower-case hex. `String(format:)` per byte cost a sixth of an authenticated request.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// SHA-256 of `text`, in hex.
    public static func sha256(_ text: String) -> String {
        encode(SHA256.hash(data: Array(text.utf8)))
    }
}
