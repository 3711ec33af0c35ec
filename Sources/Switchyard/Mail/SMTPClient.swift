import Foundation
import NIOCore
import NIOExtras
import NIOPosix

/// Where to send mail: `smtp://[user:password@]host:port`. Plain SMTP (with AUTH PLAIN when a user
/// is given), which is what a local relay or a mail catcher speaks.
public struct SMTPURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?

    public init(parsing string: String) throws {
        guard let components = URLComponents(string: string), components.scheme == "smtp",
              let host = components.host, !host.isEmpty
        else {
            throw ConfigurationError("--smtp-url must look like smtp://host:port or smtp://user:password@host:port")
        }
        self.host = host
        self.port = components.port ?? 25
        self.user = components.user
        self.password = components.password
    }

    /// Without the password, for logs.
    public var description: String { "smtp://\(user.map { $0 + "@" } ?? "")\(host):\(port)" }
}

public struct SMTPError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A minimal SMTP client: one connection per message, every reply checked, 30 s to finish.
public struct SMTPClient: Sendable {
    let url: SMTPURL
    let from: String
    let eventLoops: any EventLoopGroup

    public init(url: SMTPURL, from: String, eventLoops: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.url = url
        self.from = from
        self.eventLoops = eventLoops
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
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: eventLoops)
                .connectTimeout(.seconds(10))
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError(description: "cannot connect to \(url.host):\(url.port): \(error)")
        }
        try await channel.executeThenClose { inbound, outbound in
            var lines = inbound.makeAsyncIterator()
            func reply(expect codes: Set<Int>, after step: String) async throws {
                while true {
                    guard var line = try await lines.next(), let text = line.readString(length: line.readableBytes) else {
                        throw SMTPError(description: "the SMTP server closed the connection after \(step)")
                    }
                    let code = Int(text.prefix(3)) ?? 0
                    // "250-…" continues a multi-line reply; "250 …" ends it.
                    if text.count > 3, text[text.index(text.startIndex, offsetBy: 3)] == "-" { continue }
                    guard codes.contains(code) else {
                        throw SMTPError(description: "the SMTP server answered \(step) with: \(text.prefix(200))")
                    }
                    return
                }
            }
            func say(_ text: String, step: String, expect codes: Set<Int>) async throws {
                try await outbound.write(ByteBuffer(string: text + "\r\n"))
                try await reply(expect: codes, after: step)
            }
            try await reply(expect: [220], after: "connecting")
            try await say("EHLO switchyard", step: "EHLO", expect: [250])
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
