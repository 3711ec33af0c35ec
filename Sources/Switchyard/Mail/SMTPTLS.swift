import Foundation
import NIOCore
import NIOSSL

/// TLS for the SMTP client: always full verification (chain and name), no way to turn it off.
enum SMTPTLS {
    static func makeContext(caFile: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) }
        // Closing waits for the server's close_notify; keep that well inside the 30 s per message,
        // since a message the server has accepted must not time out into a resend.
        configuration.shutdownTimeout = .seconds(2)
        return try NIOSSLContext(configuration: configuration)
    }

    /// The name for SNI and certificate matching. NIOSSL refuses an IP literal as a server name
    /// (`cannotUseIPAddressInSNI`, since SNI carries DNS names only); with nil it still checks the
    /// certificate, against its IP address entries and the address actually connected to.
    static func serverHostname(_ host: String) -> String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 { return nil }
        return host
    }

    /// Adds TLS in front of the line framer on a connection that has just agreed to STARTTLS.
    /// Refuses when the server sent anything after its 220: those bytes came before TLS, so a
    /// man in the middle could have written them to pass for replies under TLS.
    static func start(on channel: any Channel, context: NIOSSLContext, host: String, linesRead: Int) async throws {
        try await channel.eventLoop.submit {
            let framer = try channel.pipeline.syncOperations.handler(type: SMTPLineFramer.self)
            guard framer.linesForwarded == linesRead, !framer.holdsPartialLine else {
                throw SMTPError(description: "the SMTP server sent data after agreeing to STARTTLS; refusing to go on")
            }
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverHostname(host))
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    /// What went wrong with TLS, in words, or nil when `error` is not a TLS error.
    static func describe(_ error: any Error, host: String, port: Int) -> SMTPError? {
        let peer = "\(host):\(port)"
        switch TLSFailure.classify(error) {
        case nil:
            return nil
        case .wrongHost:
            return SMTPError(description: "TLS with \(peer) failed: the server's certificate is not valid for \(host)")
        case .untrustedCertificate:
            return SMTPError(
                description:
                    "TLS with \(peer) failed: the server's certificate is not trusted (unknown issuer, expired or otherwise invalid); "
                    + "for a private CA, add ?ca=/path/to/ca.pem to --smtp-url"
            )
        case .notTLS:
            return SMTPError(
                description: "TLS with \(peer) failed: the server does not speak TLS there (WRONG_VERSION_NUMBER); "
                    + "smtps:// expects TLS from the first byte, usually on port 465"
            )
        case .other(let detail):
            return SMTPError(description: "TLS handshake with \(peer) failed: \(detail)")
        }
    }
}

/// Splits the server's replies into lines (without CR LF), and counts them, so STARTTLS can tell
/// whether anything arrived after the server's go-ahead.
final class SMTPLineFramer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// RFC 5321 allows 512 bytes per reply line; a server that sends far more is not speaking SMTP.
    static let maximumLineLength = 8192

    private var buffer = ByteBuffer()
    private(set) var linesForwarded = 0
    var holdsPartialLine: Bool { buffer.readableBytes > 0 }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            guard var line = buffer.readSlice(length: length) else { break }
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line = line.getSlice(at: line.readerIndex, length: length - 1) ?? line }
            linesForwarded += 1
            context.fireChannelRead(wrapInboundOut(line))
        }
        if buffer.readableBytes > Self.maximumLineLength {
            context.fireErrorCaught(SMTPError(description: "the SMTP server sent a reply line longer than \(Self.maximumLineLength) bytes"))
            context.close(promise: nil)
            return
        }
        buffer.discardReadBytes()
    }
}
