import Foundation
import Testing

@testable import Switchyard

/// docs/errors.md lists every problem type the server can answer, with its status: a type added
/// to ProblemType without its row fails here, and so does a row for a type the code has not.
@Suite("Problem types")
struct ErrorTypesTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// "slug status" for every row of the table under `## Types` (first cell a backticked slug,
    /// second the status code), the header row left out.
    static func documentedTypes() throws -> [String] {
        var rows: [String] = []
        var inTypes = false
        for line in try read("docs/errors.md").split(separator: "\n") {
            if line.hasPrefix("#") {
                inTypes = line == "## Types"
                continue
            }
            guard inTypes, line.hasPrefix("| `") else { continue }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, cells[1] != "status" else { continue }  // the header row
            rows.append("\(cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))) \(cells[1])")
        }
        return rows
    }

    static var codeTypes: [String] { ProblemType.all.map { "\($0.slug) \($0.status.code)" } }

    @Test("every type the code answers is in docs/errors.md, and every documented type exists")
    func everyTypeIsDocumented() throws {
        let documented = try Self.documentedTypes()
        #expect(documented.count > 10)
        #expect(Set(documented).count == documented.count, "a type listed twice in docs/errors.md: \(documented)")
        #expect(Set(Self.codeTypes).subtracting(documented).sorted() == [], "types missing from docs/errors.md")
        #expect(Set(documented).subtracting(Self.codeTypes).sorted() == [], "documented types the code does not answer")
    }

    /// `all` is written by hand: a constant left out of it would be answered yet never checked.
    @Test("ProblemType.all holds every constant once")
    func allIsComplete() throws {
        let source = try Self.read("Sources/Switchyard/App/ProblemType.swift")
        let constants = source.components(separatedBy: "static let ").dropFirst().filter { $0.contains("= ProblemType(") }
        #expect(constants.count == ProblemType.all.count, "a ProblemType constant is missing from ProblemType.all")
        #expect(Set(ProblemType.all).count == ProblemType.all.count, "ProblemType.all lists a constant twice")
        #expect(Set(ProblemType.all.map(\.slug)).count == ProblemType.all.count, "two constants share a slug")
    }

    /// Other pages name problems as `urn:switchyard:problem:<slug>` or `` `<status> <slug>` ``; each
    /// must be a type the code answers, with its status.
    @Test("the other docs name only problem types that exist, with their status")
    func docsNameRealTypes() throws {
        let slugs = Set(ProblemType.all.map(\.slug))
        let pairs = Set(Self.codeTypes)
        let docs = Self.root.appendingPathComponent("docs")
        let pages = try FileManager.default.contentsOfDirectory(atPath: docs.path)
            .filter { $0.hasSuffix(".md") || $0.hasSuffix(".yaml") }.sorted()
        #expect(pages.contains("openapi.yaml"))
        var unknown: [String] = []
        let urn = try Regex(#"urn:switchyard:problem:([a-z0-9-]+)"#)
        let quoted = try Regex(#"`([0-9]{3}) ([a-z][a-z0-9-]*)`"#)
        for page in pages {
            let text = try Self.read("docs/\(page)")
            for match in text.matches(of: urn) {
                let slug = match.output[1].substring.map(String.init) ?? ""
                if !slugs.contains(slug) { unknown.append("\(page): \(slug)") }
            }
            for match in text.matches(of: quoted) {
                let status = match.output[1].substring.map(String.init) ?? ""
                let slug = match.output[2].substring.map(String.init) ?? ""
                if !pairs.contains("\(slug) \(status)") { unknown.append("\(page): \(status) \(slug)") }
            }
        }
        #expect(unknown == [], "problem types in docs/ that the code does not answer (or with another status)")
    }
}
