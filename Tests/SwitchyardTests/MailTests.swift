import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import Switchyard

@Suite("Mail outbox")
struct MailTests {
    @Test("without SMTP, a message is logged and kept in the outbox")
    func loggedWithoutSMTP() async throws {
        try await TestApp.run { app in
            _ = try await app.makeUser("ann@example.com", role: .member)
            #expect(try await app.services.mailSender.deliverDue() == 1)
            let outbox = try await app.request(.get, "/v1/outbox", token: app.ownerToken)
            let message = try #require((outbox["data"] as? [[String: Any]])?.first)
            #expect(message["status"] as? String == "logged")
            #expect(message["recipient"] as? String == "ann@example.com")
            #expect(try await app.services.mailSender.deliverDue() == 0, "nothing is sent twice")
        }
    }

    @Test("a refused connection is retried with backoff and given up after the last attempt")
    func retriesWithBackoff() async throws {
        // A real refused connection: a port that was bound and released, so nothing listens there.
        let socket = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(socket.localAddress?.port)
        try await socket.close()
        try await TestApp.run(configure: { $0.smtpURL = try? SMTPURL(parsing: "smtp://127.0.0.1:\(port)") }) { app in
            _ = try await app.makeUser("ann@example.com", role: .member)
            #expect(try await app.services.mailSender.deliverDue() == 1)
            var message = try #require(try await app.services.mail.list(status: nil, after: nil, limit: 1).first)
            #expect(message.status == .queued)
            #expect(message.attempts == 1)
            #expect(message.lastError?.contains("connect") == true)
            #expect(message.nextAttemptAt.millisecondsSince1970 == app.clock.now.addingTimeInterval(5).millisecondsSince1970)
            #expect(try await app.services.mailSender.deliverDue() == 0, "not due before its backoff")

            for attempt in 2...MailSender.maximumAttempts {
                app.clock.advance(by: MailSender.backoff(afterAttempt: attempt - 1))
                #expect(try await app.services.mailSender.deliverDue() == 1)
            }
            message = try #require(try await app.services.mail.list(status: nil, after: nil, limit: 1).first)
            #expect(message.status == .failed)
            #expect(message.attempts == MailSender.maximumAttempts)
            app.clock.advance(by: 7200)
            #expect(try await app.services.mailSender.deliverDue() == 0)
        }
    }

    @Test("backoff doubles from 5 seconds up to an hour")
    func backoff() {
        #expect(MailSender.backoff(afterAttempt: 1) == 5)
        #expect(MailSender.backoff(afterAttempt: 2) == 10)
        #expect(MailSender.backoff(afterAttempt: 5) == 80)
        #expect(MailSender.backoff(afterAttempt: 20) == 3600)
    }

    @Test("messages render as RFC 5322 with dot-stuffing and encoded headers")
    func rendering() {
        let message = MailMessage(
            id: "msg_1",
            recipient: "ann@example.com",
            subject: "Grüße",
            body: "line\n.\n..x",
            status: .queued,
            attempts: 0,
            nextAttemptAt: Date(),
            lastError: nil,
            createdAt: Date(),
            sentAt: nil
        )
        let text = MailFormat.render(message, from: "Switchyard <hub@example.com>", date: Date(timeIntervalSince1970: 0))
        #expect(text.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"))
        #expect(text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        #expect(text.hasSuffix("\r\n\r\nline\r\n..\r\n...x\r\n"))
        #expect(MailFormat.address("Switchyard <hub@example.com>") == "hub@example.com")
    }
}

@Suite("SMTP URLs")
struct SMTPURLTests {
    @Test("each scheme has its security and default port")
    func schemes() throws {
        let plain = try SMTPURL(parsing: "smtp://relay.internal")
        #expect(plain.security == .plain && plain.host == "relay.internal" && plain.port == 25 && plain.user == nil)
        let startTLS = try SMTPURL(parsing: "smtp+starttls://ann:s3cret@smtp.example.com")
        #expect(startTLS.security == .startTLS && startTLS.port == 587)
        #expect(startTLS.user == "ann" && startTLS.password == "s3cret")
        let implicitTLS = try SMTPURL(parsing: "SMTPS://ann:s3cret@smtp.example.com")
        #expect(implicitTLS.security == .implicitTLS && implicitTLS.port == 465)
        #expect(try SMTPURL(parsing: "smtps://smtp.example.com:2465").port == 2465)
        #expect(try SMTPURL(parsing: "smtp+starttls://[2001:db8::1]:2587").host == "2001:db8::1")
        let encoded = try SMTPURL(parsing: "smtps://apikey%40example.com:p%40ss%3Aw%2Frd@smtp.example.com")
        #expect(encoded.user == "apikey@example.com" && encoded.password == "p@ss:w/rd")
    }

    @Test("the description names the scheme and never the password")
    func description() throws {
        let url = try SMTPURL(parsing: "smtp+starttls://ann:s3cret@smtp.example.com?ca=\(try CAFile.path())")
        #expect(url.description.hasPrefix("smtp+starttls://ann@smtp.example.com:587?ca="))
        #expect(!url.description.contains("s3cret"))
        #expect(try SMTPURL(parsing: "smtps://[::1]").description == "smtps://[::1]:465")
        #expect(try SMTPURL(parsing: "smtp://localhost:1025").description == "smtp://localhost:1025")
    }

    @Test("?ca= names a PEM file of roots, checked at start")
    func caOption() throws {
        let path = try CAFile.path()
        #expect(try SMTPURL(parsing: "smtps://smtp.example.com?ca=\(path)").caFile == path)
        #expect(try SMTPURL(parsing: "smtp+starttls://smtp.example.com:25?ca=\(path)").caFile == path)
        #expect(try SMTPURL(parsing: "smtps://smtp.example.com").caFile == nil)
        refused("smtps://smtp.example.com?ca=/nonexistent/ca.pem", saying: "cannot read CA certificates")
        refused("smtps://smtp.example.com?ca=\(try CAFile.path(contents: "not a certificate"))", saying: "cannot read CA certificates")
        refused("smtps://smtp.example.com?ca=", saying: "needs the path")
        refused("smtps://smtp.example.com?ca=\(path)&ca=\(path)", saying: "once")
        refused("smtp://127.0.0.1?ca=\(path)", saying: "smtp:// does not use TLS")
    }

    @Test("unknown options are refused by name, without their values")
    func unknownOptions() {
        let error = refused("smtps://smtp.example.com?verify=false&password=hunter2", saying: "unknown options: verify, password")
        #expect(error?.contains("hunter2") == false)
        #expect(error?.contains("false") == false)
    }

    @Test("credentials over plain SMTP are refused unless the host is loopback")
    func plainCredentials() throws {
        let error = refused("smtp://ann:s3cret@smtp.example.com:25", saying: "use smtp+starttls://")
        #expect(error?.contains("s3cret") == false)
        refused("smtp://ann@10.0.0.5:25", saying: "in clear")
        refused("smtp://ann:s3cret@128.0.0.1", saying: "in clear")
        refused("smtp://ann:s3cret@localhost.example.com", saying: "in clear")
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]"] {
            #expect(try SMTPURL(parsing: "smtp://ann:s3cret@\(host):1025").user == "ann", "\(host) is loopback")
        }
        #expect(try SMTPURL(parsing: "smtp://smtp.example.com").user == nil, "plain without credentials goes anywhere")
        #expect(try SMTPURL(parsing: "smtp+starttls://ann:s3cret@smtp.example.com").user == "ann")
    }

    @Test("malformed URLs are refused")
    func malformed() {
        for text in [
            "http://smtp.example.com", "smtp:///nohost", "smtp+tls://smtp.example.com", "smtp://smtp.example.com:0",
            "smtp://smtp.example.com/path", "smtp://smtp.example.com#x", "not a url",
        ] {
            refused(text, saying: "--smtp-url")
        }
        refused("smtps://:s3cret@smtp.example.com", saying: "no user")
    }

    @Test("IP literals go to NIOSSL without a server name, which it refuses for SNI")
    func serverHostname() {
        #expect(SMTPTLS.serverHostname("127.0.0.1") == nil)
        #expect(SMTPTLS.serverHostname("::1") == nil)
        #expect(SMTPTLS.serverHostname("2001:db8::1") == nil)
        #expect(SMTPTLS.serverHostname("smtp.example.com") == "smtp.example.com")
        #expect(SMTPTLS.serverHostname("localhost") == "localhost")
    }

    /// The configuration error's text, checked to contain `expected`.
    @discardableResult
    func refused(_ text: String, saying expected: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        do {
            _ = try SMTPURL(parsing: text)
            Issue.record("\(text) was accepted", sourceLocation: sourceLocation)
            return nil
        } catch {
            let message = String(describing: error)
            #expect(error is ConfigurationError, sourceLocation: sourceLocation)
            #expect(message.contains(expected), "\(message)", sourceLocation: sourceLocation)
            return message
        }
    }
}

@Suite("SMTP STARTTLS")
struct SMTPStartTLSTests {
    @Test("a server that does not offer STARTTLS gets no credentials, and the outbox retries")
    func notOffered() async throws {
        let server = try await ScriptedSMTPServer.start { command in
            command.hasPrefix("EHLO") ? "250-scripted\r\n250 AUTH PLAIN\r\n" : "502 no\r\n"
        }
        let url = try SMTPURL(parsing: "smtp+starttls://ann:s3cret@127.0.0.1:\(server.port)?ca=\(try CAFile.path())")
        try await TestApp.run(configure: { $0.smtpURL = url }) { app in
            _ = try await app.makeUser("ann@example.com", role: .member)
            #expect(try await app.services.mailSender.deliverDue() == 1)
            let message = try #require(try await app.services.mail.list(status: nil, after: nil, limit: 1).first)
            #expect(message.status == .queued)
            #expect(message.attempts == 1)
            #expect(message.lastError == "the SMTP server 127.0.0.1:\(server.port) does not offer STARTTLS")
        }
        #expect(server.commands().map { String($0.prefix(4)) } == ["EHLO"])
        try await server.stop()
    }

    @Test("plaintext sent after the server's go-ahead is refused, before TLS and before AUTH")
    func injectionRefused() async throws {
        for injected in ["250 injected\r\n", "250 inj"] {
            let server = try await ScriptedSMTPServer.start { command in
                if command.hasPrefix("EHLO") { return "250-scripted\r\n250 STARTTLS\r\n" }
                if command == "STARTTLS" { return "220 go ahead\r\n" + injected }
                return "502 no\r\n"
            }
            let url = try SMTPURL(parsing: "smtp+starttls://ann:s3cret@127.0.0.1:\(server.port)?ca=\(try CAFile.path())")
            let client = SMTPClient(url: url, from: "hub@example.com")
            let message = MailMessage(
                id: "msg_1",
                recipient: "ann@example.com",
                subject: "Hi",
                body: "Hello",
                status: .queued,
                attempts: 0,
                nextAttemptAt: Date(),
                lastError: nil,
                createdAt: Date(),
                sentAt: nil
            )
            let error = await #expect(throws: SMTPError.self) { try await client.send(message, date: Date()) }
            #expect(error?.description == "the SMTP server sent data after agreeing to STARTTLS; refusing to go on")
            #expect(server.commands().allSatisfy { $0 == "EHLO switchyard" || $0 == "STARTTLS" }, "\(server.commands())")
            try await server.stop()
        }
    }
}

/// A PEM file with one CA certificate (public part only). The name follows from the contents, so
/// runs reuse one file instead of leaving new ones behind.
enum CAFile {
    static let pem = """
        -----BEGIN CERTIFICATE-----
        MIIBkDCCATegAwIBAgIUDqzf4iLgh6rsw9OaSxiHaS4FvvkwCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSU3dpdGNoeWFyZCB0ZXN0IENBMCAXDTI2MTEyNDEwNDUwMFoY
        DzIxMjYxMDMxMTA0NTAwWjAdMRswGQYDVQQDDBJTd2l0Y2h5YXJkIHRlc3QgQ0Ew
        WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ7VAXdok9StYoXblxW57s30yqRBjE+
        40gJeJ5IBWiEGvBozT2amnMgEYTIkan8/qn0fTeIoxNKhyp83ubOqskwo1MwUTAd
        BgNVHQ4EFgQUf8sdHasHAPqQbV0+fXcGBMYKt5IwHwYDVR0jBBgwFoAUf8sdHasH
        APqQbV0+fXcGBMYKt5IwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE
        AiAhufhYOaeUiTKOfkFohCl5V6+gGdbeo6c2Abt9z8PalwIgBjlEbhibjWNrDh3D
        etgLpSDrnh0iHsEY7aZMpOcx89E=
        -----END CERTIFICATE-----

        """

    static func path(contents: String = pem) throws -> String {
        let name = Data(contents.utf8).base64EncodedString().filter(\.isLetter).suffix(24)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-test-ca-\(name).pem")
        try Data(contents.utf8).write(to: url, options: .atomic)
        return url.path
    }
}

/// A real TCP server on loopback that answers each command line from a script: for what a
/// limited or hostile SMTP server says, which aiosmtpd will not say.
final class ScriptedSMTPServer: Sendable {
    let channel: any Channel
    let port: Int
    private let received: NIOLockedValueBox<[String]>

    private init(channel: any Channel, received: NIOLockedValueBox<[String]>) throws {
        self.channel = channel
        self.port = try #require(channel.localAddress?.port)
        self.received = received
    }

    static func start(_ script: @escaping @Sendable (String) -> String) async throws -> ScriptedSMTPServer {
        let received = NIOLockedValueBox<[String]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Connection(script: script, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return try ScriptedSMTPServer(channel: channel, received: received)
    }

    func commands() -> [String] { received.withLockedValue { $0 } }

    func stop() async throws { try await channel.close() }

    private final class Connection: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let script: @Sendable (String) -> String
        let received: NIOLockedValueBox<[String]>
        var buffer = ByteBuffer()

        init(script: @escaping @Sendable (String) -> String, received: NIOLockedValueBox<[String]>) {
            self.script = script
            self.received = received
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "220 scripted\r\n")), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
                let line = buffer.readString(length: newline + 1 - buffer.readerIndex)
            {
                let command = line.trimmingCharacters(in: .newlines)
                received.withLockedValue { $0.append(command) }
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: script(command))), promise: nil)
            }
        }
    }
}
