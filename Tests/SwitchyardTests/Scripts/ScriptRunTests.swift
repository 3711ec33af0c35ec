import Foundation
import Testing

@testable import Switchyard

/// Runs through real `switchyard script-worker` processes: what scripts can do and what they get.
@Suite struct ScriptRunTests {
    @Test func modernJavaScript() async throws {
        let source = """
            class Counter {
              #count = 0;
              increment() { return ++this.#count; }
            }
            const pick = ({ a, b = 2, ...rest }) => ({ a, b, rest });

            export async function run(input, ctx) {
              const counter = new Counter();
              counter.increment();
              const [x, , y] = [1, 2, 3];
              const big = 2n ** 64n;
              return {
                count: counter.increment(),
                pick: pick({ a: 1, c: 3 }),
                text: `sum=${x + y}`,
                missing: input?.absent?.deep ?? 'default',
                big: big.toString(),
                spread: [...'ab'],
                entries: Object.fromEntries([['k', input.n]]),
                config: ctx.config.baseUrl,
              };
            }
            """
        let outcome = try await ScriptTesting.withPool { pool in
            await pool.run(
                ScriptTesting.request(
                    source,
                    input: .object(["n": .int(7)]),
                    context: .object(["config": .object(["baseUrl": .string("https://api.example")])])
                ),
                host: EchoHost()
            )
        }
        #expect(outcome.status == .succeeded, "\(outcome.described)")
        let expected = """
            {"big":"18446744073709551616","config":"https://api.example","count":2,"entries":{"k":7},"missing":"default",\
            "pick":{"a":1,"b":2,"rest":{"c":3}},"spread":["a","b"],"text":"sum=4"}
            """
        #expect(outcome.result?.jsonText == expected)
    }

    @Test func exportForms() async throws {
        let cases: [(source: String, entry: String, result: JSONValue)] = [
            ("export function run() { return 1 }", "run", .int(1)),
            ("export const run = async () => 2", "run", .int(2)),
            ("async function helper() { return 3 }\nexport { helper as run }", "run", .int(3)),
            ("export default async function (input) { return 4 }", "default", .int(4)),
            ("export let a = 1, run = () => a + 4\nexport const other = 0", "run", .int(5)),
            ("export default async function run() { return 6 }", "default", .int(6)),
            ("export class Thing {}\nexport async function run() { return new Thing().constructor.name }", "run", .string("Thing")),
            (
                "const re = /export function x/g; // export function y\nexport function* gen() { yield 8 }\nexport function run() { return [...gen()][0] }",
                "run", .int(8)
            ),
            ("export var run = function () { return `export ${'default'}`.length }", "run", .int(14)),
            ("export function run() { return 'a\u{0}b\u{E9}'.length }", "run", .int(4)),
        ]
        try await ScriptTesting.withPool { pool in
            for item in cases {
                let outcome = await pool.run(ScriptTesting.request(item.source, entry: item.entry), host: EchoHost())
                #expect(outcome.status == .succeeded, "\(item.source): \(outcome.described)")
                #expect(outcome.result == item.result, "\(item.source)")
            }
        }
    }

    @Test func consoleIsCapturedWithLevelAndTime() async throws {
        let before = Date()
        let source = """
            export async function run() {
              console.log('plain', 1, { a: [1, 2] }, null, undefined);
              console.info('info');
              console.warn('warn');
              console.error(new TypeError('bad'));
              console.debug('debug is log');
            }
            """
        let outcome = try await ScriptTesting.withPool { pool in await pool.run(ScriptTesting.request(source), host: EchoHost()) }
        #expect(outcome.status == .succeeded, "\(outcome.described)")
        #expect(outcome.result == nil)
        #expect(outcome.logs.map(\.level) == ["log", "info", "warn", "error", "log"])
        #expect(outcome.logs.map(\.message) == [#"plain 1 {"a":[1,2]} null undefined"#, "info", "warn", "TypeError: bad", "debug is log"])
        for line in outcome.logs {
            #expect(line.at >= before.addingTimeInterval(-1) && line.at <= Date().addingTimeInterval(1))
        }
    }

    @Test func hostCallsResolveAndReject() async throws {
        let source = """
            export async function run(input, ctx) {
              const answer = await ctx.http.request({ method: 'POST', url: 'https://api.example/items', body: { a: 1 } });
              let refused = null;
              try {
                await ctx.http.request({ url: 'https://fail.example/x' });
              } catch (error) {
                refused = error.message;
              }
              return { status: answer.status, type: answer.headers['content-type'], echoed: answer.json().body, refused };
            }
            """
        let host = EchoHost()
        let outcome = try await ScriptTesting.withPool { pool in await pool.run(ScriptTesting.request(source), host: host) }
        #expect(outcome.status == .succeeded, "\(outcome.described)")
        #expect(
            outcome.result?.jsonText == #"{"echoed":{"a":1},"refused":"connection refused by fail.example","status":201,"type":"application/json"}"#
        )
        #expect(host.calls.count == 2)
        #expect(host.calls.first?.objectValue?["method"] == .string("POST"))
    }

    @Test func anUncaughtRejectionNamesTheLineOfTheCall() async throws {
        let source = """
            export async function run(input, ctx) {
              const first = 1;
              await ctx.http.request({ url: 'https://fail.example/x' });
            }
            """
        let outcome = try await ScriptTesting.withPool { pool in await pool.run(ScriptTesting.request(source), host: EchoHost()) }
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.name == "Error")
        #expect(outcome.failure?.message == "connection refused by fail.example")
        #expect(outcome.failure?.line == 3, "\(outcome.described)")
    }

    @Test func aThrownErrorHasItsNameMessageAndLine() async throws {
        let source = """
            export async function run(input) {
              await null;
              if (!input.id) throw new TypeError('id is required');
            }
            """
        let outcome = try await ScriptTesting.withPool { pool in await pool.run(ScriptTesting.request(source), host: EchoHost()) }
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.name == "TypeError")
        #expect(outcome.failure?.message == "id is required")
        #expect(outcome.failure?.line == 3, "\(outcome.described)")
        #expect(outcome.failure?.column != nil)
        #expect(outcome.failure?.stack?.contains("script.js:3:") == true, "\(outcome.failure?.stack ?? "")")
        #expect(outcome.failure?.stack?.contains("prelude") == false)
    }

    @Test func aMissingEntryFails() async throws {
        let outcome = try await ScriptTesting.withPool { pool in
            await pool.run(ScriptTesting.request("export function other() {}"), host: EchoHost())
        }
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.name == "EntryError")
        #expect(outcome.failure?.message.contains("does not export run") == true)
    }

    @Test func aSyntaxErrorAtRunTimeHasLineAndColumn() async throws {
        let outcome = try await ScriptTesting.withPool { pool in
            await pool.run(ScriptTesting.request("export async function run() {\n  const a = ;\n}"), host: EchoHost())
        }
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.name == "SyntaxError")
        #expect(outcome.failure?.line == 2)
        #expect(outcome.failure?.column == 13, "\(outcome.described)")
    }

    @Test func resultsMustBeJSON() async throws {
        let cases: [(String, String)] = [
            ("return new Map([[1, 2]])", "a Map"),
            ("return { n: NaN }", "NaN"),
            ("const a = {}; a.self = a; return a", "cyclic"),
            ("return { big: 1n }", "BigInt"),
            ("return () => 1", "a function"),
            ("return { pending: ctx.sleep(1) }", "Promise"),
        ]
        try await ScriptTesting.withPool { pool in
            for (body, expected) in cases {
                let source = "export async function run(input, ctx) { \(body) }"
                let outcome = await pool.run(ScriptTesting.request(source), host: EchoHost())
                #expect(outcome.status == .failed, "\(body): \(outcome.described)")
                #expect(outcome.failure?.name == "ShapeError", "\(body)")
                #expect(outcome.failure?.message.contains(expected) == true, "\(body): \(outcome.failure?.message ?? "")")
            }
            let fine = await pool.run(
                ScriptTesting.request("export function run() { return { when: new Date(0), list: [1, 'two', null, true], skipped: undefined } }"),
                host: EchoHost()
            )
            #expect(fine.result?.jsonText == #"{"list":[1,"two",null,true],"when":"1970-01-01T00:00:00.000Z"}"#, "\(fine.described)")
        }
    }

    @Test func sleepWaitsAndIsBounded() async throws {
        let source = """
            export async function run(input, ctx) {
              const started = Date.now();
              await ctx.sleep(60);
              const waited = Date.now() - started;
              const refused = [];
              for (const ms of [20000, -1, 'x']) {
                try { await ctx.sleep(ms); } catch (error) { refused.push(error.name); }
              }
              return { waited: waited >= 55, refused };
            }
            """
        let outcome = try await ScriptTesting.withPool { pool in await pool.run(ScriptTesting.request(source), host: EchoHost()) }
        #expect(outcome.result?.jsonText == #"{"refused":["RangeError","RangeError","RangeError"],"waited":true}"#, "\(outcome.described)")
    }

    @Test func hostCallsAreCapped() async throws {
        let source = """
            export async function run(input, ctx) {
              const results = [];
              for (let i = 0; i < 5; i++) {
                try { await ctx.http.request({ url: 'https://api.example/' + i }); results.push('ok'); }
                catch (error) { results.push(error.message); }
              }
              return results;
            }
            """
        let host = EchoHost()
        let outcome = try await ScriptTesting.withPool { pool in
            await pool.run(ScriptTesting.request(source, maximumHostCalls: 3), host: host)
        }
        let capped = "too many host calls: a run may make 3"
        #expect(outcome.result == .array([.string("ok"), .string("ok"), .string("ok"), .string(capped), .string(capped)]), "\(outcome.described)")
        #expect(host.calls.count == 3)
    }

    @Test func everyRunGetsAFreshContext() async throws {
        let source = """
            export function run(input) {
              const seen = typeof globalThis.leak;
              globalThis.leak = input.n;
              Array.prototype.polluted = true;
              return { seen, polluted: [].polluted === true };
            }
            """
        try await ScriptTesting.withPool(workers: 1) { pool in
            for n in 0..<3 {
                let outcome = await pool.run(ScriptTesting.request(source, input: .object(["n": .int(Int64(n))])), host: EchoHost())
                #expect(outcome.result?.jsonText == #"{"polluted":true,"seen":"undefined"}"#, "\(outcome.described)")
            }
        }
    }

    @Test func aPromiseThatCanNeverSettleFailsAtOnce() async throws {
        let outcome = try await ScriptTesting.withPool { pool in
            await pool.run(ScriptTesting.request("export async function run() { await new Promise(() => {}) }", timeLimit: 10), host: EchoHost())
        }
        // Not TimeLimit: it fails as soon as nothing can settle it.
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.name == "NeverSettled")
    }

    @Test func runsBeyondThePoolSizeQueueAndAllFinish() async throws {
        let source = "export async function run(input, ctx) { await ctx.sleep(20); return input.n * 2 }"
        let results = try await ScriptTesting.withPool(workers: 2) { pool in
            await withTaskGroup(of: (Int, ScriptOutcome).self) { group in
                for n in 0..<24 {
                    group.addTask { (n, await pool.run(ScriptTesting.request(source, input: .object(["n": .int(Int64(n))])), host: EchoHost())) }
                }
                var all: [(Int, ScriptOutcome)] = []
                for await item in group { all.append(item) }
                #expect(pool.liveWorkers == 2)
                return all
            }
        }
        #expect(results.count == 24)
        for (n, outcome) in results {
            #expect(outcome.status == .succeeded, "\(outcome.described)")
            #expect(outcome.result == .int(Int64(n * 2)))
        }
    }

    /// Nothing but the language, `console` and `ctx`: no file, network, process or timer
    /// function. A new global from a newer JavaScriptCore fails this test until someone has
    /// looked at what it can do.
    @Test func theGlobalScopeHoldsOnlyTheLanguage() async throws {
        let source = """
            export async function run() {
              let imported;
              try { await import('/etc/passwd'); imported = 'loaded'; } catch (error) { imported = error.message; }
              return { globals: Object.getOwnPropertyNames(globalThis).sort(), imported };
            }
            """
        let outcome = try await ScriptTesting.withPool { pool in await pool.run(ScriptTesting.request(source), host: EchoHost()) }
        let language: Set<String> = [
            "AggregateError", "Array", "ArrayBuffer", "Atomics", "BigInt", "BigInt64Array", "BigUint64Array", "Boolean", "DataView", "Date",
            "Error", "EvalError", "FinalizationRegistry", "Float16Array", "Float32Array", "Float64Array", "Function", "Infinity", "Int16Array",
            "Int32Array", "Int8Array", "Intl", "Iterator", "JSON", "Map", "Math", "NaN", "Number", "Object", "Promise", "Proxy", "RangeError",
            "ReferenceError", "Reflect", "RegExp", "Set", "String", "Symbol", "SyntaxError", "TypeError", "URIError", "Uint16Array",
            "Uint32Array", "Uint8Array", "Uint8ClampedArray", "WeakMap", "WeakRef", "WeakSet", "WebAssembly", "console", "decodeURI",
            "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape", "eval", "globalThis", "isFinite", "isNaN", "parseFloat",
            "parseInt", "undefined", "unescape", "run",
        ]
        var globals: Set<String> = []
        if case .array(let names) = outcome.result?.objectValue?["globals"] ?? .null { globals = Set(names.compactMap(\.stringValue)) }
        #expect(!globals.isEmpty, "\(outcome.described)")
        #expect(globals.subtracting(language).isEmpty, "globals nobody has reviewed: \(globals.subtracting(language).sorted())")
        #expect(outcome.result?.objectValue?["imported"]?.stringValue?.contains("Could not import") == true, "\(outcome.described)")
    }

    @Test func appServicesRunScriptsThroughThePool() async throws {
        try await TestApp.run(configure: { $0.scriptWorkers = 1 }) { app in
            let outcome = await app.services.scripts.run(
                ScriptTesting.request("export const run = (input) => input.n + 1", input: .object(["n": .int(1)])),
                host: EchoHost()
            )
            #expect(outcome.result == .int(2), "\(outcome.described)")
            #expect((app.services.scripts as? ScriptPool)?.settings.workers == 1)
            await app.services.scripts.shutdown()
        }
    }

    @Test func aPoolThatNeverRunsStartsNothing() async throws {
        try await ScriptTesting.withPool { pool in
            #expect(await pool.check("export function run() {}", entries: ["run"]) == nil)
            #expect(pool.liveWorkers == 0)
        }
    }
}
