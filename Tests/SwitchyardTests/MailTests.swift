import Foundation
import Logging
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
        let message = MailMessage(id: "msg_1", recipient: "ann@example.com", subject: "Grüße", body: "line\n.\n..x",
                                  status: .queued, attempts: 0, nextAttemptAt: Date(), lastError: nil, createdAt: Date(), sentAt: nil)
        let text = MailFormat.render(message, from: "Switchyard <hub@example.com>", date: Date(timeIntervalSince1970: 0))
        #expect(text.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"))
        #expect(text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        #expect(text.hasSuffix("\r\n\r\nline\r\n..\r\n...x\r\n"))
        #expect(MailFormat.address("Switchyard <hub@example.com>") == "hub@example.com")
    }
}
