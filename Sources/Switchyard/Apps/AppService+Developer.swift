import Foundation

/// The developer of an app: the invite to the portal, its link, and the one-time password they
/// verify the app with. The password itself is never mailed: the admin hands it over by phone
/// or SMS, so a stolen mailbox alone does not get the app's secrets.
extension AppService {
    /// Mails the developer an invite to the portal for `app` (older links stop working).
    func sendInvite(_ tx: SQLTx, _ app: App, email: String, actor: AuditContext, now: Date) throws {
        let (invite, token) = try Invites.issue(tx, kind: .developer, email: email, appID: app.id, now: now)
        let link = "\(publicURL)/portal/invite/\(token)"
        try mail.enqueue(
            tx,
            to: email,
            subject: "You are invited to the developer portal for \(app.name)",
            body: """
                Hello,

                You are invited to the Switchyard developer portal as the developer of the app \(app.name).
                Sign up (or sign in, if you have an account) here, before \(RFC3339.format(invite.expiresAt)):

                \(link)

                To verify the app you will need its one-time password: the person who registered the app
                gives it to you by phone or SMS. It is never sent by email.
                """
        )
        try record(tx, actor, "app.invite_sent", app, detail: "to \(email)")
    }

    public func resendInvite(id: String, by principal: Principal, audit: AuditContext) async throws -> App {
        try Self.requireManager(principal)
        let now = clock.now
        let actor = principal.audit(from: audit)
        return try await database.write { [self] tx in
            var app = try Self.find(tx, id, forUpdate: true)
            try Self.requireLive(app)
            guard let developer = app.developer else {
                throw APIError.conflict("The app \(app.name) has no developer; link one with PUT /v1/apps/\(app.id)/developer.")
            }
            guard developer.userId == nil else {
                throw APIError.conflict("\(developer.email) accepted the invite already; the app is in their portal.")
            }
            app.developer?.invitedAt = now
            app.updatedAt = now
            try AppStore.update(tx, app)
            try sendInvite(tx, app, email: developer.email, actor: actor, now: now)
            return app
        }
    }

    /// The app leaves the developer's portal at once; they are told by mail.
    public func removeDeveloper(id: String, by principal: Principal, audit: AuditContext) async throws -> App {
        try Self.requireManager(principal)
        let now = clock.now
        let actor = principal.audit(from: audit)
        return try await database.write { [self] tx in
            var app = try Self.find(tx, id, forUpdate: true)
            guard let developer = app.developer else {
                throw APIError.notFound(detail: "The app \(app.name) has no developer.")
            }
            app.developer = nil
            app.updatedAt = now
            try AppStore.update(tx, app)
            try Invites.revoke(tx, kind: .developer, appID: app.id, now: now)
            try mail.enqueue(
                tx,
                to: developer.email,
                subject: "Your access to \(app.name) was removed",
                body: """
                    Hello,

                    Your access to the app \(app.name) in the Switchyard developer portal was removed by an administrator.
                    The app no longer shows in your portal. If you think this is a mistake, contact the people who invited you.
                    """
            )
            try record(tx, actor, "app.developer_removed", app, detail: developer.email)
            return app
        }
    }

    /// Links a new developer to an app that has none, and invites them.
    public func linkDeveloper(id: String, email: String, by principal: Principal, audit: AuditContext) async throws -> App {
        try Self.requireManager(principal)
        let address = try Validate.email(email)
        let now = clock.now
        let actor = principal.audit(from: audit)
        return try await database.write { [self] tx in
            var app = try Self.find(tx, id, forUpdate: true)
            try Self.requireLive(app)
            if let developer = app.developer {
                throw APIError.conflict(
                    "The app \(app.name) has a developer already (\(developer.email)); remove them first with DELETE /v1/apps/\(app.id)/developer."
                )
            }
            app.developer = App.Developer(email: address, userId: nil, invitedAt: now, linkedAt: nil, verified: false, verifiedAt: nil)
            app.updatedAt = now
            try AppStore.update(tx, app)
            try sendInvite(tx, app, email: address, actor: actor, now: now)
            return app
        }
    }

    /// A new one-time password (its 5 tries start again); the developer is mailed that it changed,
    /// not what it is.
    public func resetOneTimePassword(id: String, by principal: Principal, audit: AuditContext) async throws -> WithPassword {
        try Self.requireManager(principal)
        let now = clock.now
        let actor = principal.audit(from: audit)
        let password = AppStore.generateOneTimePassword()
        let app = try await database.write { [self] tx in
            var app = try Self.find(tx, id, forUpdate: true)
            try Self.requireLive(app)
            if app.developer?.verified == true {
                throw APIError.conflict("The app \(app.name) is verified already; it needs no one-time password.")
            }
            let expiresAt = now.addingTimeInterval(Self.oneTimePasswordLifetime)
            try AppStore.setOneTimePassword(tx, id: app.id, hash: AppStore.otpDigest(appID: app.id, password: password), expiresAt: expiresAt)
            app.verification = App.Verification(expiresAt: expiresAt, triesLeft: App.oneTimePasswordTries, locked: false)
            app.updatedAt = now
            try AppStore.update(tx, app)
            if let developer = app.developer {
                try mail.enqueue(
                    tx,
                    to: developer.email,
                    subject: "The one-time password of \(app.name) changed",
                    body: """
                        Hello,

                        An administrator made a new one-time password for the app \(app.name); the old one no longer works.
                        They will give you the new one by phone or SMS. It is never sent by email.
                        """
                )
            }
            try record(tx, actor, "app.one_time_password_reset", app)
            return app
        }
        return WithPassword(app: app, oneTimePassword: password)
    }

    static func requireLive(_ app: App) throws {
        if app.status == .revoked { throw APIError.conflict("The app \(app.name) was revoked.") }
    }
}
