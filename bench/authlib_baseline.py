"""The comparison baseline of bench/oauth.sh: what a Python team would stand up instead — Authlib's
Flask token endpoint (client credentials, client_secret_basic) with clients and tokens in SQLite,
run under gunicorn with two workers. Secrets are kept as SHA-256, as Switchyard keeps them.

`python3 authlib_baseline.py init DB CLIENT_ID SECRET` makes the database and the client;
`BASELINE_DB=DB gunicorn -w 2 authlib_baseline:app` serves POST /oauth/token.
"""

import hashlib
import hmac
import os
import sqlite3
import sys
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from flask import Flask

_connection = None


def connection():
    """One connection per worker process, opened after gunicorn forked it."""
    global _connection
    if _connection is None:
        _connection = sqlite3.connect(os.environ["BASELINE_DB"], timeout=30, isolation_level=None)
        _connection.execute("PRAGMA synchronous=NORMAL")
    return _connection


class Client(ClientMixin):
    def __init__(self, client_id, secret_hash, scope):
        self.client_id, self.secret_hash, self.scope = client_id, secret_hash, scope

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(hashlib.sha256(client_secret.encode()).hexdigest(), self.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    check_token_endpoint_auth_method = check_endpoint_auth_method

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"


def query_client(client_id):
    row = connection().execute("SELECT client_id, secret_hash, scope FROM clients WHERE client_id = ?", (client_id,)).fetchone()
    return Client(*row) if row else None


def save_token(token, request):
    connection().execute(
        "INSERT INTO tokens (client_id, access_token, scope, issued_at, expires_in) VALUES (?, ?, ?, ?, ?)",
        (request.client.get_client_id(), token["access_token"], token.get("scope", ""), int(time.time()), token["expires_in"]))


app = Flask(__name__)
server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
server.register_grant(grants.ClientCredentialsGrant)


@app.route("/oauth/token", methods=["POST"])
def issue_token():
    return server.create_token_response()


if __name__ == "__main__" and sys.argv[1:2] == ["init"]:
    path, client_id, secret = sys.argv[2:5]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE clients (client_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, scope TEXT NOT NULL)")
    db.execute("CREATE TABLE tokens (id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, access_token TEXT NOT NULL UNIQUE, "
               "scope TEXT, issued_at INTEGER NOT NULL, expires_in INTEGER NOT NULL)")
    db.execute("INSERT INTO clients VALUES (?, ?, ?)", (client_id, hashlib.sha256(secret.encode()).hexdigest(), "work_order:read"))
    db.commit()
