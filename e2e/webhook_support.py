"""What the webhook e2e checks share: a real HTTP receiver on loopback, a small API client, bounded
waits, and the settings `switchyard serve` gets so that it may deliver to loopback in milliseconds.
"""

import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

# Loopback is refused as a target unless allowed; three attempts within a third of a second.
WEBHOOK_ARGS = ["--allowed-target-networks", "127.0.0.0/8,::1/128", "--retry-schedule", "0,100ms,200ms"]


def wait_until(check, timeout, what, details=lambda: "", interval=0.05):
    """Polls check() until it returns something truthy, which it returns; fails after timeout with
    what and details() (called only then: the state worth seeing when it did not happen)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{details()}")
        time.sleep(interval)


def rfc3339(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def minutes_ago(minutes=1):
    return rfc3339(datetime.now(timezone.utc) - timedelta(minutes=minutes))


class Delivery:
    """One request the receiver got."""

    def __init__(self, path, headers, body, received_at):
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body  # bytes, as received
        self.received_at = received_at

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")

    def json(self):
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread: HTTP/1.1 with keep-alive, so a Switchyard
    connection pool reuses its connections and thousands of deliveries take seconds. It keeps every
    request; `answer(delivery)` gives the status to send (204 unless changed), and `delay` slows
    every answer by that many seconds."""

    def __init__(self, answer=None, delay=0.0):
        self.answer = answer or (lambda delivery: 204)
        self.delay = delay
        self.deliveries = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                delivery = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with receiver._lock:
                    receiver.deliveries.append(delivery)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.answer(delivery)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                # A sender that went away (a killed server, a timed-out attempt) is expected here.
                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def received(self, path=None):
        with self._lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def ids(self, path=None):
        """How many times each webhook-id arrived (at path, or anywhere)."""
        return Counter(d.webhook_id for d in self.received(path))


class API:
    """The HTTP API of one server as one caller; every call checks its status."""

    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()

    def call(self, method, path, body=None, expect=(200, 201, 202, 204), session=None, **params):
        session = session or self.session
        response = session.request(method, self.url + path, json=body, params=params or None, timeout=30)
        assert response.status_code in expect, f"{method} {path} answered {response.status_code}: {response.text}"
        return response.json() if response.content else None

    def get(self, path, **params):
        return self.call("GET", path, **params)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def workspace(self):
        return self.get("/v1/workspaces")["data"][0]["id"]

    def post_events(self, workspace, count, type="e2e.tick", threads=8, first=0):
        """Posts count host events from `threads` threads; returns the ids of those answered 201."""
        def session():
            if not hasattr(self._local, "session"):
                self._local.session = requests.Session()
                self._local.session.headers["Authorization"] = f"Bearer {self.token}"
            return self._local.session

        def post(n):
            return self.call("POST", f"/v1/workspaces/{workspace}/events", {"type": type, "data": {"n": n}},
                             expect=(201,), session=session())["id"]

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(post, range(first, first + count)))

    def events(self, workspace, **query):
        """Every event of the log, oldest first (all pages)."""
        events, after = [], None
        while True:
            params = {"limit": 200, **query}
            if after:
                params["after"] = after
            page = self.get(f"/v1/workspaces/{workspace}/events", **params)
            events += page["data"]
            if page["next_after"] is None:
                return events
            after = page["next_after"]

    def create_webhook(self, workspace, **body):
        return self.post(f"/v1/workspaces/{workspace}/webhooks", body, expect=(201,))

    def webhook(self, workspace, endpoint_id):
        return self.get(f"/v1/workspaces/{workspace}/webhooks/{endpoint_id}")

    def deliveries(self, workspace, endpoint_id, **query):
        """Every delivery of an endpoint, newest first (all pages)."""
        deliveries, after = [], None
        while True:
            params = {"limit": 200, **query}
            if after:
                params["after"] = after
            page = self.get(f"/v1/workspaces/{workspace}/webhooks/{endpoint_id}/deliveries", **params)
            deliveries += page["data"]
            if page["next_after"] is None:
                return deliveries
            after = page["next_after"]

    def attempts(self, workspace, endpoint_id, delivery_id):
        return self.get(f"/v1/workspaces/{workspace}/webhooks/{endpoint_id}/deliveries/{delivery_id}/attempts")["data"]


def start_owner(server):
    """Starts server; the API as the owner printed on first start, and the workspace's id."""
    server.start()
    api = API(server.url, server.bootstrap_credentials()["token"])
    return api, api.workspace()


def metric_sum(server_url, name, **labels):
    """The sum of a Prometheus metric's samples with these labels, or None when it is not exported."""
    text = requests.get(server_url + "/metrics", timeout=10).text
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        if all(f'{key}="{want}"' in series for key, want in labels.items()):
            total += float(value)
            found = True
    return total if found else None


def missing_summary(expected, counts, limit=5):
    missing = [i for i in expected if counts.get(i, 0) == 0]
    return f"{len(missing)} of {len(expected)} not received, e.g. {missing[:limit]}"
