import Testing

@testable import Switchyard

@Suite("Client addresses behind proxies")
struct ClientAddressTests {
    @Test("networks: IPv4, IPv6, single addresses, IPv4-mapped peers; bad ones refused")
    func networks() throws {
        let private10 = try IPNetwork(parsing: "10.0.0.0/8")
        #expect(private10.contains("10.255.0.1"))
        #expect(private10.contains("::ffff:10.1.2.3"))
        #expect(!private10.contains("11.0.0.1"))
        #expect(!private10.contains("fd00::1"))
        let odd = try IPNetwork(parsing: "192.168.1.128/25")
        #expect(odd.contains("192.168.1.200") && !odd.contains("192.168.1.127"))
        let single = try IPNetwork(parsing: "127.0.0.1")
        #expect(single.contains("127.0.0.1") && !single.contains("127.0.0.2"))
        let v6 = try IPNetwork(parsing: "fd00::/8")
        #expect(v6.contains("fd12:3456::1") && !v6.contains("fe80::1") && !v6.contains("10.0.0.1"))
        #expect(try IPNetwork(parsing: "0.0.0.0/0").contains("8.8.8.8"))
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "example.com", "10.0.0.0/-1", "10.0.0.0/x", ""] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try IPNetwork(parsing: bad) }
        }
    }

    @Test("X-Forwarded-For is read right to left, and only from a trusted peer")
    func forwardedFor() throws {
        let trusted = [try IPNetwork(parsing: "127.0.0.1"), try IPNetwork(parsing: "10.0.0.0/8")]
        let resolve = { (peer: String?, header: [String]) in ClientAddress.resolve(peer: peer, forwardedFor: header, trusted: trusted) }
        #expect(resolve("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9", "an untrusted peer's header is ignored")
        #expect(resolve("127.0.0.1", []) == "127.0.0.1")
        #expect(resolve("127.0.0.1", ["198.51.100.1"]) == "198.51.100.1")
        #expect(resolve("127.0.0.1", ["1.1.1.1, 198.51.100.1, 10.0.0.5"]) == "198.51.100.1")
        #expect(resolve("127.0.0.1", ["1.1.1.1", "198.51.100.1, 10.0.0.5"]) == "198.51.100.1", "several header lines")
        #expect(resolve("127.0.0.1", ["10.0.0.6, 10.0.0.5"]) == "10.0.0.6", "only proxies: the farthest")
        #expect(resolve("127.0.0.1", ["198.51.100.1, garbage"]) == "127.0.0.1", "garbage stops the walk")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["198.51.100.1"], trusted: []) == "127.0.0.1")
        // Some load balancers add ports or brackets.
        #expect(resolve("127.0.0.1", ["198.51.100.1:5678"]) == "198.51.100.1")
        #expect(resolve("127.0.0.1", ["[2001:db8::1]:443"]) == "2001:db8::1")
        #expect(resolve("127.0.0.1", ["[2001:db8::2]"]) == "2001:db8::2")
        #expect(resolve("127.0.0.1", ["2001:db8::3"]) == "2001:db8::3")
    }
}
