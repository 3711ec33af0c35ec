import Foundation

/// The developer portal: a developer signs up from an app's invite (or signs in with it when
/// they have an account), sees their apps, verifies one with its one-time password and manages
/// its client secrets. Sessions are kind `portal` (`PortalSessionResolver`). Every change and
/// every refusal is in the activity log; a refused request changes nothing but the count of
/// wrong one-time passwords.
public struct PortalService: Sendable {
    /// The action of portal sign-ins, whose failures the throttle counts.
    static let signInAction = "portal.signed_in"
    let database: Database
    let clock: any WallClock
    let passwords: Passwords
    let activity: ActivityService
    let users: UserService
    /// Without a trailing slash, for the links the portal hands out.
    let publicURL: String
    let throttle: SignInThrottle
    let resolver = PortalSessionResolver()

    public init(database: Database, clock: any WallClock, passwords: Passwords, activity: ActivityService, users: UserService, publicURL: String) {
        self.database = database
        self.clock = clock
        self.passwords = passwords
        self.activity = activity
        self.users = users
        var base = Substring(publicURL)
        while base.hasSuffix("/") { base = base.dropLast() }
        self.publicURL = String(base)
        throttle = SignInThrottle(action: Self.signInAction, throttledAction: "portal.throttled", activity: activity, clock: clock)
    }

    static let lifetime = SessionService.lifetime
    static let signInHint = "Sign in to the developer portal with POST /portal/api/login, or sign up from your invite with POST /portal/api/signup."

    /// 401 without a `WWW-Authenticate` challenge: the portal takes no bearer tokens.
    static func unauthenticated(_ detail: String) -> APIError { APIError(.unauthenticated, detail: detail) }

    public struct SignedIn: Sendable {
        public var secret: String
        public var developer: User
        public var expiresAt: Date
    }

    /// A signed-in developer's request: the cookie's secret and where it came from.
    public struct Caller: Sendable {
        public var secret: String
        public var audit: AuditContext
    }

    // MARK: Sign-up, sign-in, sign-out

    /// Creates a developer from an invite, links the invite's app to them and signs them in, in
    /// one transaction: the invite is used only if all of it happens.
    public func signUp(_ input: PortalSignUpInput, audit: AuditContext) async throws -> SignedIn {
        do {
            try UserService.checkNewPassword(input.password)
            let name = try input.name.map { try Validate.name($0) }
            let hash = try await passwords.hash(input.password)
            let now = clock.now
            let token = input.inviteToken
            return try await database.write { [self] tx in
                let invite = try Invites.open(tx, token: token, kinds: [.developer], now: now, consume: true)
                let email = invite.email.lowercased()
                var app = try linkableApp(tx, invite)
                let localPart = email.split(separator: "@").first.map(String.init) ?? email
                let developer = try users.createDeveloper(tx, email: email, name: name ?? localPart, passwordHash: hash, now: now)
                let actor = Principal.session(developer).audit(from: audit)
                try link(tx, &app, to: developer, audit: actor, now: now)
                return try startSession(tx, developer, audit: actor, action: "portal.signed_up", now: now)
            }
        } catch let error as APIError {
            try await activity.recordFailure(audit, action: "portal.signed_up", detail: error.detail, flood: true)
            throw error
        } catch StorageError.uniqueViolation {
            // Another sign-up with the same email got there first.
            let error = APIError.conflict("An account with this email exists already: sign in with POST /portal/api/login.")
            try await activity.recordFailure(audit, action: "portal.signed_up", detail: error.detail, flood: true)
            throw error
        }
    }

    /// Signs a developer in; with `invite_token`, accepts that invite for the account too (both
    /// or neither). Failed sign-ins are throttled as the console's are.
    public func signIn(_ input: PortalSignInInput, audit: AuditContext) async throws -> SignedIn {
        let email = input.email.trimmingCharacters(in: .whitespaces).lowercased()
        var audit = audit
        audit.actorLabel = String(email.prefix(254))
        let attempt = try await throttle.reserve(audit)
        let found = try await database.read { [self] tx in try users.signInCredentials(tx, email: email) }
        // An unknown email still costs a bcrypt check, so timing does not tell which emails exist.
        let hash: String
        if let found { hash = found.passwordHash } else { hash = try await passwords.unknownUserHash() }
        let verified = try await passwords.verify(input.password, hash: hash)
        guard let found, verified else {
            try await activity.recordFailure(audit, action: Self.signInAction, detail: "wrong email or password")
            throw Self.unauthenticated("The email or password is wrong.")
        }
        if found.deactivated {
            try await activity.recordFailure(audit, action: Self.signInAction, detail: "account deactivated")
            throw Self.unauthenticated("This account is deactivated; ask the admin who invited you.")
        }
        guard found.user.role == .developer else {
            try await activity.recordFailure(audit, action: Self.signInAction, detail: "not a developer")
            throw APIError.forbidden("Only developers sign in to the portal; sign in to the console with POST /v1/sessions.")
        }
        throttle.succeeded(attempt)
        let developer = found.user
        let actor = Principal.session(developer).audit(from: audit)
        let now = clock.now
        let token = input.inviteToken
        do {
            return try await database.write { [self] tx in
                if let token {
                    let invite = try Invites.open(tx, token: token, kinds: [.developer], now: now, consume: true)
                    guard invite.email.lowercased() == developer.email else {
                        throw APIError.forbidden(
                            "This invite is for \(invite.email), not \(developer.email): sign in with that account, or sign up from the invite."
                        )
                    }
                    var app = try linkableApp(tx, invite)
                    try link(tx, &app, to: developer, audit: actor, now: now)
                }
                return try startSession(tx, developer, audit: actor, action: "portal.signed_in", now: now)
            }
        } catch let error as APIError {
            // A refused invite, not a wrong password: recorded apart from what the throttle counts.
            try await activity.recordFailure(actor, action: "app.developer_linked", detail: error.detail, flood: true)
            throw error
        }
    }

    public func signOut(_ caller: Caller) async throws {
        let now = clock.now
        try await database.write { [self] tx in
            let developer = try developer(tx, caller.secret, now: now)
            guard let sessionID = developer.sessionID else { return }
            try SessionStore.deleteSession(tx, id: sessionID)
            try activity.record(
                tx,
                Principal.user(developer).audit(from: caller.audit),
                action: "portal.signed_out",
                targetType: "user",
                targetID: developer.id,
                targetLabel: developer.user.email
            )
        }
    }

    /// What an invite is for, without using it.
    public func invite(token: String) async throws -> PortalInvite {
        let now = clock.now
        return try await database.read { [self] tx in
            let invite = try Invites.open(tx, token: token, kinds: [.developer], now: now, consume: false)
            let app = try linkableApp(tx, invite, forUpdate: false)
            let email = invite.email.lowercased()
            return PortalInvite(
                app: PortalInvite.AppRef(id: app.id, name: app.name),
                email: email,
                hasAccount: try users.signInCredentials(tx, email: email) != nil,
                expiresAt: invite.expiresAt
            )
        }
    }

    // MARK: Helpers

    /// The invite's app, if the invite still names its developer: 410 once the app was revoked,
    /// given to another developer, or linked to another account.
    func linkableApp(_ tx: SQLTx, _ invite: Invites.Invite, forUpdate: Bool = true) throws -> App {
        guard let appID = invite.appID, let app = try AppStore.app(tx, id: appID, forUpdate: forUpdate), app.status != .revoked,
            let developer = app.developer, developer.email.lowercased() == invite.email.lowercased()
        else {
            throw APIError(.linkExpired, detail: "The app of this invite was revoked or handed to another developer; ask its admin.")
        }
        if let linked = developer.userId, let user = try UserStore.user(tx, id: linked), user.email != invite.email.lowercased() {
            throw APIError(.linkExpired, detail: "The app of this invite is linked to another developer already; ask its admin.")
        }
        return app
    }

    func link(_ tx: SQLTx, _ app: inout App, to developer: User, audit: AuditContext, now: Date) throws {
        app.developer?.userId = developer.id
        app.developer?.linkedAt = now
        app.updatedAt = now
        try AppStore.update(tx, app)
        try activity.record(
            tx,
            audit,
            action: "app.developer_linked",
            targetType: "app",
            targetID: app.id,
            targetLabel: app.name,
            detail: "developer \(developer.email)"
        )
    }

    /// A portal session for the developer, recorded as `action` (signed up or signed in).
    func startSession(_ tx: SQLTx, _ developer: User, audit: AuditContext, action: String, now: Date) throws -> SignedIn {
        let secret = TokenFormat.generate(prefix: PortalSessionResolver.prefix)
        let expiresAt = now.addingTimeInterval(Self.lifetime)
        try SessionStore.insertSession(
            tx,
            id: ID.make("ses", at: now),
            userID: developer.id,
            secretHash: TokenFormat.hash(secret),
            createdAt: now,
            expiresAt: expiresAt,
            kind: PortalSessionResolver.kind
        )
        try activity.record(tx, audit, action: action, targetType: "user", targetID: developer.id, targetLabel: developer.email)
        return SignedIn(secret: secret, developer: developer, expiresAt: expiresAt)
    }

    /// The developer the cookie's session belongs to, in the caller's transaction; 401 otherwise.
    func developer(_ tx: SQLTx, _ secret: String, now: Date) throws -> UserPrincipal {
        switch try resolver.resolve(tx, .session(secret), now: now) {
        case .principal(.user(let developer), _): return developer
        case .refused(_, let detail): throw Self.unauthenticated(detail)
        default: throw Self.unauthenticated(Self.signInHint)
        }
    }
}
