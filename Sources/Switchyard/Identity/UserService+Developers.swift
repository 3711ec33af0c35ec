import Foundation

/// Developers are users with the role `developer`, made by the portal's sign-up from an invite
/// rather than by an admin. The portal (Apps/PortalService) calls these inside its own
/// transactions, so that the account, the app's link and the session are one change; bcrypt runs
/// before or after, never while a transaction is open.
extension UserService {
    /// What the portal's sign-in checks: the user, their password hash, whether they were deactivated.
    struct SignInCredentials: Sendable {
        var user: User
        var passwordHash: String
        var deactivated: Bool
    }

    /// The account with this (lower-cased) email, any role, in the caller's transaction.
    func signInCredentials(_ tx: SQLTx, email: String) throws -> SignInCredentials? {
        // Read here rather than through UserStore.userWithPassword: the portal needs
        // `deactivated_at` too, whatever the user lifecycle's queries read.
        guard let row = try tx.queryOne("SELECT * FROM users WHERE email = ?", email) else { return nil }
        return SignInCredentials(
            user: try UserStore.user(from: row),
            passwordHash: try row.string("password_hash"),
            deactivated: row.optionalDate("deactivated_at") != nil
        )
    }

    /// Creates a developer in the caller's transaction, with a password hashed beforehand.
    /// 409 when the email has an account already: that developer signs in to accept an invite.
    func createDeveloper(_ tx: SQLTx, email: String, name: String, passwordHash: String, now: Date) throws -> User {
        if try signInCredentials(tx, email: email) != nil { throw Self.accountExists(email) }
        let user = User(id: ID.make("usr", at: now), email: email, name: name, role: .developer, createdAt: now, updatedAt: now)
        try UserStore.insert(tx, user, passwordHash: passwordHash)
        return user
    }

    static func accountExists(_ email: String) -> APIError {
        APIError.conflict(
            "An account with the email \(email) exists already: sign in with POST /portal/api/login, sending the invite_token "
                + "along, to accept the invite.",
            field: "invite_token"
        )
    }

    /// A password someone chooses: at least `Passwords.minimumLength` characters, at most the
    /// 72 bytes bcrypt reads (a longer one would silently equal its first 72), as `create` checks.
    static func checkNewPassword(_ password: String, field: String = "password") throws {
        guard password.count >= Passwords.minimumLength else {
            throw APIError.validation("`\(field)` must be at least \(Passwords.minimumLength) characters.", field: field)
        }
        guard password.utf8.count <= 72 else {
            throw APIError.validation("`\(field)` must be at most 72 bytes (bcrypt reads no more).", field: field)
        }
    }
}
