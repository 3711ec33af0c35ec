import Foundation
import NIOCore
import NIOPosix
import NIOSSL

public struct SMTPError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A minimal SMTP client: one connection per message, every reply checked, 30 s to finish. TLS
/// as the URL says (see `SMTPURL`); AUTH is sent only once the connection is protected, or on
/// loopback, which `SMTPURL` enforces.
public struct SMTPClient: Sendable {
    let url: SMTPURL
    let from: String
    let eventLoops: any EventLoopGroup
    /// Made once; nil for plain SMTP. A failure (the CA file went away since start) fails each
    /// send, which the outbox retries like any other.
    let tls: Result<NIOSSLContext, SMTPError>?

    public init(url: SMTPURL, from: String, eventLoops: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.url = url
        self.from = from
        self.eventLoops = eventLoops
        if url.security == .plain {
            tls = nil
        } else {
            do {
                tls = .success(try SMTPTLS.makeContext(caFile: url.caFile))
            } catch {
                tls = .failure(SMTPError(description: "cannot set up TLS for \(url): \(error)"))
            }
        }
    }

    public func send(_ message: MailMessage, date: Date) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.converse(message, date: date) }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                throw SMTPError(description: "the SMTP server did not finish within 30 seconds")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func converse(_ message: MailMessage, date: Date) async throws {
        let tlsContext = try tls?.get()
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            let implicitTLS = url.security == .implicitTLS ? tlsContext : nil
            let host = url.host
            channel = try await ClientBootstrap(group: eventLoops)
                .connectTimeout(.seconds(10))
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let implicitTLS {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: implicitTLS, serverHostname: SMTPTLS.serverHostname(host))
                            )
                        }
                        try channel.pipeline.syncOperations.addHandler(SMTPLineFramer())
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError(description: "cannot connect to \(url.host):\(url.port): \(error)")
        }
        var step = "connecting"
        do {
            try await channel.executeThenClose { inbound, outbound in
                var lines = inbound.makeAsyncIterator()
                var linesRead = 0
                /// The lines of one reply, without their codes.
                @discardableResult
                func reply(expect codes: Set<Int>) async throws -> [Substring] {
                    var texts: [Substring] = []
                    while true {
                        guard var line = try await lines.next(), let text = line.readString(length: line.readableBytes) else {
                            throw SMTPError(description: "the SMTP server closed the connection after \(step)")
                        }
                        linesRead += 1
                        let code = Int(text.prefix(3)) ?? 0
                        texts.append(text.dropFirst(4))
                        // "250-…" continues a multi-line reply; "250 …" ends it.
                        if text.count > 3, text[text.index(text.startIndex, offsetBy: 3)] == "-" { continue }
                        guard codes.contains(code) else {
                            throw SMTPError(description: "the SMTP server answered \(step) with: \(text.prefix(200))")
                        }
                        return texts
                    }
                }
                @discardableResult
                func say(_ text: String, step name: String, expect codes: Set<Int>) async throws -> [Substring] {
                    step = name
                    do {
                        try await outbound.write(ByteBuffer(string: text + "\r\n"))
                    } catch {
                        // A failed write says only that the connection is closed; the reading side
                        // says why (a failed TLS handshake, say), so prefer that.
                        _ = try await lines.next()
                        throw error
                    }
                    return try await reply(expect: codes)
                }
                try await reply(expect: [220])
                let extensions = try await say("EHLO switchyard", step: "EHLO", expect: [250])
                if url.security == .startTLS, let tlsContext {
                    // The first word of each EHLO line after the greeting names an extension.
                    guard extensions.dropFirst().contains(where: { $0.split(separator: " ").first?.uppercased() == "STARTTLS" }) else {
                        throw SMTPError(description: "the SMTP server \(url.host):\(url.port) does not offer STARTTLS")
                    }
                    try await say("STARTTLS", step: "STARTTLS", expect: [220])
                    step = "the TLS handshake"
                    try await SMTPTLS.start(on: channel.channel, context: tlsContext, host: url.host, linesRead: linesRead)
                    // RFC 3207: forget what was learnt before TLS and ask again.
                    try await say("EHLO switchyard", step: "EHLO after STARTTLS", expect: [250])
                }
                if let user = url.user {
                    let credentials = Data("\0\(user)\0\(url.password ?? "")".utf8).base64EncodedString()
                    try await say("AUTH PLAIN \(credentials)", step: "AUTH", expect: [235])
                }
                try await say("MAIL FROM:<\(MailFormat.address(from))>", step: "MAIL FROM", expect: [250])
                try await say("RCPT TO:<\(message.recipient)>", step: "RCPT TO", expect: [250, 251])
                try await say("DATA", step: "DATA", expect: [354])
                try await say(MailFormat.render(message, from: from, date: date) + ".", step: "the message", expect: [250])
                try? await outbound.write(ByteBuffer(string: "QUIT\r\n"))
            }
        } catch let error as SMTPError {
            throw error
        } catch {
            if let tlsError = SMTPTLS.describe(error, host: url.host, port: url.port) { throw tlsError }
            throw SMTPError(description: "the connection to \(url.host):\(url.port) failed during \(step): \(error)")
        }
    }
}

/// RFC 5322 rendering of an outbox message.
enum MailFormat {
    /// The bare address inside `Name <address>`.
    static func address(_ from: String) -> String {
        guard let open = from.lastIndex(of: "<"), let close = from.lastIndex(of: ">"), open < close else { return from }
        return String(from[from.index(after: open)..<close])
    }

    static func render(_ message: MailMessage, from: String, date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let headers = [
            "From: \(from)",
            "To: <\(message.recipient)>",
            "Subject: \(encodeHeader(message.subject))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <\(message.id)@switchyard>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        // CRLF line ends, and a leading dot doubled so a line "." cannot end the message early.
        let body = message.body
            .replacingOccurrences(of: "\r\n", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }
            .joined(separator: "\r\n")
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + body + "\r\n"
    }

    static func encodeHeader(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) { return text }
        return "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
    }
}
