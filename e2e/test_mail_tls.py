"""End-to-end checks of mail over TLS: the real binary and a real aiosmtpd server with a certificate
from a throwaway CA made for each test.

`smtp+starttls://` upgrades with STARTTLS before AUTH; `smtps://` is TLS from the first byte;
`?ca=` names the roots to trust instead of the system's. Verification of the certificate and its
name is always on, so a server the CA does not vouch for gets nothing, and the outbox says why
(`last_error`) and retries like after any other failure.
"""

import datetime
import ipaddress
import secrets
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import SWITCHYARD_BIN
from test_mail import SUBJECT, start_with_owner, wait_until

# Characters that need percent-encoding in a URL, so the password goes through decoding too.
CREDENTIALS = ("mailer@example.com", "pa ss:w@rd/é%1")


def assert_no_secret(server, client, secret):
    """secret appears in no log line and in no answer of the outbox."""
    outbox = client.session.get(server.url + "/v1/outbox", timeout=10).text
    for where, text in (("stdout", server.stdout_text()), ("stderr", server.stderr_text()), ("GET /v1/outbox", outbox)):
        assert secret not in text, f"the SMTP password is in {where}"


def first_failure(client, recipient, timeout=10):
    """The outbox message to recipient once an attempt has failed."""
    def check():
        message = client.message_to(recipient)
        return message if message and message["attempts"] >= 1 and message.get("last_error") else None
    try:
        return wait_until(check, timeout, f"a failed attempt for {recipient}")
    except AssertionError as error:
        raise AssertionError(f"{error}; outbox: {client.outbox()}\n{client.server.log_tail()}") from None


# --- a CA of our own ----------------------------------------------------------------------------------

class ThrowawayCA:
    """A certificate authority made for one test: its certificate in `path` (PEM), for `?ca=`, and
    issue() for server certificates it signs. Nothing here is trusted by the system."""

    def __init__(self, folder, name="Switchyard e2e CA"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name).issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256()))
        self.path = self.folder / f"ca-{secrets.token_hex(4)}.pem"
        self.path.write_bytes(self._pem(self._certificate))

    @staticmethod
    def _pem(certificate):
        return certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, names=("localhost", "127.0.0.1", "::1")):
        """(certificate path, key path) of a server certificate for names (DNS names or IPs)."""
        def general_name(name):
            try:
                return x509.IPAddress(ipaddress.ip_address(name))
            except ValueError:
                return x509.DNSName(name)

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([general_name(name) for name in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256()))
        stem = self.folder / f"server-{secrets.token_hex(4)}"
        certificate_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        certificate_path.write_bytes(self._pem(certificate))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return certificate_path, key_path


@pytest.fixture
def throwaway_ca(tmp_path):
    """A CA of this test's own, and nobody else's; see ThrowawayCA."""
    return ThrowawayCA(tmp_path / "pki")


# --- delivery --------------------------------------------------------------------------------------

@pytest.mark.parametrize("tls, host", [
    ("starttls", "localhost"),   # a DNS name: sent as SNI and matched against the certificate's DNS names
    ("implicit", "127.0.0.1"),   # an IP literal: no SNI; matched against the certificate's IP addresses
    ("starttls", "127.0.0.1"),
    ("implicit", "localhost"),
])
def test_mail_is_delivered_over_tls_with_auth(make_server, make_smtp_sink, throwaway_ca, tls, host):
    sink = make_smtp_sink(tls=tls, certificate=throwaway_ca.issue(), credentials=CREDENTIALS)
    server = make_server(smtp_url=sink.url_with(ca=throwaway_ca.path, host=host))
    client = start_with_owner(server)

    client.create_user(email="ann@example.com", role="member")

    received = sink.wait_for(lambda m: "ann@example.com" in m["rcpt_tos"], timeout=10)
    assert received["subject"] == SUBJECT
    assert received["tls"] in ("TLSv1.2", "TLSv1.3"), received["tls"]
    assert received["user"] == CREDENTIALS[0]
    sent = client.wait_for_status("ann@example.com", "sent", timeout=5)
    assert sent["attempts"] == 1
    assert sent.get("last_error") is None
    assert len(sink.received()) == 1
    assert_no_secret(server, client, CREDENTIALS[1])


# --- certificates that must be refused --------------------------------------------------------------

@pytest.mark.parametrize("tls", ["starttls", "implicit"])
@pytest.mark.parametrize("trusted", ["system roots", "another CA"])
def test_untrusted_certificate_gets_nothing(make_server, make_smtp_sink, throwaway_ca, tmp_path, tls, trusted):
    sink = make_smtp_sink(tls=tls, certificate=throwaway_ca.issue(), credentials=CREDENTIALS)
    ca = None if trusted == "system roots" else ThrowawayCA(tmp_path / "other-pki", name="Some other CA").path
    server = make_server(smtp_url=sink.url_with(ca=ca))
    client = start_with_owner(server)

    client.create_user(email="bob@example.com", role="member")

    failed = first_failure(client, "bob@example.com")
    assert failed["status"] == "queued", failed  # retried later, like any failed attempt
    assert failed.get("next_attempt_at"), failed
    assert "certificate is not trusted" in failed["last_error"], failed["last_error"]
    assert f"127.0.0.1:{sink.port}" in failed["last_error"], failed["last_error"]
    assert "mail attempt failed" in server.stderr_text()
    assert sink.received() == []
    assert_no_secret(server, client, CREDENTIALS[1])


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_certificate_for_another_name_gets_nothing(make_server, make_smtp_sink, throwaway_ca, host):
    # Trusted CA, but the certificate is for another server.
    sink = make_smtp_sink(tls="implicit", certificate=throwaway_ca.issue(names=("mail.example.org",)), credentials=CREDENTIALS)
    server = make_server(smtp_url=sink.url_with(ca=throwaway_ca.path, host=host))
    client = start_with_owner(server)

    client.create_user(email="cy@example.com", role="member")

    failed = first_failure(client, "cy@example.com")
    assert failed["status"] == "queued", failed
    assert f"certificate is not valid for {host}" in failed["last_error"], failed["last_error"]
    assert sink.received() == []
    assert_no_secret(server, client, CREDENTIALS[1])


def test_failed_tls_is_retried_with_backoff_then_delivered(make_server, make_smtp_sink, throwaway_ca):
    # First the server shows a certificate from a CA nobody trusts; after a fix on its side (a
    # certificate from the trusted CA, same port), the retry 5 s later goes through.
    untrusted = ThrowawayCA(throwaway_ca.folder / "untrusted", name="Untrusted CA")
    sink = make_smtp_sink(tls="starttls", certificate=untrusted.issue(), credentials=CREDENTIALS)
    server = make_server(smtp_url=sink.url_with(ca=throwaway_ca.path))
    client = start_with_owner(server)

    client.create_user(email="dee@example.com", role="member")
    failed = first_failure(client, "dee@example.com")
    assert failed["attempts"] == 1 and "not trusted" in failed["last_error"], failed

    sink.stop()
    sink.certificate = throwaway_ca.issue()
    sink.start()

    received = sink.wait_for(lambda m: "dee@example.com" in m["rcpt_tos"], timeout=20)
    assert received["user"] == CREDENTIALS[0] and received["tls"], received
    sent = client.wait_for_status("dee@example.com", "sent", timeout=5)
    assert sent["attempts"] == 2
    assert sent.get("last_error") is None
    assert_no_secret(server, client, CREDENTIALS[1])


def test_starttls_not_offered_gets_nothing(make_server, make_smtp_sink):
    sink = make_smtp_sink()  # plain SMTP, no STARTTLS
    user, password = "mailer", "never-sent-in-clear"
    server = make_server(smtp_url=f"smtp+starttls://{user}:{password}@127.0.0.1:{sink.port}")
    client = start_with_owner(server)

    client.create_user(email="eve@example.com", role="member")

    failed = first_failure(client, "eve@example.com")
    assert failed["status"] == "queued", failed
    assert failed["last_error"] == f"the SMTP server 127.0.0.1:{sink.port} does not offer STARTTLS", failed
    assert sink.received() == []
    assert_no_secret(server, client, password)


# --- configuration refused at start ------------------------------------------------------------------

def run_serve(make_server, smtp_url):
    """switchyard serve with smtp_url; it must stop at start. Returns (exit code, stdout + stderr)."""
    server = make_server(smtp_url=smtp_url)
    result = subprocess.run(server.command(), cwd=server.workdir, capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("smtp_url, message", [
    ("smtp://mailer:hunter2-secret@192.0.2.10:25", "use smtp+starttls://"),
    ("smtps://mailer:hunter2-secret@127.0.0.1:465?verify=none", "unknown options: verify"),
    ("smtps://mailer:hunter2-secret@127.0.0.1:465?ca=/nonexistent/ca.pem", "cannot read CA certificates"),
])
def test_unsafe_or_unknown_smtp_settings_stop_the_server(make_server, smtp_url, message):
    assert SWITCHYARD_BIN.exists(), f"no switchyard binary at {SWITCHYARD_BIN}"
    code, output = run_serve(make_server, smtp_url)
    assert code != 0, output
    assert message in output, output
    assert "hunter2-secret" not in output, output


def test_plain_smtp_with_credentials_on_loopback_still_works(make_server, make_smtp_sink):
    sink = make_smtp_sink(credentials=CREDENTIALS)
    server = make_server(smtp_url=sink.url)
    assert sink.url.startswith("smtp://")
    client = start_with_owner(server)

    client.create_user(email="fay@example.com", role="member")

    received = sink.wait_for(lambda m: "fay@example.com" in m["rcpt_tos"], timeout=10)
    assert received["user"] == CREDENTIALS[0] and received["tls"] is None, received
    client.wait_for_status("fay@example.com", "sent", timeout=5)
