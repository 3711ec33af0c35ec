"""Fixtures for end-to-end checks against the real `switchyard` binary.

The binary comes from $SWITCHYARD_BIN (default .build/debug/switchyard, from the repository
root); PostgreSQL checks run when $SWITCHYARD_TEST_POSTGRES_URL is set (scripts/test.sh sets it).
"""

import email
import email.policy
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

REPO_ROOT = Path(__file__).resolve().parent.parent
SWITCHYARD_BIN = Path(os.environ.get("SWITCHYARD_BIN", ".build/debug/switchyard"))
if not SWITCHYARD_BIN.is_absolute():
    SWITCHYARD_BIN = REPO_ROOT / SWITCHYARD_BIN


def pytest_configure(config):
    # SMTPSink(credentials=...) takes AUTH over plain text on loopback on purpose.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")


def free_port():
    """A loopback port free right now (another process could still take it before we do)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url, timeout=2.0):
    """The status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


class Server:
    """One `switchyard serve` process. start() again after stop()/kill() reuses the same port,
    database and data folder, so a check can restart the server and see what survived."""

    def __init__(self, tmp_path, database_url=None, smtp_url=None, extra_env=None, extra_args=None):
        self.tmp_path = Path(tmp_path)
        self.port = free_port()
        # The working directory, so the default data folder ./switchyard-data/ lands in it.
        self.workdir = self.tmp_path / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if database_url is None:
            (self.tmp_path / "db").mkdir(parents=True, exist_ok=True)
            database_url = f"sqlite://{self.tmp_path}/db/switchyard.sqlite"
        self.database_url = database_url
        self.smtp_url = smtp_url
        self.extra_env = dict(extra_env or {})
        self.extra_args = list(extra_args or [])
        self.stdout_path = self.tmp_path / f"server-{self.port}.stdout"
        self.stderr_path = self.tmp_path / f"server-{self.port}.stderr"
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        cmd = [str(SWITCHYARD_BIN), "serve", "--port", str(self.port), "--host", "127.0.0.1",
               "--database-url", self.database_url]
        if self.smtp_url:
            cmd += ["--smtp-url", self.smtp_url]
        return cmd + self.extra_args

    def start(self, timeout=30.0):
        if not SWITCHYARD_BIN.exists():
            raise RuntimeError(f"no switchyard binary at {SWITCHYARD_BIN} (swift build, or set SWITCHYARD_BIN)")
        # Appending keeps the output of earlier runs: bootstrap credentials are printed only once.
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                self.command(), cwd=self.workdir, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.extra_env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"switchyard exited with {self.process.returncode} while starting\n{self.log_tail()}")
            if http_status(self.url + "/healthz") == 200:
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"switchyard did not answer /healthz within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL if it has not exited within timeout. Returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self):
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def stdout_text(self):
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log_tail(self, lines=40):
        def tail(text):
            return "\n".join(text.splitlines()[-lines:])
        return f"--- stdout ---\n{tail(self.stdout_text())}\n--- stderr ---\n{tail(self.stderr_text())}"

    _CREDENTIALS = {
        "email": re.compile(r"email:\s*(\S+@\S+)"),
        "password": re.compile(r"password:\s*(\S+)"),
        "token": re.compile(r"token:\s*(sy_live_[A-Za-z0-9_-]+)"),
    }

    def bootstrap_credentials(self, timeout=10.0):
        """The first user's email, password and API token, as printed on the first start."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stdout_text()
            found = {key: pattern.search(text) for key, pattern in self._CREDENTIALS.items()}
            if all(found.values()):
                return {key: match.group(1) for key, match in found.items()}
            if time.monotonic() > deadline:
                missing = [key for key, match in found.items() if not match]
                raise AssertionError(f"no bootstrap {', '.join(missing)} on stdout within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.1)


@pytest.fixture
def make_server(tmp_path):
    """Makes (not starts) servers in their own folders under tmp_path; stops them all at teardown."""
    servers = []

    def make(**kwargs):
        server = Server(tmp_path / f"server{len(servers)}", **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server):
    """A started server on a fresh SQLite database."""
    return make_server().start()


def _with_path(url, user, database):
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, f"{user}@{netloc}", "/" + database, parts.query, ""))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """Runs a test on each engine: None (each server makes its own SQLite file), then a fresh
    PostgreSQL database (skipped without one)."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_database_url")
    return None


@pytest.fixture
def pg_database_url():
    """The URL of a fresh PostgreSQL database, dropped at teardown; skips without PostgreSQL."""
    base = os.environ.get("SWITCHYARD_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("SWITCHYARD_TEST_POSTGRES_URL is not set")
    admin = _with_path(base, "postgres", "postgres")
    name = f"e2e_{secrets.token_hex(6)}"

    def psql(sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin, "-c", sql],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)

    psql(f"CREATE DATABASE {name}")
    yield _with_path(base, urllib.parse.urlsplit(base).username or "postgres", name)
    # Best effort: the cluster is thrown away at the end of the run anyway.
    try:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except (subprocess.SubprocessError, OSError):
        pass


class SMTPSink:
    """A real SMTP server on loopback that keeps every message it receives in .messages.
    stop() then start() listens on the same port again, to check that mail waits out an outage.

    tls="starttls" offers STARTTLS and refuses mail (and AUTH) before it; tls="implicit" speaks TLS
    from the first byte. Both need certificate=(certificate path, key path), e.g. from
    ThrowawayCA.issue() in test_mail_tls.py. Each received message notes its TLS version ("tls")
    and the user it authenticated as ("user")."""

    class _Handler:
        def __init__(self, sink):
            self.sink = sink

        async def handle_DATA(self, server, session, envelope):
            message = email.message_from_bytes(envelope.original_content or envelope.content,
                                               policy=email.policy.default)
            body = message.get_body(preferencelist=("plain", "html"))
            ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
            received = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "subject": str(message.get("Subject", "")),
                "body": body.get_content() if body is not None else "",
                "message": message,
                "tls": ssl_object.version() if ssl_object is not None else None,
                "user": session.auth_data.login.decode() if session.authenticated else None,
            }
            with self.sink._lock:
                self.sink.messages.append(received)
            return "250 OK"

    def __init__(self, port=None, credentials=None, tls=None, certificate=None, host="127.0.0.1"):
        """credentials=(user, password) makes the sink require AUTH; without tls that is over plain
        text, which switchyard allows on loopback only. host is the name put in url."""
        if tls not in (None, "starttls", "implicit"):
            raise ValueError(f"tls must be None, 'starttls' or 'implicit', not {tls!r}")
        if tls and not certificate:
            raise ValueError("tls needs certificate=(certificate path, key path)")
        self.port = port or free_port()
        self.credentials = credentials
        self.tls = tls
        self.certificate = certificate
        self.host = host
        self.messages = []
        self._lock = threading.Lock()
        self._controller = None

    def url_with(self, ca=None, host=None):
        """The --smtp-url for this sink: its scheme and credentials, host (default: the sink's),
        and ?ca=ca when given."""
        scheme = {None: "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}[self.tls]
        userinfo = ""
        if self.credentials:
            user, password = (urllib.parse.quote(part, safe="") for part in self.credentials)
            userinfo = f"{user}:{password}@"
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"
        query = f"?ca={urllib.parse.quote(str(ca))}" if ca else ""
        return f"{scheme}://{userinfo}{host}:{self.port}{query}"

    @property
    def url(self):
        return self.url_with()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode()) == tuple(self.credentials))
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    def _ssl_context(self):
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*(str(path) for path in self.certificate))
        return context

    def start(self):
        # A Controller runs once: each start gets a new one.
        options = {}
        if self.credentials:
            # aiosmtpd sees TLS only when it did STARTTLS itself; on an implicit-TLS listener every
            # connection is TLS already, so its own check must be off there.
            options = {"authenticator": self._authenticate, "auth_required": True,
                       "auth_require_tls": self.tls == "starttls"}
        if self.tls == "starttls":
            options.update(tls_context=self._ssl_context(), require_starttls=True)
        elif self.tls == "implicit":
            options.update(ssl_context=self._ssl_context())
        self._controller = Controller(self._Handler(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self):
        with self._lock:
            return list(self.messages)

    def wait_for(self, predicate=lambda message: True, timeout=10.0):
        """The first received message that satisfies predicate; fails after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received():
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                summary = [(m["rcpt_tos"], m["subject"]) for m in self.received()]
                raise AssertionError(f"no matching message within {timeout:.0f} s; received: {summary}")
            time.sleep(0.05)


@pytest.fixture
def smtp_sink():
    sink = SMTPSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def make_smtp_sink():
    """Makes and starts SMTPSinks (same arguments as SMTPSink); stops them all at teardown."""
    sinks = []

    def make(**kwargs):
        sink = SMTPSink(**kwargs)
        sinks.append(sink)
        return sink.start()

    yield make
    for sink in sinks:
        sink.stop()
