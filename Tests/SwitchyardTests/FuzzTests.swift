import Foundation
import SwitchyardFuzzChecks
import Testing

@testable import Switchyard

/// The bounded pass of the fuzz targets (`make fuzz` runs them under libFuzzer for as long as it
/// is told): every seed input, then a fixed number of seeded mutations of them, through the same
/// properties. Counted, not timed, so a run is the same inputs every time.
@Suite("Fuzz targets, bounded pass")
struct FuzzTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    static func seeds(_ target: String) throws -> [[UInt8]] {
        let folder = fuzzFolder.appendingPathComponent("corpus/\(target)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { Array(try Data(contentsOf: folder.appendingPathComponent($0))) }
    }

    /// The quoted tokens of a libFuzzer dictionary, with its `\\`, `\"` and `\xNN` escapes.
    static func tokens(_ target: String) throws -> [[UInt8]] {
        let text = try String(contentsOf: fuzzFolder.appendingPathComponent("\(target).dict"), encoding: .utf8)
        return text.split(separator: "\n").filter { $0.hasPrefix("\"") }.map { line in
            var bytes: [UInt8] = []
            var rest = Array(line.utf8.dropFirst().dropLast())[...]
            while let byte = rest.popFirst() {
                guard byte == UInt8(ascii: "\\"), let escaped = rest.popFirst() else {
                    bytes.append(byte)
                    continue
                }
                if escaped == UInt8(ascii: "x"), let hex = UInt8(String(decoding: rest.prefix(2), as: UTF8.self), radix: 16) {
                    bytes.append(hex)
                    rest = rest.dropFirst(2)
                } else {
                    bytes.append(escaped)
                }
            }
            return bytes
        }
    }

    static func expectNoProblems(_ target: String, _ check: ([UInt8]) -> [String], mutations: Int) throws {
        let seeds = try seeds(target)
        let tokens = try tokens(target)
        #expect(!seeds.isEmpty && !tokens.isEmpty)
        var mutator = Mutator(seed: 0xF0_22ED, tokens: tokens)
        let inputs = seeds + (0..<mutations).map { _ in mutator.mutate(mutator.pick(seeds), splicing: mutator.pick(seeds)) }
        for input in inputs {
            for problem in check(input) {
                Issue.record("\(String(decoding: input, as: UTF8.self).debugDescription): \(problem)")
            }
        }
    }

    @Test("JSON: seeds and 4000 mutations of them")
    func json() throws {
        try Self.expectNoProblems("json", JSONFuzzCheck.problems, mutations: 4000)
    }

    @Test("record queries: seeds and 4000 mutations of them")
    func query() throws {
        try Self.expectNoProblems("query", QueryFuzzCheck.problems, mutations: 4000)
    }

    // Found by the properties: Double(String) took these, so the filter bound NaN or infinity.
    @Test("regression: number filters refuse nan, inf and numbers past Double's range")
    func nonFiniteNumberFilters() throws {
        for text in ["nan", "NaN", "inf", "-infinity", "1e999", "-1e400"] {
            #expect(throws: APIError.self, "\(text)") {
                try RecordQueryParser.parse(type: QueryFuzzCheck.type, filters: [("number", text), ("integer", "1")], sort: nil, after: nil)
            }
            #expect(QueryFuzzCheck.problems(Array("integer=\(text)".utf8)).isEmpty)
        }
        let query = try RecordQueryParser.parse(type: QueryFuzzCheck.type, filters: [("number", "1e308")], sort: nil, after: nil)
        #expect(query.filters.first?.values == [.double(1e308)])
    }
}

/// A few of libFuzzer's mutations (flip, erase, insert a token, repeat, splice) from a seeded
/// SplitMix64.
private struct Mutator {
    var state: UInt64
    let tokens: [[UInt8]]
    init(seed: UInt64, tokens: [[UInt8]]) {
        state = seed
        self.tokens = tokens
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func mutate(_ input: [UInt8], splicing other: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) {
            let at = below(bytes.count + 1)
            switch below(6) {
            case 0 where at < bytes.count: bytes[at] ^= UInt8(1 << below(8))
            case 1 where at < bytes.count: bytes.removeSubrange(at..<min(bytes.count, at + 1 + below(8)))
            case 2 where at < bytes.count:
                let chunk = Array(bytes[at..<min(bytes.count, at + 1 + below(16))])
                bytes.insert(contentsOf: chunk, at: at)
            case 3: bytes = Array(bytes[..<at]) + other.suffix(from: below(other.count + 1))
            default: bytes.insert(contentsOf: pick(tokens), at: at)
            }
        }
        return bytes
    }
}
