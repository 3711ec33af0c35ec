import Foundation
import Hummingbird
import NIOCore

/// What `GET /` answers until the console lands. The first start prints this address, so a
/// newcomer who opens it in a browser learns what runs here and how to reach the API, rather
/// than meeting a JSON 404.
public enum FrontPage {
    /// The API call the first start and the page suggest, with `token` in place.
    public static func curlExample(publicURL: String, token: String) -> String {
        var base = Substring(publicURL)
        while base.hasSuffix("/") { base = base.dropLast() }
        return "curl -H \"Authorization: Bearer \(token)\" \(base)/v1/ping"
    }

    /// A page for browsers; JSON for a client that asks for JSON and not HTML (the API's tools).
    static func response(to request: Request, publicURL: String) -> Response {
        let accept = request.headers[values: .accept].joined(separator: ",")
        let wantsJSON = accept.contains("application/json") && !accept.contains("text/html")
        var headers: HTTPFields = [.contentType: wantsJSON ? "application/json" : "text/html; charset=utf-8"]
        headers[.vary] = "Accept"
        let body = wantsJSON ? json() : html(publicURL: publicURL)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json() -> String {
        JSONValue.object([
            "name": .string("switchyard"),
            "version": .string(SwitchyardVersion.current),
            "openapi": .string("/openapi.yaml"),
            "health": .string("/healthz"),
            "readiness": .string("/readyz"),
            "metrics": .string("/metrics"),
        ]).serialized()
    }

    /// Self-contained (no script, font or stylesheet fetched), and every text from outside the
    /// code escaped: the public URL is the operator's setting. Links are relative, so they still
    /// work behind a proxy that serves Switchyard under a path.
    static func html(publicURL: String) -> String {
        let version = escape(SwitchyardVersion.current)
        let curl = escape(curlExample(publicURL: publicURL, token: "sy_live_…"))
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Switchyard \(version)</title>
            <style>
            body { font: 16px/1.5 system-ui, sans-serif; max-width: 42em; margin: 3em auto; padding: 0 1em; color: #222; }
            code, pre { background: #f2f2f2; border-radius: 3px; }
            pre { padding: 0.6em; overflow-x: auto; }
            </style>
            </head>
            <body>
            <h1>Switchyard is running</h1>
            <p>Switchyard \(version), the self-hosted integration hub.</p>
            <p>The web console is not built yet. Today Switchyard is used through its JSON API under
            <code>/v1</code>, with the API token printed on the first start:</p>
            <pre>\(curl)</pre>
            <ul>
            <li><a href="openapi.yaml">openapi.yaml</a>: every route of the API (OpenAPI 3.1)</li>
            <li><a href="healthz">healthz</a> and <a href="readyz">readyz</a>: the liveness and readiness probes</li>
            <li><a href="metrics">metrics</a>: Prometheus metrics</li>
            </ul>
            <p>The guides are in the <code>docs/</code> folder of the source: start with
            <code>quickstart.md</code>, then <code>configuration.md</code> and <code>operations.md</code>.</p>
            </body>
            </html>

            """
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
