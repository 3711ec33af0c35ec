import Foundation
import HummingbirdBcrypt
import NIOConcurrencyHelpers
import NIOPosix

/// bcrypt, off the request threads: a hash costs tens of milliseconds by design.
public struct Passwords: Sendable {
    public let cost: UInt8

    public init(cost: UInt8) { self.cost = cost }

    public static let minimumLength = 10

    private let decoy = NIOLockedValueBox<String?>(nil)

    /// A hash of a random password at this cost, checked for unknown emails so that they take as
    /// long as known ones. Made on first use, not at start-up.
    func unknownUserHash() async throws -> String {
        if let hash = decoy.withLockedValue({ $0 }) { return hash }
        let hash = try await self.hash(UUID().uuidString)
        decoy.withLockedValue { $0 = hash }
        return hash
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// 20 characters of an alphabet without look-alikes (0/O, 1/l): ~116 bits.
    public static func generate() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(rng.next(upperBound: UInt(alphabet.count)))] })
    }
}
