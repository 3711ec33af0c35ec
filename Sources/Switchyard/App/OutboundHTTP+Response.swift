import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// Collects the response head and at most `limit` body bytes. When more arrives it fails the
/// request with `CapReached`, which makes async-http-client close the connection instead of
/// reading on: a body of gigabytes costs one truncated read.
///
/// `@unchecked Sendable`: async-http-client calls every method on the request's one event loop,
/// one at a time, and `send` reads `headReceived` only after the request's future completed,
/// which orders those writes before the read.
final class ResponseCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    struct Collected: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer

        func response(truncated: Bool, duration: TimeInterval) -> OutboundResponse {
            OutboundResponse(
                status: Int(head.status.code),
                headers: head.headers.map { ($0.name, $0.value) },
                body: Array(body.readableBytesView),
                bodyTruncated: truncated,
                duration: duration
            )
        }
    }

    /// Not a failure: the answer so far, ended on purpose.
    struct CapReached: Error {
        let collected: Collected
    }

    typealias Response = Collected

    let limit: Int
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private(set) var headReceived = false

    init(limit: Int) {
        self.limit = limit
    }

    func didReceiveHead(task: HTTPClient.Task<Collected>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.head = head
        headReceived = true
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Collected>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let room = limit - body.readableBytes
        guard buffer.readableBytes > room else {
            var buffer = buffer
            body.writeBuffer(&buffer)
            return task.eventLoop.makeSucceededVoidFuture()
        }
        if room > 0, let part = buffer.getSlice(at: buffer.readerIndex, length: room) {
            body.writeImmutableBuffer(part)
        }
        guard let head else { return task.eventLoop.makeSucceededVoidFuture() }
        return task.eventLoop.makeFailedFuture(CapReached(collected: Collected(head: head, body: body)))
    }

    func didFinishRequest(task: HTTPClient.Task<Collected>) throws -> Collected {
        guard let head else { throw HTTPClientError.remoteConnectionClosed }
        return Collected(head: head, body: body)
    }
}

/// What the words of a failure need to know.
struct FailureContext {
    let target: OutboundTarget
    let address: String?
    let timeout: TimeInterval
    let headReceived: Bool

    /// `example.com (203.0.113.5)`, or the literal address.
    var peer: String {
        guard let address, address != target.host else { return target.host }
        return "\(target.host) (\(address))"
    }
}

/// A new connection's peer refused by the guard (the pin makes this a second line of defence).
struct BlockedPeer: Error {
    let address: String
    let reason: BlockReason
}

extension OutboundFailure {
    /// async-http-client's and NIO's errors in the kinds and words of the attempt log.
    init(mapping error: any Error, _ context: FailureContext, duration: TimeInterval) {
        let (kind, words) = Self.classify(error, context)
        self.init(kind, words, duration: duration)
    }

    private static func classify(_ error: any Error, _ context: FailureContext) -> (Kind, String) {
        let peer = context.peer
        let seconds = context.timeout.rounded() == context.timeout ? "\(Int(context.timeout))" : "\(context.timeout)"
        if let blocked = error as? BlockedPeer {
            return (.blocked, "\(peer) connected to \(blocked.address), which is not an allowed target (\(blocked.reason))")
        }
        if let tls = TLSFailure.classify(error) {
            switch tls {
            case .untrustedCertificate: return (.tls, "TLS with \(peer) failed: the certificate is not trusted")
            case .wrongHost: return (.tls, "TLS with \(peer) failed: the certificate is not for \(context.target.host)")
            case .notTLS: return (.tls, "TLS with \(peer) failed: the receiver does not speak TLS")
            case .other(let reason): return (.tls, "TLS with \(peer) failed: \(reason)")
            }
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                let what = context.headReceived ? "finish its answer" : "answer"
                return (.timeout, "\(peer) did not \(what) within \(seconds) s")
            case .connectTimeout: return (.timeout, "connecting to \(peer) timed out")
            case .tlsHandshakeTimeout: return (.timeout, "the TLS handshake with \(peer) timed out")
            case .remoteConnectionClosed:
                return (.connection, "\(peer) closed the connection before \(context.headReceived ? "the answer was complete" : "answering")")
            case .bodyLengthMismatch: return (.protocolError, "\(peer) sent a body that does not match its content-length")
            case .alreadyShutdown, .cancelled: return (.connection, "the request was cancelled (the server is shutting down)")
            default:
                if String(describing: error).contains("invalidHeaderField") {
                    // The error holds the offending values, which may be secrets: never in the words.
                    return (.invalidRequest, "a header name or value has characters HTTP does not allow")
                }
                return (.connection, "the request to \(peer) failed: \(error)")
            }
        }
        if let error = error as? HTTPParserError {
            switch error {
            case .headerOverflow: return (.tooLarge, "\(peer) sent response headers over 80 KB")
            case .invalidEOFState:
                // The connection ended inside the head or before content-length was reached.
                return (.connection, "\(peer) closed the connection before the answer was complete")
            default: return (.protocolError, "\(peer) did not answer in HTTP (\(error))")
            }
        }
        if case ChannelError.connectTimeout = error { return (.timeout, "connecting to \(peer) timed out") }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first?.error {
            return classify(first, context)
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return (.connection, "\(peer) refused the connection")
            case ECONNRESET, EPIPE: return (.connection, "\(peer) reset the connection")
            case ETIMEDOUT: return (.timeout, "connecting to \(peer) timed out")
            case EHOSTUNREACH, ENETUNREACH: return (.connection, "\(peer) is unreachable")
            default: return (.connection, "the connection to \(peer) failed: \(String(cString: strerror(error.errnoCode)))")
            }
        }
        if error is ChannelError { return (.connection, "the connection to \(peer) failed (\(error))") }
        if error is NIOThreadPoolError.ThreadPoolInactive { return (.connection, "the request was cancelled (shutting down)") }
        return (.connection, "the request to \(peer) failed: \(error)")
    }
}
