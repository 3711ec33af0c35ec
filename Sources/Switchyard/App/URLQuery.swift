import Foundation

/// Query strings and form bodies, encoded one way for every outbound request (connector calls,
/// the Authorize URL, OAuth token requests, the calls recorded in a run).
enum URLQuery {
    /// RFC 3986: unreserved characters kept, every other byte of the UTF-8 percent-encoded.
    static func encode(_ text: String) -> String { escape(text, form: false) }

    /// `application/x-www-form-urlencoded` (WHATWG): the same, but `*` kept and spaces as `+`.
    static func formEncode(_ text: String) -> String { escape(text, form: true) }

    static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
    }

    /// `url` with `pairs` added to its query (before any fragment, which is not sent).
    /// `encodeValues: false` for values that are markers already (`[redacted]` in a recorded call).
    static func appending(_ pairs: [(String, String)], to url: String, encodeValues: Bool = true) -> String {
        guard !pairs.isEmpty else { return url }
        var base = url
        if let hash = base.firstIndex(of: "#") { base = String(base[..<hash]) }
        let query = pairs.map { name, value in encode(name) + "=" + (encodeValues ? encode(value) : value) }.joined(separator: "&")
        let separator = !base.contains("?") ? "?" : (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&")
        return base + separator + query
    }

    private static func escape(_ text: String, form: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "~") where !form, UInt8(ascii: "*") where form:
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " ") where form: out += "+"
            default: out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
