import Foundation
import Logging
import Metrics

/// One delivery to send: the delivery as claimed, its endpoint, its event.
struct DeliveryJob: Sendable {
    var delivery: Delivery
    var target: DeliveryTarget
    var event: Event
}

/// Makes attempts and records what they gave: the next try, success, exhaustion, or the endpoint
/// disabled (with its activity entry and alert mail).
struct DeliverySender: Sendable {
    let database: Database
    let clock: any WallClock
    let outbound: OutboundHTTP
    let settings: WebhookSettings
    let activity: ActivityService
    let mail: MailService
    let users: UserService
    let transformations: WebhookTransformation
    let pacer = DeliveryPacer()
    let publicURL: String
    let logger: Logger

    static let userAgent = "Switchyard-Webhooks/\(SwitchyardVersion.current)"

    /// The body a receiver gets, as the Standard Webhooks specification recommends.
    static func body(type: String, timestamp: Date, data: String) -> [UInt8] {
        Array("{\"data\":\(data),\"timestamp\":\"\(RFC3339.format(timestamp))\",\"type\":\(JSONValue.string(type).jsonText)}".utf8)
    }

    static func body(of event: Event) -> [UInt8] {
        body(type: event.type, timestamp: event.occurredAt, data: event.jsonText)
    }

    /// Transforms (when the endpoint has a transformation), signs and sends one request; never
    /// throws: a failure is an attempt with its error. `cancelled`: the transformation cancelled
    /// it and nothing was sent.
    func attempt(
        target: DeliveryTarget,
        messageID: String,
        body original: [UInt8],
        number: Int,
        deliveryID: String?
    ) async -> (DeliveryAttempt, retryAfter: TimeInterval?, cancelled: Bool) {
        var url = target.url
        var custom = target.headers
        var body = original
        var refusal: String?
        var cancelled = false
        if let code = target.transformation {
            switch await transformations.apply(code, url: url, headers: custom, body: body) {
            case .send(let newURL, let newHeaders, let newBody): (url, custom, body) = (newURL, newHeaders, newBody)
            case .cancel:
                cancelled = true
                refusal = "Cancelled by the endpoint's transformation; nothing was sent."
            case .failed(let message): refusal = message
            }
        }
        let now = clock.now
        let timestamp = Int64(now.timeIntervalSince1970)
        let signature = WebhookSignature.header(id: messageID, timestamp: timestamp, body: body, keys: target.signingKeys(at: now))
        var headers: [(String, String)] = [
            ("content-type", "application/json"), ("user-agent", Self.userAgent), ("webhook-id", messageID),
            ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature),
        ]
        headers += custom
        let logged = headers + target.secretHeaders.map { ($0.0, "[redacted]") }
        headers += target.secretHeaders
        var attempt = DeliveryAttempt(
            id: ID.make("att", at: now),
            deliveryID: deliveryID,
            endpointID: target.id,
            number: number,
            url: url,
            requestHeaders: logged,
            requestBody: String(decoding: body, as: UTF8.self),
            responseStatus: nil,
            responseHeaders: nil,
            responseBody: nil,
            durationMilliseconds: 0,
            error: nil,
            attemptedAt: now
        )
        if let refusal {
            attempt.error = refusal
            Self.attemptOutcome(cancelled ? "cancelled" : "transformation_failed", duration: 0)
            return (attempt, nil, cancelled)
        }
        var retryAfter: TimeInterval?
        let request = OutboundRequest(
            url: url,
            headers: headers,
            body: body,
            timeout: settings.timeout,
            maximumResponseBytes: settings.responseBodyLimit
        )
        do {
            let response = try await outbound.send(request)
            attempt.responseStatus = response.status
            attempt.responseHeaders = response.headers
            attempt.responseBody = String(decoding: response.body, as: UTF8.self)
            attempt.durationMilliseconds = response.duration * 1000
            if !attempt.succeeded {
                attempt.error = "The receiver answered HTTP \(response.status)."
                if response.status == 429 || response.status == 503 {
                    retryAfter = response.headers.first { $0.0.lowercased() == "retry-after" }.flatMap { Self.retryAfter($0.1, now: now) }
                }
            }
            Self.attemptOutcome(attempt.succeeded ? "succeeded" : "http_error", duration: response.duration)
        } catch {
            attempt.error = error.description
            attempt.durationMilliseconds = error.duration * 1000
            Self.attemptOutcome(Self.outcomeName(error.kind), duration: error.duration)
        }
        return (attempt, retryAfter, false)
    }

    /// Sends a delivery and records the result; answers when it is due again, if it is.
    @discardableResult
    func deliver(_ job: DeliveryJob) async -> Date? {
        switch pacer.reserve(job.target) {
        case .now: break
        case .after(let wait): try? await Task.sleep(for: wait)
        case .later(let wait):
            // Over its rate limit for more than a moment: back to the database, due when a slot frees,
            // so a backlog never sits leased in memory (where its lease could run out).
            let due = clock.now.addingTimeInterval(wait.timeInterval)
            do {
                try await database.write { tx in try DeliveryStore.postpone(tx, id: job.delivery.id, until: due) }
                return due
            } catch {
                logger.warning("webhook delivery \(job.delivery.id): could not be put back; it is sent when its lease ends: \(error)")
                return nil
            }
        }
        let body = Self.body(of: job.event)
        let (attempt, retryAfter, cancelled) = await attempt(
            target: job.target,
            messageID: job.event.id,
            body: body,
            number: job.delivery.attempts + 1,
            deliveryID: job.delivery.id
        )
        do {
            return try await record(job, attempt, retryAfter: retryAfter, cancelled: cancelled)
        } catch {
            logger.warning("webhook delivery \(job.delivery.id): the result could not be recorded; it is sent again when its lease ends: \(error)")
            return nil
        }
    }

    private func record(_ job: DeliveryJob, _ attempt: DeliveryAttempt, retryAfter: TimeInterval?, cancelled: Bool) async throws -> Date? {
        let now = clock.now
        let settings = settings
        let gone = attempt.responseStatus == 410
        let next =
            attempt.succeeded || gone || cancelled
            ? nil : settings.nextAttempt(afterRound: job.delivery.roundAttempts + 1, retryAfter: retryAfter, now: now)
        let status: Delivery.Status = cancelled ? .cancelled : attempt.succeeded ? .succeeded : (next == nil ? .failed : .pending)
        let target = job.target
        try await database.write { tx in
            // On SQLite the statements below cost no round trip, and are the same.
            if tx.dialect == .postgres, status == .succeeded, !target.fifo, let httpStatus = attempt.responseStatus {
                return try DeliveryStore.recordSuccess(tx, attempt, httpStatus: httpStatus, deliveryID: job.delivery.id, now: now)
            }
            if target.fifo { try EndpointStore.lock(tx, id: target.id) }
            guard
                try DeliveryStore.record(
                    tx,
                    id: job.delivery.id,
                    status: status,
                    nextAttemptAt: next,
                    httpStatus: attempt.responseStatus,
                    error: attempt.error,
                    now: now
                )
            else { return }
            try DeliveryStore.insertAttempt(tx, attempt)
            if cancelled {
                // Neither a success nor a failure of the receiver: its streaks stay as they are.
            } else if attempt.succeeded {
                try EndpointStore.noteSuccess(tx, id: target.id)
            } else if let streak = try EndpointStore.noteFailure(
                tx,
                id: target.id,
                error: attempt.error ?? "failed",
                exhausted: status == .failed,
                now: now
            ),
                streak.status == Endpoint.Status.active.rawValue
            {
                var reason: String?
                if gone {
                    reason = "The receiver answered 410 Gone, which asks for no more deliveries."
                } else if status == .failed, streak.exhaustedInARow >= settings.disableAfterFailures {
                    reason = "Its last \(streak.exhaustedInARow) deliveries all failed every attempt."
                } else if let since = streak.failingSince, now.timeIntervalSince(since) >= settings.disableAfter {
                    reason = "Every attempt has failed since \(RFC3339.format(since))."
                }
                if let reason { try disable(tx, target, reason: reason, lastError: attempt.error ?? "failed", now: now) }
            }
            if target.fifo, status != .pending { try DeliveryStore.promoteNext(tx, endpointID: target.id, now: now) }
        }
        switch status {
        case .succeeded:
            Counter(label: "switchyard_webhook_deliveries_total", dimensions: [("outcome", "succeeded")]).increment()
            Timer(label: "switchyard_webhook_delivery_latency_seconds").recordSeconds(max(0, now.timeIntervalSince(job.event.occurredAt)))
        case .failed:
            Counter(label: "switchyard_webhook_deliveries_total", dimensions: [("outcome", "failed")]).increment()
        case .cancelled:
            Counter(label: "switchyard_webhook_deliveries_total", dimensions: [("outcome", "cancelled")]).increment()
        case .pending:
            break
        }
        return target.fifo && status != .pending ? now : next
    }

    /// Disables an endpoint, fails what it still had pending, and tells the people responsible.
    func disable(_ tx: SQLTx, _ target: DeliveryTarget, reason: String, lastError: String, now: Date) throws {
        guard try EndpointStore.disable(tx, id: target.id, reason: reason, now: now) else { return }
        try DeliveryStore.failPending(tx, endpointID: target.id, reason: "The endpoint was disabled: \(reason)", now: now)
        try activity.record(
            tx,
            .system("webhook delivery"),
            action: "webhook.disabled",
            targetType: "webhook",
            targetID: target.id,
            workspaceID: target.workspaceID,
            detail: reason
        )
        let recipients = Array(Set(target.alertEmails + (try users.managerEmails(tx)))).sorted()
        let body = """
            The webhook endpoint \(target.label) (\(target.id), workspace \(target.workspaceID)) was disabled.

            Why: \(reason)
            Last error: \(lastError)
            URL: \(target.url)

            Events that arrive while it is disabled are kept as failed deliveries. Once the receiver works
            again, set the endpoint active and send what failed meanwhile:

              curl -X PATCH \(publicURL)/v1/workspaces/\(target.workspaceID)/webhooks/\(target.id) \\
                -H "Authorization: Bearer $TOKEN" -d '{"status": "active"}'
              curl -X POST \(publicURL)/v1/workspaces/\(target.workspaceID)/webhooks/\(target.id)/recover \\
                -H "Authorization: Bearer $TOKEN" -d '{"since": "\(RFC3339.format(now.addingTimeInterval(-settings.disableAfter)))"}'
            """
        for recipient in recipients {
            try mail.enqueue(tx, to: recipient, subject: "Webhook endpoint \(target.label) was disabled", body: body)
        }
        logger.warning(
            "webhook endpoint disabled",
            metadata: ["endpoint": "\(target.id)", "workspace": "\(target.workspaceID)", "reason": "\(reason)"]
        )
    }

    /// `Retry-After`: seconds, or an HTTP date.
    static func retryAfter(_ value: String, now: Date) -> TimeInterval? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return TimeInterval(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: trimmed).map { max(0, $0.timeIntervalSince(now)) }
    }

    static func outcomeName(_ kind: OutboundFailure.Kind) -> String {
        switch kind {
        case .timeout: return "timeout"
        case .blocked, .invalidURL, .invalidRequest, .resolution: return "blocked"
        case .tls: return "tls"
        default: return "connection"
        }
    }

    static func attemptOutcome(_ outcome: String, duration: TimeInterval) {
        Counter(label: "switchyard_webhook_attempts_total", dimensions: [("outcome", outcome)]).increment()
        Timer(label: "switchyard_webhook_attempt_duration_seconds").recordSeconds(duration)
    }
}
