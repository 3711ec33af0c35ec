"""Apps for the OAuth checks and benchmark: registered through the API as an admin and a developer
would (`register_app`), or written straight into a server's SQLite file (`seed_app`), for the
benchmark and for branches where the registration and portal routes are not there yet.
"""

import json
import os
import re
import sqlite3
import time
import zlib

import requests

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base62(number, length):
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits)).rjust(length, "0")[-length:]


def secret(prefix):
    """A secret as Switchyard's TokenFormat makes it: prefix, 32 random bytes in base62, CRC-32."""
    body = prefix + _base62(int.from_bytes(os.urandom(32), "big"), 43)
    return body + _base62(zlib.crc32(body.encode()), 6)


def make_id(prefix):
    """A prefixed ULID: 48-bit milliseconds and 80 random bits in Crockford base32."""
    number = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        number, remainder = divmod(number, 32)
        chars.append(CROCKFORD[remainder])
    return f"{prefix}_{''.join(reversed(chars))}"


def sha256_hex(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


def seed_app(sqlite_path, name, permissions, workspaces=None, mode="live", access="read_write", rate_limit=None):
    """An active, verified app with one client secret, written into a running server's database.
    Returns {"id", "client_id", "client_secret"}."""
    now = int(time.time() * 1000)
    app_id, client_id = make_id("app"), make_id("cid")
    client_secret = secret("syc_")
    connection = sqlite3.connect(sqlite_path, timeout=30)
    with connection:
        connection.execute(
            """INSERT INTO apps (id, name, name_key, description, category, access, mode, workspace_ids, permissions,
                                 status, client_id, rate_limit, developer_email, developer_invited_at, developer_linked_at,
                                 verified_at, otp_failures, created_by_type, created_at, updated_at)
               VALUES (?, ?, ?, ?, 'other', ?, ?, ?, ?, 'active', ?, ?, 'dev@partner.example', ?, ?, ?, 0, 'system', ?, ?)""",
            (app_id, name, name.lower(), f"{name} (seeded)", access, mode,
             None if workspaces is None else json.dumps(workspaces), json.dumps(permissions), client_id, rate_limit,
             now, now, now, now, now))
        connection.execute(
            "INSERT INTO app_secrets (id, app_id, secret_hash, last_four, created_at) VALUES (?, ?, ?, ?, ?)",
            (make_id("sec"), app_id, sha256_hex(client_secret), client_secret[-4:], now))
    connection.close()
    return {"id": app_id, "client_id": client_id, "client_secret": client_secret}


def route_missing(response):
    """Whether the server answered that it has no such route (a branch without it)."""
    return response.status_code == 404 and "route-not-found" in response.headers.get("Content-Type", "") + response.text


def register_app(server_url, owner_token, smtp_sink, name, permissions, workspaces, mode="live", access="read_write"):
    """The spec's flow: an admin registers the app (POST /v1/apps), the developer signs up from the
    invite mail on the portal API, verifies the app with the one-time password and creates a secret.
    Returns {"id", "client_id", "client_secret"}, or None when the server lacks the routes."""
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {owner_token}"
    created = admin.post(f"{server_url}/v1/apps", json={
        "name": name, "description": f"{name}, for the OAuth checks", "category": "accounting", "access": access,
        "mode": mode, "workspaces": workspaces, "permissions": permissions, "developer_email": "dev@partner.example",
    }, timeout=30)
    if route_missing(created):
        return None
    assert created.status_code == 201, created.text
    app = created.json()
    mail = smtp_sink.wait_for(lambda m: "dev@partner.example" in m["rcpt_tos"] and "/portal/invite/" in m["body"])
    invite = re.search(r"/portal/invite/([A-Za-z0-9_]+)", mail["body"]).group(1)
    portal = requests.Session()
    signed_up = portal.post(f"{server_url}/portal/api/signup",
                            json={"invite_token": invite, "password": "correct horse battery staple"}, timeout=30)
    if route_missing(signed_up):
        return None
    assert signed_up.status_code == 201, signed_up.text
    verified = portal.post(f"{server_url}/portal/api/apps/{app['id']}/verify",
                           json={"one_time_password": app["one_time_password"]}, timeout=30)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "active"
    made = portal.post(f"{server_url}/portal/api/apps/{app['id']}/secrets", timeout=30)
    assert made.status_code == 201, made.text
    return {"id": app["id"], "client_id": app["client_id"], "client_secret": made.json()["secret"]}
