"""End-to-end checks of TLS to PostgreSQL: the real binary and a real PostgreSQL cluster of its own
with `ssl=on` and a certificate from a throwaway CA.

`sslmode=require` (and `prefer`, when TLS happens) always verifies the chain and the name, against
the system's CAs or the ones in `sslrootcert=`; a server the CA does not vouch for stops switchyard at
start with a message that says why. A DNS host is checked against the certificate's DNS names (and
sent as SNI); an IP host, which SNI cannot carry, against its IP addresses.
"""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import SWITCHYARD_BIN, free_port, http_status
from test_mail_tls import ThrowawayCA

PASSWORD = "hunter2-secret"  # trust authentication ignores it; it must still never be printed


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def postgres_bin():
    """The newest /usr/lib/postgresql/*/bin with initdb, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                        if p.parent.parent.name.isdigit() else 0)
    return candidates[-1].parent if candidates else None


class TLSCluster:
    """A throwaway PostgreSQL cluster under /tmp that speaks TLS with a certificate given at start.
    PostgreSQL refuses to run as root, so as root it runs as the postgres user, which owns its
    files (and must: the key file has to be the server user's, mode 0600)."""

    def __init__(self, bin_dir):
        self.bin = bin_dir
        # Under /tmp, not pytest's tmp_path: the postgres user must reach it, and socket paths must
        # stay short.
        self.dir = Path(tempfile.mkdtemp(prefix="switchyard-pgtls.", dir="/tmp"))
        self.socket_dir = self.dir / "sock"
        self.socket_dir.mkdir()
        self.port = free_port()
        self.running = False
        self.settings = None
        try:
            for path in (self.dir, self.socket_dir):
                self._chown(path)
            self._run("initdb", "--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-instructions",
                      "-D", str(self.dir / "data"))
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @staticmethod
    def _as_root():
        return os.geteuid() == 0

    def _chown(self, path):
        if self._as_root():
            shutil.chown(path, "postgres", "postgres")

    def _run(self, program, *args):
        command = [str(self.bin / program), *args]
        if self._as_root():
            command = ["runuser", "-u", "postgres", "--", *command]
        # cwd /: the postgres user may not be allowed into the caller's directory.
        result = subprocess.run(command, cwd="/", capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            log = self.dir / "server.log"
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}\n"
                               f"{log.read_text(errors='replace') if log.exists() else ''}")
        return result.stdout

    def start(self, certificate=None, ssl=True):
        """(Re)starts the server; with ssl, certificate is (certificate path, key path)."""
        self.stop()
        options = [f"-p {self.port}", f"-k {self.socket_dir}", f"-c listen_addresses={'127.0.0.1,::1' if has_ipv6_loopback() else '127.0.0.1'}",
                   "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        if ssl:
            tls_dir = self.dir / f"tls-{secrets.token_hex(4)}"
            tls_dir.mkdir()
            crt, key = tls_dir / "server.crt", tls_dir / "server.key"
            shutil.copyfile(certificate[0], crt)
            shutil.copyfile(certificate[1], key)
            key.chmod(0o600)
            for path in (tls_dir, crt, key):
                self._chown(path)
            options += ["-c ssl=on", f"-c ssl_cert_file={crt}", f"-c ssl_key_file={key}"]
        else:
            options.append("-c ssl=off")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-o",
                  " ".join(options), "start")
        self.running = True
        self.settings = (certificate, ssl)
        return self

    def stop(self):
        if self.running:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
            self.running = False

    def delete(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql, database="postgres"):
        """Runs sql over the Unix socket (no TLS there) and returns its rows, unaligned."""
        result = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=True)
        return result.stdout.splitlines()

    def create_database(self):
        name = f"e2e_{secrets.token_hex(6)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def url(self, host="localhost", database="postgres", sslmode="require", sslrootcert=None):
        query = {"sslmode": sslmode}
        if sslrootcert:
            query["sslrootcert"] = str(sslrootcert)
        address = f"[{host}]" if ":" in host else host
        return f"postgres://postgres:{PASSWORD}@{address}:{self.port}/{database}?{urllib.parse.urlencode(query)}"

    def switchyard_connections(self, database):
        """(ssl, TLS version) of each connection switchyard holds to database."""
        rows = self.psql("SELECT s.ssl, coalesce(s.version, '') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                         f"WHERE a.application_name = 'switchyard' AND a.datname = '{database}'")
        return [tuple(row.split("|")) for row in rows]


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory):
    """The CA the cluster's certificate comes from, and that certificate (localhost, 127.0.0.1, ::1)."""
    ca = ThrowawayCA(tmp_path_factory.mktemp("pg-pki"), name="Switchyard e2e PostgreSQL CA")
    return ca, ca.issue()


@pytest.fixture(scope="module")
def tls_cluster(tls_pki):
    bin_dir = postgres_bin()
    if bin_dir is None or shutil.which("psql") is None:
        pytest.skip("PostgreSQL is not installed (scripts/deps.sh installs it)")
    cluster = TLSCluster(bin_dir)
    try:
        cluster.start(certificate=tls_pki[1])
        yield cluster
    finally:
        cluster.delete()


@pytest.fixture
def postgres_tls(tls_cluster, tls_pki):
    """The cluster with its usual certificate; a test that restarts it otherwise gets it back after."""
    yield tls_cluster
    if tls_cluster.settings != (tls_pki[1], True):
        tls_cluster.start(certificate=tls_pki[1])


def refusal(make_server, database_url):
    """switchyard serve with database_url; it must stop at start. Returns its stdout + stderr."""
    assert SWITCHYARD_BIN.exists(), f"no switchyard binary at {SWITCHYARD_BIN}"
    server = make_server(database_url=database_url)
    result = subprocess.run(server.command(), cwd=server.workdir, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert PASSWORD not in output, output
    return output


# --- a verified connection -------------------------------------------------------------------------

@pytest.mark.parametrize("host, sslmode", [
    ("localhost", "require"),   # a DNS name: sent as SNI and matched against the certificate's DNS names
    ("127.0.0.1", "require"),   # an IP literal: no SNI; matched against the certificate's IP addresses
    ("::1", "require"),         # in brackets in the URL; matched like 127.0.0.1
    ("localhost", "prefer"),    # prefer verifies the same way once the server agrees to TLS
])
def test_server_runs_over_verified_tls(make_server, postgres_tls, tls_pki, host, sslmode):
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    ca, _ = tls_pki
    database = postgres_tls.create_database()
    server = make_server(database_url=postgres_tls.url(host, database, sslmode=sslmode, sslrootcert=ca.path)).start()
    assert http_status(server.url + "/readyz") == 200

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {server.bootstrap_credentials()['token']}"
    listed = api.get(server.url + "/v1/workspaces", timeout=10)
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]) == 1
    created = api.post(server.url + "/v1/workspaces", json={"name": "Over TLS", "mode": "sandbox"}, timeout=10)
    assert created.status_code == 201, created.text
    assert created.json()["id"] in [w["id"] for w in api.get(server.url + "/v1/workspaces", timeout=10).json()["data"]]

    # PostgreSQL's own view: every connection switchyard holds is encrypted.
    connections = postgres_tls.switchyard_connections(database)
    assert connections, "switchyard holds no connection to the database"
    assert all(ssl == "t" and version in ("TLSv1.2", "TLSv1.3") for ssl, version in connections), connections
    logs = server.stdout_text() + server.stderr_text()
    assert PASSWORD not in logs


# --- certificates that must be refused --------------------------------------------------------------

@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_system_roots_do_not_trust_a_private_ca(make_server, postgres_tls, host):
    output = refusal(make_server, postgres_tls.url(host))
    assert f"TLS with the database at {host}:{postgres_tls.port} failed" in output, output
    assert "the server's certificate is not trusted" in output, output
    assert "by the system's CA certificates; for a private CA add sslrootcert=/path/to/ca.pem to the URL" in output, output


def test_another_ca_is_not_trusted(make_server, postgres_tls, tmp_path):
    other = ThrowawayCA(tmp_path / "other-pki", name="Some other CA")
    output = refusal(make_server, postgres_tls.url(sslrootcert=other.path))
    assert f"TLS with the database at localhost:{postgres_tls.port} failed" in output, output
    assert "the server's certificate is not trusted" in output, output
    assert f"by the CA certificates in sslrootcert={other.path}" in output, output


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_certificate_for_another_host_is_refused(make_server, postgres_tls, tls_pki, host):
    ca, _ = tls_pki
    # Trusted CA, but the certificate names another server (and no IP address).
    postgres_tls.start(certificate=ca.issue(names=("db.example.org",)))
    output = refusal(make_server, postgres_tls.url(host, sslrootcert=ca.path))
    assert f"TLS with the database at {host}:{postgres_tls.port} failed: the server's certificate is not valid for {host}" \
        in output, output


def test_require_refuses_a_server_without_tls(make_server, postgres_tls, tls_pki):
    ca, _ = tls_pki
    postgres_tls.start(ssl=False)
    output = refusal(make_server, postgres_tls.url(sslrootcert=ca.path))
    assert f"the database at localhost:{postgres_tls.port} does not accept TLS" in output, output


def test_prefer_goes_without_tls_when_the_server_has_none(make_server, postgres_tls, tls_pki):
    # libpq's meaning of prefer, kept: it protects only against a passive listener, never an active one.
    ca, _ = tls_pki
    postgres_tls.start(ssl=False)
    database = postgres_tls.create_database()
    server = make_server(database_url=postgres_tls.url(database=database, sslmode="prefer", sslrootcert=ca.path)).start()
    assert http_status(server.url + "/readyz") == 200
    connections = postgres_tls.switchyard_connections(database)
    assert connections and all(ssl == "f" for ssl, _ in connections), connections


# --- configuration refused at start ------------------------------------------------------------------

def test_bad_sslrootcert_files_stop_the_server(make_server, tmp_path):
    # Checked when the database opens, before any connection: the port is never reached.
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a binary, not PEM")
    port = free_port()
    for path, reason in [(tmp_path / "missing.pem", "no such file"), (empty, "the file is empty"),
                         (not_pem, "no certificate in PEM form")]:
        url = f"postgres://postgres:{PASSWORD}@localhost:{port}/postgres?sslmode=require&sslrootcert={path}"
        output = refusal(make_server, url)
        assert f"sslrootcert={path}: {reason}" in output, output


@pytest.mark.parametrize("query", ["sslrootcert=/etc/ca.pem", "sslmode=disable&sslrootcert=/etc/ca.pem"])
def test_sslrootcert_without_tls_stops_the_server(make_server, query):
    output = refusal(make_server, f"postgres://postgres:{PASSWORD}@localhost:{free_port()}/postgres?{query}")
    assert "sslrootcert needs sslmode=require" in output, output
