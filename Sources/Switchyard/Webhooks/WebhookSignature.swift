import Crypto
import ExtrasBase64
import Foundation

/// Signing per the Standard Webhooks specification: `webhook-signature` is `v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body` under the secret's bytes (the part after `whsec_`, base64).
enum WebhookSignature {
    static let prefix = "whsec_"

    /// A new signing secret: 32 random bytes (the specification asks for 24 to 64).
    static func generateSecret() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in rng.next() as UInt8 }
        return prefix + Base64.encodeToString(bytes: bytes)
    }

    static func key(of secret: String) -> SymmetricKey? {
        guard secret.hasPrefix(prefix), let bytes = try? Base64.decode(string: String(secret.dropFirst(prefix.count))) else {
            return nil
        }
        return SymmetricKey(data: bytes)
    }

    /// `v1,<signature>` for each key, space-separated (both during a rotation's overlap).
    static func header(id: String, timestamp: Int64, body: [UInt8], keys: [SymmetricKey]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        return keys.map { key in
            "v1," + Base64.encodeToString(bytes: Array(HMAC<SHA256>.authenticationCode(for: message, using: key)))
        }.joined(separator: " ")
    }
}
