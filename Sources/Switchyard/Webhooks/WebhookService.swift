import Foundation

/// Webhook endpoints: managed by owners, admins and integration admins, read by members.
public final class WebhookService: Sendable {
    let database: Database
    let clock: any WallClock
    let authenticator: Authenticator
    let workspaces: WorkspaceService
    let activity: ActivityService
    let sealer: Sealer
    let outbound: OutboundHTTP
    let scripts: any ScriptRunner
    let sender: DeliverySender
    let targets: DeliveryTargets
    let wake: EventSignal
    let events: EventService
    let objectTypes: ObjectTypeService
    /// How long deliveries carry the old signature beside the new one after a rotation.
    static let rotationOverlap: TimeInterval = 86_400

    init(
        database: Database,
        clock: any WallClock,
        authenticator: Authenticator,
        workspaces: WorkspaceService,
        activity: ActivityService,
        sealer: Sealer,
        outbound: OutboundHTTP,
        scripts: any ScriptRunner,
        sender: DeliverySender,
        targets: DeliveryTargets,
        wake: EventSignal,
        events: EventService,
        objectTypes: ObjectTypeService
    ) {
        self.database = database
        self.clock = clock
        self.authenticator = authenticator
        self.workspaces = workspaces
        self.activity = activity
        self.sealer = sealer
        self.outbound = outbound
        self.scripts = scripts
        self.sender = sender
        self.targets = targets
        self.wake = wake
        self.events = events
        self.objectTypes = objectTypes
    }

    /// The request's subscriptions checked against the workspace's object types, as stored.
    func subscriptions(_ tx: SQLTx, _ value: JSONValue, workspaceID: String, by principal: Principal) throws -> JSONValue {
        let types = Dictionary(try objectTypes.objectTypes(tx, workspaceID: workspaceID).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let json = try SubscriptionList.parse(value).validated(against: types).json
        guard case .app(let app) = principal, case .array(let items) = json else { return json }
        // Oneflow's rule: an app hears of the records it created, whatever else it subscribes to;
        // an admin may widen its subscriptions afterwards.
        let own = JSONValue.object(["type": .string("app"), "id": .string(app.id)])
        return .array(
            try items.enumerated().map { index, item in
                guard case .object(var subscription) = item else { return item }
                if let given = subscription["created_by"], given != own {
                    throw APIError.validation(
                        "An app's webhooks receive the events of the records it created; `created_by` must be left out or name the app.",
                        field: "subscriptions[\(index)].created_by"
                    )
                }
                subscription["created_by"] = own
                return .object(subscription)
            }
        )
    }

    /// Stops the endpoints an app made (it was revoked): they send nothing more.
    func stopEndpoints(_ tx: SQLTx, createdByApp appID: String, reason: String, now: Date) throws -> Int {
        try EndpointStore.disable(tx, createdByApp: appID, reason: reason, now: now)
    }

    /// Who may read webhooks in the workspace: its readers, and apps with `webhooks:manage`.
    func authorizeRead(_ tx: SQLTx, workspaceID: String, by principal: Principal) throws {
        try principal.require(Role.readers, or: "webhooks:manage", to: "read webhooks")
        _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
    }

    /// A target URL as creation and updates accept it: http(s) with a host, and no address the
    /// operator has not allowed (checked again for every address at each connection).
    public func checkURL(_ url: String) async throws {
        guard url.count <= 2000 else { throw APIError.validation("`url` must be at most 2000 characters.", field: "url") }
        if let problem = await outbound.targetGuard.validateResolving(url: url) {
            throw APIError(
                problem.isBlocked ? .blockedTarget : .validationFailed,
                detail: "`url` \(problem)\(problem.isBlocked ? "; the operator allows networks with --allowed-target-networks" : ".")",
                field: "url"
            )
        }
    }

    /// A transformation as creation and updates accept it: code that compiles and exports `transform`.
    public func checkTransformation(_ code: String) async throws {
        if let problem = await scripts.check(code, entries: [WebhookTransformation.entry]) {
            throw APIError.validation("`transformation` does not compile: \(problem).", field: "transformation")
        }
    }

    /// Who may change webhooks in the workspace: in the caller's transaction.
    func authorizeManage(_ tx: SQLTx, workspaceID: String, by principal: Principal) throws {
        try principal.require(Role.integrationManagers, or: "webhooks:manage", to: "manage webhooks")
        _ = try workspaces.workspace(tx, id: workspaceID, by: principal)
    }

    /// Creates an endpoint (`checkURL` first) and answers it, without its secret: the answer is
    /// what an `Idempotency-Key` stores, in plain text, and the secret stays sealed
    /// (`withSecret` adds it to the 201).
    func create(_ tx: SQLTx, _ input: CreateEndpointInput, workspaceID: String, by principal: Principal, audit: AuditContext) throws -> JSONValue {
        let now = clock.now
        let subscriptions = try subscriptions(tx, input.subscriptions, workspaceID: workspaceID, by: principal)
        let fields = input.fields
        let secret = WebhookSignature.generateSecret()
        let endpoint = Endpoint(
            id: ID.make("ep", at: now),
            workspaceID: workspaceID,
            name: fields.name ?? nil,
            description: fields.description ?? nil,
            url: input.url,
            status: fields.status ?? .active,
            subscriptions: subscriptions,
            alertEmails: fields.alertEmails ?? [],
            headers: fields.headers ?? [:],
            secretHeaderNames: (fields.secretHeaders ?? [:]).keys.sorted(),
            rateLimit: fields.rateLimit ?? nil,
            fifo: fields.fifo ?? false,
            transformation: fields.transformation ?? nil,
            disabledAt: nil,
            disabledReason: nil,
            lastError: nil,
            createdBy: Record.CreatedBy(type: principal.actorType, id: principal.actorID),
            createdAt: now,
            updatedAt: now
        )
        try FanOutStore.ensureCursor(tx, events: events)
        try EndpointStore.insert(tx, endpoint, secret: try sealer.seal(secret), secretHeaders: try sealedHeaders(fields.secretHeaders))
        try record(tx, "webhook.created", endpoint, by: principal, audit: audit, detail: "url \(endpoint.url)")
        return endpoint.json
    }

    /// The creation answer with the endpoint's signing secret, for the 201 and its replays: the
    /// caller made the endpoint, or repeated the request with the same key.
    func withSecret(_ answer: String, workspaceID: String) async throws -> String {
        guard case .object(var object) = try JSONValue.parse(text: answer), let id = object["id"]?.stringValue else { return answer }
        let sealed = try await database.read { tx in try EndpointStore.row(tx, id: id, workspaceID: workspaceID)?.secret }
        guard let sealed else { return answer }
        object["secret"] = .string(try sealer.open(sealed))
        return JSONValue.object(object).jsonText
    }

    public func list(caller: Caller, workspaceID: String, status: Endpoint.Status?, after: String?, limit: Int) async throws -> [Endpoint] {
        if let after, !ID.isValid(after, prefix: "ep") {
            throw APIError.validation("`after` must be an endpoint id (the `next_after` of the previous page).", field: "after")
        }
        return try await authenticator.read(caller) { [self] tx, principal in
            try self.authorizeRead(tx, workspaceID: workspaceID, by: principal)
            let app = principal.appID
            return try EndpointStore.list(tx, workspaceID: workspaceID, status: status, createdByApp: app, after: after, limit: limit)
        }
    }

    public func endpoint(caller: Caller, workspaceID: String, id: String) async throws -> Endpoint {
        try await authenticator.read(caller) { [self] tx, principal in
            try self.authorizeRead(tx, workspaceID: workspaceID, by: principal)
            return try Self.row(tx, workspaceID: workspaceID, id: id, by: principal).endpoint
        }
    }

    public func update(caller: Caller, workspaceID: String, id: String, _ input: UpdateEndpointInput) async throws -> Endpoint {
        let fields = input.fields
        if let url = fields.url { try await checkURL(url) }
        if let code = fields.transformation ?? nil { try await checkTransformation(code) }
        let now = clock.now
        let sealed = try fields.secretHeaders.map { try sealedHeaders($0) }
        let endpoint = try await authenticator.write(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            var endpoint = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal, forUpdate: true).endpoint
            var changed: [String] = []
            func set<T: Equatable>(_ path: WritableKeyPath<Endpoint, T>, _ value: T?, _ name: String) {
                guard let value, endpoint[keyPath: path] != value else { return }
                endpoint[keyPath: path] = value
                changed.append(name)
            }
            if let subscriptions = fields.subscriptions {
                set(\.subscriptions, try self.subscriptions(tx, subscriptions, workspaceID: workspaceID, by: principal), "subscriptions")
            }
            set(\.url, fields.url, "url")
            set(\.name, fields.name, "name")
            set(\.description, fields.description, "description")
            set(\.alertEmails, fields.alertEmails, "alert_emails")
            set(\.headers, fields.headers, "headers")
            set(\.rateLimit, fields.rateLimit, "rate_limit")
            set(\.transformation, fields.transformation, "transformation")
            let wasFIFO = endpoint.fifo
            set(\.fifo, fields.fifo, "ordering")
            // No longer one at a time: what waited for its turn is due now.
            if wasFIFO, !endpoint.fifo { try DeliveryStore.releaseWaiting(tx, endpointID: id, now: now) }
            if let secretHeaders = fields.secretHeaders {
                endpoint.secretHeaderNames = secretHeaders.keys.sorted()
                changed.append("secret_headers")
            }
            var reactivated = false
            if let status = fields.status, status != endpoint.status {
                reactivated = status == .active
                endpoint.status = status
                endpoint.disabledAt = nil
                endpoint.disabledReason = nil
                changed.append("status \(status.rawValue)")
            }
            guard !changed.isEmpty else { return endpoint }
            endpoint.updatedAt = max(now, endpoint.updatedAt.addingTimeInterval(0.001))
            try EndpointStore.update(tx, endpoint, secretHeaders: sealed, reactivated: reactivated)
            try record(tx, "webhook.updated", endpoint, by: principal, audit: caller.audit, detail: "changed " + changed.joined(separator: ", "))
            return endpoint
        }
        // Re-enabled or re-subscribed: deliveries waiting (a FIFO turn, retries) go at once.
        wake.signal()
        return endpoint
    }

    /// Deletes the endpoint with its deliveries and their log: nothing more is sent to it.
    public func delete(caller: Caller, workspaceID: String, id: String) async throws {
        try await authenticator.write(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            let endpoint = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal, forUpdate: true).endpoint
            try EndpointStore.delete(tx, id: id)
            try record(tx, "webhook.deleted", endpoint, by: principal, audit: caller.audit, detail: "url \(endpoint.url)")
        }
    }

    /// The signing secret, for those who manage webhooks; reading it is an activity entry.
    public func secret(caller: Caller, workspaceID: String, id: String) async throws -> String {
        try await authenticator.write(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            let row = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal)
            try record(tx, "webhook.secret_viewed", row.endpoint, by: principal, audit: caller.audit)
            return try sealer.open(row.secret)
        }
    }

    /// A new signing secret; for 24 hours deliveries are signed with both.
    public func rotateSecret(caller: Caller, workspaceID: String, id: String) async throws -> String {
        let now = clock.now
        let secret = WebhookSignature.generateSecret()
        let sealed = try sealer.seal(secret)
        return try await authenticator.write(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            let row = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal, forUpdate: true)
            let updatedAt = max(now, row.endpoint.updatedAt.addingTimeInterval(0.001))
            try EndpointStore.rotateSecret(
                tx,
                id: id,
                secret: sealed,
                previous: row.secret,
                previousUntil: now.addingTimeInterval(Self.rotationOverlap),
                now: updatedAt
            )
            try record(
                tx,
                "webhook.secret_rotated",
                row.endpoint,
                by: principal,
                audit: caller.audit,
                detail: "the old secret signs until \(RFC3339.format(now.addingTimeInterval(Self.rotationOverlap)))"
            )
            return secret
        }
    }

    /// Sends a signed `webhook.ping` now and answers the attempt, whatever the receiver said.
    public func ping(caller: Caller, workspaceID: String, id: String) async throws -> DeliveryAttempt {
        let row = try await authenticator.read(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            return try Self.row(tx, workspaceID: workspaceID, id: id, by: principal)
        }
        let target = try targets.target(for: row)
        let now = clock.now
        let data = JSONValue.object(["endpoint_id": .string(id), "workspace_id": .string(workspaceID)]).jsonText
        let body = DeliverySender.body(type: "webhook.ping", timestamp: now, data: data)
        return await sender.attempt(target: target, messageID: ID.make("evt", at: now), body: body, number: 1, deliveryID: nil).0
    }

    public func deliveries(
        caller: Caller,
        workspaceID: String,
        id: String,
        status: Delivery.Status?,
        after: String?,
        limit: Int
    ) async throws -> [Delivery] {
        if let after, !ID.isValid(after, prefix: "dlv") {
            throw APIError.validation("`after` must be a delivery id (the `next_after` of the previous page).", field: "after")
        }
        return try await authenticator.read(caller) { [self] tx, principal in
            try self.authorizeRead(tx, workspaceID: workspaceID, by: principal)
            _ = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal)
            return try DeliveryStore.list(tx, endpointID: id, status: status, after: after, limit: limit)
        }
    }

    public func attempts(caller: Caller, workspaceID: String, id: String, deliveryID: String) async throws -> [DeliveryAttempt] {
        try await authenticator.read(caller) { [self] tx, principal in
            try self.authorizeRead(tx, workspaceID: workspaceID, by: principal)
            _ = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal)
            guard ID.isValid(deliveryID, prefix: "dlv"), try DeliveryStore.delivery(tx, id: deliveryID, endpointID: id) != nil else {
                throw APIError.notFound("delivery", deliveryID)
            }
            return try DeliveryStore.attempts(tx, deliveryID: deliveryID)
        }
    }

    /// Sends a delivery again now, its retry schedule started over.
    public func retry(caller: Caller, workspaceID: String, id: String, deliveryID: String) async throws -> Delivery {
        let now = clock.now
        let delivery = try await authenticator.write(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            let endpoint = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal, forUpdate: true).endpoint
            guard ID.isValid(deliveryID, prefix: "dlv"), let existing = try DeliveryStore.delivery(tx, id: deliveryID, endpointID: id) else {
                throw APIError.notFound("delivery", deliveryID)
            }
            guard existing.status != .pending else {
                throw APIError.conflict(
                    "Delivery \(deliveryID) is still pending; it is sent at \(existing.nextAttemptAt.map(RFC3339.format) ?? "its FIFO turn")."
                )
            }
            guard let delivery = try DeliveryStore.restart(tx, id: deliveryID, endpointID: id, fifo: endpoint.fifo, now: now) else {
                throw APIError.notFound("delivery", deliveryID)
            }
            try record(tx, "webhook.delivery_retried", endpoint, by: principal, audit: caller.audit, detail: "delivery \(deliveryID)")
            return delivery
        }
        wake.signal()
        return delivery
    }

    /// Sends every failed delivery since `since` again; answers how many.
    public func recover(caller: Caller, workspaceID: String, id: String, since: Date) async throws -> Int {
        let now = clock.now
        let count = try await authenticator.write(caller) { [self] tx, principal in
            try authorizeManage(tx, workspaceID: workspaceID, by: principal)
            let endpoint = try Self.row(tx, workspaceID: workspaceID, id: id, by: principal, forUpdate: true).endpoint
            let count = try DeliveryStore.restartFailed(tx, endpointID: id, since: since, fifo: endpoint.fifo, now: now)
            try record(
                tx,
                "webhook.recovered",
                endpoint,
                by: principal,
                audit: caller.audit,
                detail: "\(count) failed deliveries since \(RFC3339.format(since)) sent again"
            )
            return count
        }
        wake.signal()
        return count
    }

    /// The endpoint, if the caller may see it: an app sees only the endpoints it made.
    static func row(_ tx: SQLTx, workspaceID: String, id: String, by principal: Principal, forUpdate: Bool = false) throws -> EndpointStore.Row {
        guard ID.isValid(id, prefix: "ep"), let row = try EndpointStore.row(tx, id: id, workspaceID: workspaceID, forUpdate: forUpdate),
            principal.appID.map({ row.endpoint.createdBy == Record.CreatedBy(type: "app", id: $0) }) ?? true
        else {
            throw APIError.notFound("webhook endpoint", id)
        }
        return row
    }

    private func sealedHeaders(_ headers: [String: String]?) throws -> [UInt8]? {
        guard let headers, !headers.isEmpty else { return nil }
        return try sealer.seal(JSONValue.object(headers.mapValues(JSONValue.string)).jsonText)
    }

    private func record(
        _ tx: SQLTx,
        _ action: String,
        _ endpoint: Endpoint,
        by principal: Principal,
        audit: AuditContext,
        detail: String? = nil
    ) throws {
        try activity.record(
            tx,
            principal.audit(from: audit),
            action: action,
            targetType: "webhook",
            targetID: endpoint.id,
            targetLabel: endpoint.name ?? endpoint.url,
            workspaceID: endpoint.workspaceID,
            detail: detail
        )
    }
}
