import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /portal/invite/{token}`, the page the invite mail links to, until the portal's own pages
/// come: it names the app and the email and shows the API calls that accept the invite.
/// Self-contained (nothing fetched), every text from outside the code escaped; never cached, and
/// no Referer leaves it, because its address holds the invite's token.
enum PortalInvitePage {
    static func response(_ invite: PortalInvite, token: String, publicURL: String) -> Response {
        page(status: .ok, title: "Your invite to \(invite.app.name)", body: body(invite, token: token, publicURL: publicURL))
    }

    /// An invite that does not open (410 used, replaced or expired; 404 unknown), as a page.
    static func response(_ error: APIError) -> Response {
        let text = "<p>\(FrontPage.escape(error.detail))</p>\n<p>Ask the admin who invited you to send a new invite.</p>"
        return page(status: error.status, title: error.title, body: text)
    }

    static func body(_ invite: PortalInvite, token: String, publicURL: String) -> String {
        let app = FrontPage.escape(invite.app.name)
        let email = FrontPage.escape(invite.email)
        let expires = FrontPage.escape(RFC3339.format(invite.expiresAt))
        let base = FrontPage.escape(publicURL)
        let tokenText = FrontPage.escape(token)
        let call: String
        if invite.hasAccount {
            call = """
                <p>You have an account already: sign in with it to accept the invite.</p>
                <pre>curl -i -X POST \(base)/portal/api/login -H 'Content-Type: application/json' \\
                  -d '{"email": "\(email)", "password": "…", "invite_token": "\(tokenText)"}'</pre>
                """
        } else {
            call = """
                <p>Sign up with a password of at least \(Passwords.minimumLength) characters (the name is optional):</p>
                <pre>curl -i -X POST \(base)/portal/api/signup -H 'Content-Type: application/json' \\
                  -d '{"invite_token": "\(tokenText)", "password": "…", "name": "…"}'</pre>
                """
        }
        return """
            <p>You are invited to the Switchyard developer portal as the developer of the app
            <strong>\(app)</strong>, with the email <strong>\(email)</strong>. This invite works once, until \(expires).</p>
            <p>The portal's web pages are not built yet; its API is.</p>
            \(call)
            <p>The answer sets the <code>sy_portal</code> cookie. With it, <code>GET /portal/api/apps</code> lists your apps,
            <code>POST /portal/api/apps/{id}/verify</code> with <code>{"one_time_password": "…"}</code> verifies the app with the
            one-time password its admin gives you by phone or SMS, and <code>POST /portal/api/apps/{id}/secrets</code> creates
            its client secret. The API reference is at <a href="\(base)/openapi.yaml">\(base)/openapi.yaml</a>.</p>
            """
    }

    static func page(status: HTTPResponse.Status, title: String, body: String) -> Response {
        let html = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>\(FrontPage.escape(title)) · Switchyard</title>
            <style>
            body { font: 16px/1.5 system-ui, sans-serif; max-width: 46em; margin: 3em auto; padding: 0 1em; color: #222; }
            code, pre { background: #f2f2f2; border-radius: 3px; }
            pre { padding: 0.6em; overflow-x: auto; }
            </style>
            </head>
            <body>
            <h1>\(FrontPage.escape(title))</h1>
            \(body)
            </body>
            </html>

            """
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ]
        if let referrerPolicy = HTTPField.Name("Referrer-Policy") { headers[referrerPolicy] = "no-referrer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
