import Crypto
import Foundation

/// Seals secrets kept at rest (webhook signing secrets, secret headers, later third-party tokens)
/// with AES-GCM under a key derived from the installation's secret key, so a copy of the database
/// alone reveals none of them. A sealed value is nonce ‖ ciphertext ‖ tag (`combined`).
public struct Sealer: Sendable {
    private let key: SymmetricKey

    public init(secretKey: [UInt8]) {
        // HKDF rather than the raw bytes: the configured key may be any 32+ characters of text.
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: secretKey),
            info: Array("switchyard sealed secrets v1".utf8),
            outputByteCount: 32
        )
    }

    public func seal(_ plaintext: String) throws -> [UInt8] {
        guard let combined = try AES.GCM.seal(Array(plaintext.utf8), using: key).combined else {
            throw SealerError("AES-GCM gave no combined box")
        }
        return Array(combined)
    }

    public func open(_ sealed: [UInt8]) throws -> String {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw SealerError("a sealed secret cannot be opened: the secret key is not the one it was sealed with")
        }
    }
}

public struct SealerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
