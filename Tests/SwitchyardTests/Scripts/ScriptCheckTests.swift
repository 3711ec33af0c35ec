import Foundation
import SwitchyardScript
import Testing

@testable import Switchyard

/// `check` at save time: syntax errors with the saved source's line and column, export forms the
/// runtime does not take, entries not exported; hostile code neither hangs nor crashes.
@Suite struct ScriptCheckTests {
    let pool = ScriptPool(settings: ScriptPoolSettings(executable: ScriptTesting.workerExecutable), logger: ScriptTesting.logger)

    @Test func validCodeHasNoProblem() async {
        #expect(await pool.check("export async function run(input, ctx) { return input }", entries: ["run"]) == nil)
        #expect(await pool.check("export default async function (webhook) { return webhook }", entries: ["default"]) == nil)
        #expect(pool.liveWorkers == 0)
    }

    @Test func syntaxErrorsHaveLineAndColumn() async {
        let cases: [(String, Int, Int)] = [
            ("export async function run() {\n  const a = ;\n}", 2, 13),
            ("let a = ;", 1, 9),
            ("export async function run() {\n  return 08;\n}", 2, 10),
            ("export function run() {\n  let x = 1\n  let x = 2\n}", 3, 7),
            ("export async function run() {\n  const x = {a: 1,, b: 2};\n}", 2, 19),
        ]
        for (source, line, column) in cases {
            let problem = await pool.check(source, entries: ["run"])
            #expect(problem?.line == line, "\(source): \(String(describing: problem))")
            #expect(problem?.column == column, "\(source): \(String(describing: problem))")
            #expect(problem?.description.contains("line \(line), column \(column)") == true)
        }
    }

    @Test func anUnclosedFunctionPointsAtTheEnd() async {
        let problem = await pool.check("export async function run() {\n  return 1;\n", entries: ["run"])
        #expect(problem?.line != nil)
        #expect(problem?.message.isEmpty == false)
    }

    @Test func entriesMustBeExported() async {
        let problem = await pool.check("export function other() {}\nfunction run() {}", entries: ["run"])
        #expect(problem?.message.contains("does not export run") == true)
        #expect(problem?.line == nil)
        let none = await pool.check("export function run() {}", entries: ["default"])
        #expect(none?.message.contains("no default export") == true)
    }

    @Test func unsupportedFormsAreNamed() async {
        let cases: [(String, String, Int)] = [
            ("import { a } from './a.js'\nexport function run() {}", "import is not available", 1),
            ("export function run() {}\nexport * from 'x'", "export * from", 2),
            ("export const { a, b } = {}", "destructuring", 1),
            ("function run() {}\nexport { run } from 'x'", "export … from", 2),
            ("export function run() {}\nexport function run() {}", "exported twice", 2),
        ]
        for (source, message, line) in cases {
            let problem = await pool.check(source, entries: ["run"])
            #expect(problem?.message.contains(message) == true, "\(source): \(String(describing: problem))")
            #expect(problem?.line == line, "\(source)")
        }
    }

    @Test func hostileCodeNeitherHangsNorCrashes() async {
        let deep = await pool.check("export function run() { return " + String(repeating: "[", count: 200_000) + " }", entries: ["run"])
        #expect(deep != nil)
        let parens = await pool.check(String(repeating: "(", count: 300_000), entries: ["run"])
        #expect(parens != nil)
        let huge = await pool.check("export function run() {}\n//" + String(repeating: "x", count: 2 << 20), entries: ["run"])
        #expect(huge?.message.contains("longer than") == true)
        let template = await pool.check("export function run() { return `${`${`${'", entries: ["run"])
        #expect(template != nil)
    }
}

/// The module-to-script rewrite: same length, same lines, the exports found.
@Suite struct ModuleSourceTests {
    @Test func theScriptKeepsEveryPosition() throws {
        let source = """
            export async function run(input, ctx) {}
            export default {
              a: 1,
            }
            export { run as main, helper }
            const helper = 1, /* export */ other = '}'
            export const x = `${ { y: 'export' }.y }`, z = 2
            """
        let module = try ModuleSource(source)
        #expect(module.script.utf8.count == source.utf8.count)
        #expect(
            module.script.split(separator: "\n", omittingEmptySubsequences: false).count
                == source.split(separator: "\n", omittingEmptySubsequences: false).count
        )
        #expect(module.exports == ["run": "run", "default": "_$dflt", "main": "run", "helper": "helper", "x": "x", "z": "z"])
        #expect(module.script.hasPrefix("       async function run"))
        #expect(module.script.contains("var    _$dflt= {"))
        #expect(!module.script.contains("export {"))
    }

    @Test func exportInsideStringsCommentsAndBlocksIsLeftAlone() throws {
        let source =
            "const s = 'export function a() {}'\n// export function b() {}\nfunction f() { if (1) { return /export/ } }\nexport function run() {}"
        let module = try ModuleSource(source)
        #expect(module.exports == ["run": "run"])
        #expect(module.script.contains("'export function a() {}'"))
    }
}
