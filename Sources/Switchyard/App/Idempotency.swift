import Crypto
import Foundation

/// `Idempotency-Key` on creating POSTs: the first answer to a key is kept for 24 hours and given
/// again to a retry with the same key, and nothing is created twice. Reusing a key for a
/// different request is refused, since the client is confused about what it sent.
public enum Idempotency {
    public static let window: TimeInterval = 24 * 3600

    public struct Stored: Sendable {
        public var status: Int
        public var body: String
    }

    /// The key of a request, checked: printable ASCII, at most 255 characters.
    public static func key(_ header: String?) throws -> String? {
        guard let header else { return nil }
        guard !header.isEmpty, header.count <= 255, header.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value < 0x7F }) else {
            throw APIError.validation("`Idempotency-Key` must be 1 to 255 printable ASCII characters without spaces.", field: "Idempotency-Key")
        }
        return header
    }

    public static func fingerprint(_ parts: String...) -> String {
        Hex.sha256(parts.joined(separator: "\u{1F}"))
    }

    /// A create made once per key, inside the caller's transaction: a retry with `key` gets the
    /// stored answer and `create` does not run; otherwise `create` runs (answering 201 with its
    /// body) and the answer is kept with the key. `scope` separates callers and kinds of creates;
    /// `workspaceID` is the organization's id for creates above workspaces.
    public static func once(
        _ tx: SQLTx,
        workspaceID: String,
        scope: String,
        key: String?,
        fingerprint: String,
        now: Date,
        _ create: () throws -> String
    ) throws -> Stored {
        if let key, let stored = try lookup(tx, workspaceID: workspaceID, scope: scope, key: key, fingerprint: fingerprint, now: now) {
            return stored
        }
        let answer = Stored(status: 201, body: try create())
        if let key {
            try IdempotencyStore.insert(tx, workspaceID: workspaceID, scope: scope, key: key, fingerprint: fingerprint, answer: answer, now: now)
        }
        return answer
    }

    /// The answer stored for this key, if one was given in the last 24 hours.
    static func lookup(_ tx: SQLTx, workspaceID: String, scope: String, key: String, fingerprint: String, now: Date) throws -> Stored? {
        guard let stored = try IdempotencyStore.find(tx, workspaceID: workspaceID, scope: scope, key: key) else { return nil }
        if stored.createdAt < now.addingTimeInterval(-window) {
            try IdempotencyStore.delete(tx, workspaceID: workspaceID, scope: scope, key: key)
            return nil
        }
        guard stored.fingerprint == fingerprint else {
            throw APIError(
                .idempotencyKeyReused,
                detail: "This Idempotency-Key was used for a different request in the last 24 hours; use a new key.",
                field: "Idempotency-Key"
            )
        }
        return stored.answer
    }

    /// Forgets keys older than the window; the housekeeping service calls this.
    @discardableResult
    public static func sweep(_ tx: SQLTx, now: Date) throws -> Int {
        try IdempotencyStore.deleteCreated(tx, before: now.addingTimeInterval(-window))
    }

}

extension Authenticator {
    /// A creating POST made once per `Idempotency-Key`, in one write with the caller's
    /// authentication. `authorize` checks what the caller may do and finds what the create needs (it
    /// runs for a retry too, so a caller who lost access is refused rather than answered);
    /// `create` makes the thing and answers its JSON, which is kept for the key's retries. The route
    /// calls this: rendering and idempotency are the HTTP layer's, the create the service's.
    public func createOnce<Prepared>(
        _ caller: Caller,
        key: String?,
        workspaceID: String,
        scope: @escaping @Sendable (Principal) -> String,
        fingerprint: String,
        authorize: @escaping @Sendable (SQLTx, Principal) throws -> Prepared,
        create: @escaping @Sendable (SQLTx, Principal, Prepared) throws -> String
    ) async throws -> Idempotency.Stored {
        try await createOnce(
            caller,
            key: key,
            workspaceID: workspaceID,
            scope: scope,
            fingerprint: fingerprint,
            prefetch: { _ in () },
            authorize: { tx, principal, _ in try authorize(tx, principal) },
            create: create
        )
    }

    /// `createOnce` whose `authorize` reads rows `prefetch` sent before the caller's credentials
    /// were looked up, in the same round trip (`SQLTx.prefetch`).
    public func createOnce<Fetched: Sendable, Prepared>(
        _ caller: Caller,
        key: String?,
        workspaceID: String,
        scope: @escaping @Sendable (Principal) -> String,
        fingerprint: String,
        prefetch: @escaping @Sendable (SQLTx) -> Fetched,
        authorize: @escaping @Sendable (SQLTx, Principal, Fetched) throws -> Prepared,
        create: @escaping @Sendable (SQLTx, Principal, Prepared) throws -> String
    ) async throws -> Idempotency.Stored {
        let now = clock.now
        let attempt = { @Sendable [self] in
            try await self.write(caller, prefetch: prefetch) { tx, principal, fetched in
                let prepared = try authorize(tx, principal, fetched)
                return try Idempotency.once(
                    tx,
                    workspaceID: workspaceID,
                    scope: scope(principal),
                    key: key,
                    fingerprint: fingerprint,
                    now: now
                ) { try create(tx, principal, prepared) }
            }
        }
        do {
            return try await attempt()
        } catch StorageError.uniqueViolation {
            // A concurrent request with the same key won (its answer is stored now), or took a
            // unique value (the retry reports that properly).
            do {
                return try await attempt()
            } catch StorageError.uniqueViolation(let detail) {
                throw APIError.conflict("A concurrent request took a unique value or this Idempotency-Key (\(detail)); retry it.")
            }
        }
    }
}
