import Testing

@testable import Switchyard

@Suite("Outbound targets: the SSRF guard and URL validation")
struct OutboundHTTPGuardTests {
    static let refused = TargetGuard()
    static let loopbackAllowed = TargetGuard(allowedNetworks: networks("127.0.0.0/8", "::1/128"))

    static func networks(_ texts: String...) -> [IPNetwork] { texts.compactMap { try? IPNetwork(parsing: $0) } }

    @Test(
        "every blocked class is refused when no network is allowed",
        arguments: [
            ("127.0.0.1", BlockReason.loopback), ("127.255.255.254", .loopback), ("::1", .loopback),
            ("10.1.2.3", .privateNetwork), ("172.16.0.1", .privateNetwork), ("172.31.255.255", .privateNetwork),
            ("192.168.1.1", .privateNetwork), ("100.64.0.1", .privateNetwork), ("100.127.255.255", .privateNetwork),
            ("fc00::1", .privateNetwork), ("fd12:3456::1", .privateNetwork),
            ("169.254.1.1", .linkLocal), ("fe80::1", .linkLocal),
            ("224.0.0.1", .multicast), ("239.255.255.250", .multicast), ("ff02::1", .multicast),
            ("0.0.0.0", .unspecified), ("0.1.2.3", .unspecified), ("::", .unspecified),
            ("255.255.255.255", .broadcast), ("240.0.0.1", .reserved), ("198.18.0.1", .reserved),
            ("169.254.169.254", .metadata), ("169.254.170.2", .metadata), ("fd00:ec2::254", .metadata),
            ("100.100.100.200", .metadata),
            // IPv4 inside IPv6: mapped, NAT64, 6to4, IPv4-compatible.
            ("::ffff:127.0.0.1", .loopback), ("::ffff:10.0.0.1", .privateNetwork), ("::ffff:169.254.169.254", .metadata),
            ("64:ff9b::7f00:1", .loopback), ("64:ff9b::a9fe:a9fe", .metadata), ("2002:7f00:1::", .loopback),
            ("2002:c0a8:101::1", .privateNetwork), ("::127.0.0.1", .loopback),
            ("not an address", .notAnAddress), ("", .notAnAddress),
        ]
    )
    func blocked(address: String, reason: BlockReason) {
        #expect(Self.refused.check(address: address) == reason)
    }

    @Test(
        "public addresses pass",
        arguments: ["8.8.8.8", "1.1.1.1", "203.0.113.5", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"]
    )
    func allowed(address: String) {
        #expect(Self.refused.check(address: address) == nil)
    }

    @Test("allowed networks let their addresses through, and nothing else")
    func allowedNetworks() {
        let guarded = Self.loopbackAllowed
        #expect(guarded.check(address: "127.0.0.1") == nil)
        #expect(guarded.check(address: "127.9.9.9") == nil)
        #expect(guarded.check(address: "::1") == nil)
        #expect(guarded.check(address: "::ffff:127.0.0.1") == nil)
        #expect(guarded.check(address: "10.0.0.1") == .privateNetwork)
        #expect(guarded.check(address: "192.168.0.1") == .privateNetwork)
        #expect(guarded.check(address: "fe80::1") == .linkLocal)
        let office = TargetGuard(allowedNetworks: Self.networks("10.20.0.0/16"))
        #expect(office.check(address: "10.20.3.4") == nil)
        #expect(office.check(address: "10.21.3.4") == .privateNetwork)
    }

    @Test("metadata addresses stay refused inside allowed networks")
    func metadataAlways() {
        let linkLocal = TargetGuard(allowedNetworks: Self.networks("169.254.0.0/16"))
        #expect(linkLocal.check(address: "169.254.1.1") == nil)
        #expect(linkLocal.check(address: "169.254.169.254") == .metadata)
        #expect(linkLocal.check(address: "169.254.170.2") == .metadata)
        #expect(linkLocal.check(address: "::ffff:169.254.169.254") == .metadata)
        let everything = TargetGuard(allowedNetworks: Self.networks("0.0.0.0/0", "::/0"))
        #expect(everything.check(address: "10.0.0.1") == nil)
        #expect(everything.check(address: "100.100.100.200") == .metadata)
        #expect(everything.check(address: "fd00:ec2::254") == .metadata)
        #expect(everything.check(address: "64:ff9b::a9fe:a9fe") == .metadata)
    }

    @Test("URLs: http(s) with a host, no user info, a valid port")
    func urlForm() {
        let guarded = Self.refused
        #expect(guarded.validate(url: "https://example.com/hook") == nil)
        #expect(guarded.validate(url: "HTTP://Example.COM:8080/a?b=c") == nil)
        #expect(guarded.validate(url: "https://203.0.113.5/") == nil)
        #expect(guarded.validate(url: "ftp://example.com/file") == .unsupportedScheme("ftp"))
        #expect(guarded.validate(url: "file:///etc/passwd") == .unsupportedScheme("file"))
        #expect(guarded.validate(url: "gopher://example.com") == .unsupportedScheme("gopher"))
        #expect(guarded.validate(url: "https://user:secret@example.com/") == .userInfo)
        #expect(guarded.validate(url: "https://user@example.com/") == .userInfo)
        #expect(guarded.validate(url: "https://example.com:0/") == .invalidPort)
        // Foundation decodes the host; async-http-client connects to that same decoded name.
        #expect(guarded.validate(url: "https://exa%6Dple.com/") == nil)
        #expect(guarded.validate(url: "https://exa%20mple.com/") == .invalidHost("exa mple.com"))
        #expect(guarded.validate(url: "https://exa%2Fmple.com/")?.isBlocked == false)
        for text in ["", "not a url", "example.com/hook", "http://", "http:///path", "https://:443/", "https://example.com:99999/"] {
            let problem = guarded.validate(url: text)
            #expect(problem != nil && problem?.isBlocked == false, "\(text)")
        }
    }

    @Test("a literal address in a URL is checked at once, in every spelling getaddrinfo accepts")
    func literalHosts() {
        let guarded = Self.refused
        let loopback = guarded.validate(url: "http://127.0.0.1:8080/hook")
        #expect(loopback == .blocked(host: "127.0.0.1", address: "127.0.0.1", reason: .loopback))
        #expect(loopback?.description == "127.0.0.1 is not an allowed target (a loopback address)")
        #expect(guarded.validate(url: "http://[::1]/")?.isBlocked == true)
        #expect(guarded.validate(url: "http://[::ffff:127.0.0.1]/")?.isBlocked == true)
        #expect(guarded.validate(url: "http://[fd00:ec2::254]/latest")?.isBlocked == true)
        #expect(guarded.validate(url: "http://2130706433/")?.isBlocked == true)
        #expect(guarded.validate(url: "http://0x7f.1/")?.isBlocked == true)
        #expect(guarded.validate(url: "http://127.1/")?.isBlocked == true)
        #expect(Self.loopbackAllowed.validate(url: "http://127.0.0.1:8080/hook") == nil)
        #expect(Self.loopbackAllowed.validate(url: "http://[::1]:8080/hook") == nil)
        let linkLocal = TargetGuard(allowedNetworks: Self.networks("169.254.0.0/16"))
        #expect(linkLocal.validate(url: "http://169.254.169.254/latest/meta-data/")?.isBlocked == true)
    }

    @Test("at creation a name is resolved and every address checked; a name that does not resolve is accepted")
    func resolving() async {
        let problem = await Self.refused.validateResolving(url: "http://localhost:8080/hook")
        #expect(problem?.isBlocked == true)
        #expect(problem?.description.hasPrefix("localhost resolves to ") == true)
        #expect(problem?.description.contains("which is not an allowed target (a loopback address)") == true)
        #expect(await Self.loopbackAllowed.validateResolving(url: "http://localhost:8080/hook") == nil)
        #expect(await Self.refused.validateResolving(url: "https://no-such-host.invalid/hook") == nil)
        #expect(await Self.refused.validateResolving(url: "ftp://localhost/") == .unsupportedScheme("ftp"))
        #expect(await Self.refused.validateResolving(url: "http://127.0.0.1/")?.isBlocked == true)
    }
}
