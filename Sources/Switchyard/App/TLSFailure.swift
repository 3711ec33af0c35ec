import NIOSSL

/// A failed TLS handshake, sorted into what an operator can act on. The mail and database clients
/// put it in their own words. NIOSSL's errors carry names and BoringSSL reason codes only, never
/// a secret, so their text may be shown.
enum TLSFailure: Equatable {
    /// The chain does not lead to a trusted CA (unknown issuer, expired, ...).
    case untrustedCertificate
    /// The certificate is valid but not for the host connected to.
    case wrongHost
    /// The peer does not speak TLS where TLS was expected.
    case notTLS
    case other(String)

    /// nil when `error` is not a TLS error.
    static func classify(_ error: any Error) -> TLSFailure? {
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname { return .wrongHost }
        let reasons: [String]
        switch error {
        case NIOSSLError.handshakeFailed(.sslError(let stack)), NIOSSLError.handshakeFailed(.unknownError(let stack)):
            reasons = stack.compactMap(reason(of:))
        case is NIOSSLError, is NIOSSLExtraError, is BoringSSLError:
            return .other("\(error)")
        default:
            return nil
        }
        if reasons.contains("CERTIFICATE_VERIFY_FAILED") { return .untrustedCertificate }
        if reasons.contains("WRONG_VERSION_NUMBER") { return .notTLS }
        return .other(reasons.isEmpty ? "\(error)" : reasons.joined(separator: ", "))
    }

    /// "CERTIFICATE_VERIFY_FAILED" out of "… error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …".
    private static func reason(of error: BoringSSLInternalError) -> String? {
        let text = error.description
        guard let range = text.range(of: "OPENSSL_internal:") else { return nil }
        let reason = text[range.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return reason.isEmpty ? nil : String(reason)
    }
}
