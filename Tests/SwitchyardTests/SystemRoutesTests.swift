import Foundation
import HTTPTypes
import Testing

@testable import Switchyard

/// The anonymous routes outside `/v1` that a newcomer meets first: the front page and the
/// document the binary serves.
@Suite("Front page and OpenAPI document")
struct SystemRoutesTests {
    @Test("GET / is a self-contained page with the version and links, and needs no credentials")
    func frontPage() async throws {
        try await TestApp.run { app in
            let page = try await app.request(.get, "/", headers: [.accept: "text/html,application/xhtml+xml,*/*;q=0.8"])
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.vary] == "Accept")
            #expect(page.body.hasPrefix("<!doctype html>"))
            #expect(page.body.contains("Switchyard \(SwitchyardVersion.current)"))
            for link in ["openapi.yaml", "healthz", "readyz", "metrics"] {
                #expect(page.body.contains("href=\"\(link)\""), "link to \(link)")
            }
            #expect(page.body.contains("docs/"))
            #expect(page.body.contains(FrontPage.escape(FrontPage.curlExample(publicURL: app.services.configuration.publicURL, token: "sy_live_…"))))
            // Nothing fetched from elsewhere: no scripts, stylesheets, images or fonts.
            for fetch in ["<script", "<link", "src=", "url("] {
                #expect(!page.body.contains(fetch), "\(fetch)")
            }
            // curl's default Accept (*/*) gets the page too.
            #expect(try await app.request(.get, "/").headers[.contentType] == "text/html; charset=utf-8")
        }
    }

    @Test("GET / escapes what it prints from the configuration")
    func frontPageEscapes() async throws {
        try await TestApp.run(configure: { $0.publicURL = "http://h/<script>alert('x')</script>&\"" }) { app in
            let page = try await app.request(.get, "/")
            #expect(page.status == .ok)
            #expect(!page.body.contains("<script>"))
            #expect(page.body.contains("http://h/&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;/v1/ping"))
        }
    }

    @Test("GET / answers JSON to a client that asks for JSON and not HTML")
    func frontPageJSON() async throws {
        try await TestApp.run { app in
            let answer = try await app.request(.get, "/", headers: [.accept: "application/json"])
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType] == "application/json")
            #expect(answer["name"] as? String == "switchyard")
            #expect(answer["version"] as? String == SwitchyardVersion.current)
            #expect(answer["openapi"] as? String == "/openapi.yaml")
            #expect(answer["metrics"] as? String == "/metrics")
            let both = try await app.request(.get, "/", headers: [.accept: "application/json, text/html"])
            #expect(both.headers[.contentType] == "text/html; charset=utf-8")
        }
    }

    @Test("GET /openapi.yaml serves docs/openapi.yaml byte for byte")
    func openAPIDocument() async throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: OpenAPITests.specPath))
        try await TestApp.run { app in
            let answer = try await app.request(.get, "/openapi.yaml")
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType] == "application/yaml")
            #expect(Array(answer.body.utf8) == Array(file), "rebuild after editing docs/openapi.yaml")
        }
    }

    @Test("the suggested curl line joins the public URL and /v1/ping once")
    func curlExample() {
        #expect(
            FrontPage.curlExample(publicURL: "http://127.0.0.1:8080", token: "t")
                == #"curl -H "Authorization: Bearer t" http://127.0.0.1:8080/v1/ping"#
        )
        #expect(
            FrontPage.curlExample(publicURL: "https://hub.example/sy//", token: "t")
                == #"curl -H "Authorization: Bearer t" https://hub.example/sy/v1/ping"#
        )
    }
}
