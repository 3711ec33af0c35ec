"""A real OAuth 2.0 authorization server built with PyPI `authlib` (and Flask), standing in for the
third-party service an integration connects to in the e2e checks.

- `GET /authorize`: the authorization endpoint (authorization code; PKCE S256 required of every client). It
  approves at once for the test user, or denies (`error=access_denied`) while `deny` is set.
- `POST /token`: the token endpoint: `authorization_code` (with the PKCE verifier),
  `refresh_token` (rotated: each refresh token works once) and `client_credentials`; the client
  authenticates with `client_secret_post` or `client_secret_basic`.
- `GET /api/me`, `POST /api/documents`: a protected API that checks bearer tokens.
- `/admin/...`: what a test steers and reads: token lifetimes and denial (`POST /admin/config`),
  revoking refresh tokens as a password change would (`POST /admin/revoke`), revoking access
  tokens only (`POST /admin/revoke-access`), and counting token requests (`GET /admin/stats`).

Token lifetimes are short and configurable. Everything is in memory. Use it in process
(`OAuthProvider(...).start()`) or on its own: `python3 e2e/oauth_provider.py --port 9000
--redirect-uri http://127.0.0.1:8080/integrations/callback`.
"""

import argparse
import os
import secrets
import threading
import time
from collections import Counter

# The provider runs over plain HTTP on loopback; authlib refuses that unless told.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token  # noqa: E402
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, OAuth2Error, TokenMixin, grants  # noqa: E402
from authlib.oauth2.rfc6749.errors import InvalidRequestError  # noqa: E402
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator  # noqa: E402
from authlib.oauth2.rfc7636 import CodeChallenge  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

USER = {"id": "usr-ada", "name": "Ada Lovelace", "email": "ada@provider.example"}


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class StrictCodeChallenge(CodeChallenge):
    """PKCE for every client (confidential ones too), and S256 only."""

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required")
        super().validate_code_challenge(grant, redirect_uri)


class Client(ClientMixin):
    def __init__(self, client_id, client_secret, redirect_uris, auth_methods, grant_types, scope):
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris)
        self.auth_methods = set(auth_methods)
        self.grant_types = set(grant_types)
        self.scope = scope

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint != "token" or method in self.auth_methods

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


class AuthorizationCode(AuthorizationCodeMixin):
    def __init__(self, code, client_id, redirect_uri, scope, challenge, method):
        self.code = code
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.code_challenge = challenge
        self.code_challenge_method = method

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


class Token(TokenMixin):
    def __init__(self, client, data, issued_at):
        self.client = client
        self.access_token = data["access_token"]
        self.refresh_token = data.get("refresh_token")
        self.scope = data.get("scope", "")
        self.expires_in = data.get("expires_in", 0)
        self.issued_at = issued_at
        self.access_revoked = False
        self.refresh_revoked = False

    def check_client(self, client):
        return client.client_id == self.client.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return bool(self.expires_in) and time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.access_revoked

    def get_user(self):
        return USER

    def get_client(self):
        return self.client


class OAuthProvider:
    """The provider in a thread of this process, on 127.0.0.1 and a free port (or `port`)."""

    def __init__(self, client_id="switchyard", client_secret=None, redirect_uris=(), auth_methods=("client_secret_post",),
                 access_token_lifetime=3600, scope="profile documents:read documents:write", port=0):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.access_token_lifetime = access_token_lifetime
        self.deny = False
        self.lock = threading.RLock()
        self.client = Client(self.client_id, self.client_secret, redirect_uris, auth_methods,
                             {"authorization_code", "refresh_token", "client_credentials"}, scope)
        self.codes = {}
        self.tokens = {}  # access token -> Token
        self.by_refresh = {}  # refresh token -> Token
        self.token_requests = Counter()  # grant_type -> requests, successful or not
        self.client_auth = Counter()  # client_secret_basic / client_secret_post -> token requests
        self.issued = Counter()  # grant_type -> tokens issued
        self.documents = []
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", port, self.app, threaded=True, request_handler=QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def add_redirect_uri(self, uri):
        with self.lock:
            self.client.redirect_uris.append(uri)

    def stats(self):
        with self.lock:
            return {"token_requests": dict(self.token_requests), "issued": dict(self.issued), "client_auth": dict(self.client_auth),
                    "active_access_tokens": sum(1 for t in self.tokens.values() if not t.access_revoked and not t.is_expired()),
                    "documents": len(self.documents)}

    def revoke_refresh_tokens(self):
        """The user changed their password: every refresh token (and access token) stops working."""
        with self.lock:
            for token in self.tokens.values():
                token.refresh_revoked = True
                token.access_revoked = True

    def revoke_access_tokens(self):
        with self.lock:
            for token in self.tokens.values():
                token.access_revoked = True

    def _make_app(self):
        provider = self
        app = Flask("oauth_provider")

        def query_client(client_id):
            return provider.client if client_id == provider.client_id else None

        def save_token(data, req):
            with provider.lock:
                token = Token(req.client, data, time.time())
                provider.tokens[token.access_token] = token
                if token.refresh_token:
                    provider.by_refresh[token.refresh_token] = token
                provider.issued[req.payload.grant_type if req.payload else "unknown"] += 1

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)

        def generate_access(client, grant_type, user, scope):
            return "pat_" + secrets.token_urlsafe(24)

        def generate_refresh(client, grant_type, user, scope):
            return "prt_" + secrets.token_urlsafe(32)

        def expires_in(client, grant_type):
            return provider.access_token_lifetime

        server.register_token_generator("default", BearerTokenGenerator(generate_access, generate_refresh, expires_in))

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                with provider.lock:
                    provider.codes[code] = AuthorizationCode(code, req.client.client_id, req.payload.redirect_uri, req.scope,
                                                             data.get("code_challenge"), data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                with provider.lock:
                    found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                with provider.lock:
                    provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return USER

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: the old one is revoked below

            def authenticate_refresh_token(self, refresh_token):
                with provider.lock:
                    token = provider.by_refresh.get(refresh_token)
                return token if token and not token.refresh_revoked else None

            def authenticate_user(self, credential):
                return USER

            def revoke_old_credential(self, credential):
                with provider.lock:
                    credential.refresh_revoked = True

        class ClientGrant(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        server.register_grant(CodeGrant, [StrictCodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        server.register_grant(ClientGrant)

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                with provider.lock:
                    return provider.tokens.get(token_string)

        require_oauth = ResourceProtector()
        require_oauth.register_token_validator(Validator())

        @app.get("/authorize")
        def authorize():
            try:
                grant = server.get_consent_grant(end_user=USER)
            except OAuth2Error as error:
                return jsonify(dict(error.get_body())), error.status_code
            return server.create_authorization_response(grant=grant, grant_user=None if provider.deny else USER)

        @app.post("/token")
        def token():
            with provider.lock:
                provider.token_requests[request.form.get("grant_type", "")] += 1
                provider.client_auth["client_secret_basic" if request.authorization else "client_secret_post"] += 1
            return server.create_token_response()

        @app.get("/api/me")
        @require_oauth("profile")
        def me():
            return jsonify({**USER, "scope": current_token.scope})

        @app.post("/api/documents")
        @require_oauth("documents:write")
        def create_document():
            body = request.get_json(silent=True) or {}
            with provider.lock:
                document = {"id": f"doc-{len(provider.documents) + 1}", "title": body.get("title", ""), "owner": USER["id"]}
                provider.documents.append(document)
            return jsonify(document), 201

        @app.post("/admin/config")
        def config():
            body = request.get_json(silent=True) or {}
            with provider.lock:
                if "access_token_lifetime" in body:
                    provider.access_token_lifetime = int(body["access_token_lifetime"])
                if "deny" in body:
                    provider.deny = bool(body["deny"])
                if "redirect_uri" in body:
                    provider.client.redirect_uris.append(body["redirect_uri"])
            return jsonify({"access_token_lifetime": provider.access_token_lifetime, "deny": provider.deny})

        @app.post("/admin/revoke")
        def revoke():
            provider.revoke_refresh_tokens()
            return jsonify({"revoked": True})

        @app.post("/admin/revoke-access")
        def revoke_access():
            provider.revoke_access_tokens()
            return jsonify({"revoked": True})

        @app.get("/admin/stats")
        def stats():
            return jsonify(provider.stats())

        return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--client-id", default="switchyard")
    parser.add_argument("--client-secret", default=None)
    parser.add_argument("--redirect-uri", action="append", default=[])
    parser.add_argument("--access-token-lifetime", type=int, default=3600)
    parser.add_argument("--auth-method", action="append", default=[], choices=["client_secret_post", "client_secret_basic"])
    options = parser.parse_args()
    provider = OAuthProvider(client_id=options.client_id, client_secret=options.client_secret, redirect_uris=options.redirect_uri,
                             auth_methods=options.auth_method or ["client_secret_post"],
                             access_token_lifetime=options.access_token_lifetime, port=options.port)
    print(f"OAuth provider at {provider.url}; client {provider.client_id} / {provider.client_secret}", flush=True)
    provider.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        provider.stop()


if __name__ == "__main__":
    main()
