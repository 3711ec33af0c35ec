"""Two `switchyard serve` processes on one PostgreSQL keep one app within its rate limit.

The app, its client secret and an access token are written with SQL straight into the database
(the migration-11 schema), so this check needs neither the admin API nor the OAuth endpoint. Both
processes are then loaded at once from 16 threads for a few seconds, far above the app's rate: the
calls admitted by the two together stay within 10 % of what one token bucket admits (its burst,
twice the rate, plus the rate times the elapsed time), each process admits its part, every answer
carries the RateLimit headers, and every admitted call's `app.request` entry is in the activity log
within a couple of seconds (the entries are batched), and those of calls answered just before a
graceful stop once it has stopped. Skipped without $SWITCHYARD_TEST_POSTGRES_URL.
"""

import hashlib
import json
import os
import secrets
import subprocess
import threading
import time
import zlib

import requests

from webhook_support import start_owner, wait_until

# Calls a second (a bucket of 50), low enough that a debug build on a busy machine, called from
# Python, still asks for well over it; leases of 1.25 tokens, so partial leases happen too.
RATE = 25
LOAD_SECONDS = 8.0
THREADS_PER_SERVER = 8

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base62(number, length):
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits)).rjust(length, "0")[-length:]


def access_token(prefix="sya_live_"):
    """A well-formed token as TokenFormat makes it: 32 random bytes in base62, then a CRC-32 checksum."""
    body = prefix + _base62(int.from_bytes(os.urandom(32), "big"), 43)
    return body + _base62(zlib.crc32(body.encode()), 6)


def make_id(prefix):
    """A ULID-shaped id (`app_01…`): 48-bit milliseconds and 80 random bits in Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def psql(url, sql):
    result = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                            check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return result.stdout.strip()


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def make_app(database_url, workspace, rate):
    """An active live app with one secret and one access token; its id and the token."""
    now = int(time.time() * 1000)
    app_id, secret_id, token_id = make_id("app"), make_id("sec"), make_id("atk")
    token = access_token()
    secret = "syc_" + secrets.token_urlsafe(32)
    name = f"Rate Test {secrets.token_hex(3)}"
    psql(database_url, f"""
        BEGIN;
        INSERT INTO apps (id, name, name_key, description, category, access, mode, workspace_ids, permissions, status,
                          client_id, rate_limit, otp_failures, created_by_type, created_at, updated_at)
        VALUES ('{app_id}', '{name}', '{name.lower()}', 'e2e rate limit', 'other', 'read', 'live',
                '{json.dumps([workspace])}', '[]', 'active', '{make_id("cid")}', {rate}, 0, 'user', {now}, {now});
        INSERT INTO app_secrets (id, app_id, secret_hash, last_four, created_at)
        VALUES ('{secret_id}', '{app_id}', '{sha256(secret)}', '{secret[-4:]}', {now});
        INSERT INTO app_tokens (id, app_id, secret_id, secret_hash, mode, scope, expires_at, created_at)
        VALUES ('{token_id}', '{app_id}', '{secret_id}', '{sha256(token)}', 'live', NULL, {now + 3_600_000}, {now});
        COMMIT;
    """)
    return app_id, token


class Load:
    """Calls `url` with the token from `threads` threads until `stop`; counts answers by status."""

    def __init__(self, url, token, threads, stop):
        self.url, self.token, self.stop = url, token, stop
        self.counts = {}
        self.problems = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        while not self.stop.is_set():
            response = session.get(self.url, timeout=10)
            headers = response.headers
            problem = None
            if not all(headers.get(name) for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")):
                problem = f"{response.status_code} without the RateLimit headers: {dict(headers)}"
            elif headers["RateLimit-Limit"] != str(2 * RATE):
                problem = f"RateLimit-Limit {headers['RateLimit-Limit']}, expected {2 * RATE}"
            elif response.status_code == 429 and not headers.get("Retry-After", "").isdigit():
                problem = f"429 without Retry-After: {dict(headers)}"
            elif response.status_code not in (200, 429):
                problem = f"{response.status_code}: {response.text[:300]}"
            with self.lock:
                self.counts[response.status_code] = self.counts.get(response.status_code, 0) + 1
                if problem:
                    self.problems.append(problem)


def test_two_processes_keep_one_app_within_its_rate_limit(make_server, pg_database_url):
    first = make_server(database_url=pg_database_url)
    api, workspace = start_owner(first)
    second = make_server(database_url=pg_database_url).start()
    app_id, token = make_app(pg_database_url, workspace, RATE)

    stop = threading.Event()
    loads = [Load(f"{server.url}/v1/workspaces/{workspace}", token, THREADS_PER_SERVER, stop) for server in (first, second)]
    started = time.monotonic()
    for load in loads:
        for thread in load.threads:
            thread.start()
    time.sleep(LOAD_SECONDS)
    stop.set()
    for load in loads:
        for thread in load.threads:
            thread.join(15)
    elapsed = time.monotonic() - started

    admitted = [load.counts.get(200, 0) for load in loads]
    refused = [load.counts.get(429, 0) for load in loads]
    # One bucket: full at the first call (twice the rate), then the rate for the time under load.
    expected = 2 * RATE + RATE * elapsed
    print(f"admitted {admitted} (sum {sum(admitted)}), refused {refused}, in {elapsed:.2f} s; one bucket admits {expected:.0f}")
    problems = loads[0].problems + loads[1].problems
    assert not problems, f"{len(problems)} bad answers, e.g. {problems[:3]}"
    assert sum(refused) >= 0.5 * sum(admitted), "the load hardly exceeded the limit: the check tested little"
    assert abs(sum(admitted) - expected) <= 0.1 * expected, f"admitted {sum(admitted)}, expected {expected:.0f} ± 10 %"
    assert min(admitted) >= 0.2 * sum(admitted), f"one process starved the other: {admitted}"

    # Every admitted call's entry is written within a second or so of its answer (batched).
    def logged():
        return int(psql(pg_database_url, f"SELECT COUNT(*) FROM activity_entries WHERE action = 'app.request' "
                                         f"AND app_id = '{app_id}' AND outcome = 'success'"))
    wait_until(lambda: logged() == sum(admitted), 5, f"{sum(admitted)} app.request entries of admitted calls",
               lambda: f"{logged()} logged")
    # A graceful stop writes what still waits: calls answered just before SIGTERM are listed after it.
    time.sleep(0.5)  # the bucket refills a little
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    last = [session.get(f"{first.url}/v1/workspaces/{workspace}", timeout=10).status_code for _ in range(5)]
    assert last == [200] * 5, last
    assert first.stop() == 0, first.log_tail()
    assert logged() == sum(admitted) + 5, f"{logged()} logged after the graceful stop, expected {sum(admitted) + 5}"

    entry = psql(pg_database_url, f"SELECT actor_type || ' ' || actor_id || ' ' || workspace_id || ' ' || detail "
                                  f"FROM activity_entries WHERE action = 'app.request' AND outcome = 'success' LIMIT 1")
    assert entry == f"app {app_id} {workspace} GET /v1/workspaces/{workspace} 200", entry
