"""End-to-end checks of outgoing mail: the real binary talking to a real SMTP server (aiosmtpd).

Creating a user queues a welcome message in the outbox (`mail_messages`); the mail sender polls
every second and delivers it over SMTP (`sent`), or logs it without --smtp-url (`logged`). A failed
attempt is retried 5 s later, then 10 s, ...; that state lives in the database, so it survives a
restart of the server.
"""

import email.utils
import re
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone

import requests

from conftest import SMTPSink, free_port

SUBJECT = "Your Switchyard account"


# --- helpers -------------------------------------------------------------------------------------

def wait_until(check, timeout, what, interval=0.1):
    """Polls check() until it returns something truthy, which it returns; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


class Client:
    """The HTTP API of one server, as the bootstrap owner."""

    def __init__(self, server, token):
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def create_user(self, **fields):
        response = self.session.post(self.server.url + "/v1/users", json=fields, timeout=10)
        assert response.status_code == 201, f"{response.status_code} {response.text}\n{self.server.log_tail()}"
        return response.json()

    def outbox(self, **query):
        response = self.session.get(self.server.url + "/v1/outbox", params=query, timeout=10)
        assert response.status_code == 200, f"{response.status_code} {response.text}"
        return response.json()["data"]

    def message_to(self, recipient):
        """The one outbox message to recipient (or None while there is none)."""
        messages = [m for m in self.outbox() if m["recipient"] == recipient]
        assert len(messages) <= 1, f"more than one message to {recipient}: {messages}"
        return messages[0] if messages else None

    def wait_for_status(self, recipient, status, timeout=10.0):
        def check():
            message = self.message_to(recipient)
            return message if message and message["status"] == status else None
        try:
            return wait_until(check, timeout, f"message to {recipient} {status}")
        except AssertionError as error:
            raise AssertionError(f"{error}; outbox: {self.outbox()}\n{self.server.log_tail()}") from None


def start_with_owner(server):
    """Starts server and returns a Client signed in with the owner token printed on first start."""
    server.start()
    return Client(server, server.bootstrap_credentials()["token"])


def stored_message(database_url, message_id):
    """(status, attempts, last_error) of a message, read straight from the database."""
    sql = "SELECT status, attempts, last_error FROM mail_messages WHERE id = '%s'" % message_id
    if database_url.startswith("sqlite://"):
        path = database_url[len("sqlite://"):]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            row = connection.execute(sql).fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])
    output = subprocess.run(["psql", "-X", "-At", "-F", "\t", "-d", database_url, "-c", sql], check=True,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30).stdout
    if not output.strip():
        return None
    status, attempts, last_error = output.rstrip("\n").split("\t", 2)
    return status, int(attempts), last_error or None


def received_by(sink, recipient):
    return [m for m in sink.received() if recipient in m["rcpt_tos"]]


def body_text(received):
    """The received body with CRLF line ends folded to LF."""
    return received["body"].replace("\r\n", "\n")


# --- delivery ------------------------------------------------------------------------------------

def test_mail_is_delivered_over_smtp(make_server, smtp_sink):
    server = make_server(smtp_url=smtp_sink.url, extra_args=["--mail-from", "Switchyard Test <noreply@example.com>"])
    client = start_with_owner(server)
    sent_after = datetime.now(timezone.utc)

    created = client.create_user(email="ann@example.com", role="member")
    assert created["user"]["email"] == "ann@example.com"

    received = smtp_sink.wait_for(lambda m: "ann@example.com" in m["rcpt_tos"], timeout=10)
    assert received["subject"] == SUBJECT
    assert received["mail_from"] == "noreply@example.com"
    assert received["rcpt_tos"] == ["ann@example.com"]

    outboxed = client.wait_for_status("ann@example.com", "sent", timeout=5)
    assert outboxed["attempts"] == 1
    assert outboxed.get("last_error") is None
    assert outboxed["subject"] == SUBJECT
    assert outboxed.get("sent_at")

    headers = received["message"]
    assert email.utils.parseaddr(headers["From"]) == ("Switchyard Test", "noreply@example.com")
    assert [address for _, address in email.utils.getaddresses(headers.get_all("To"))] == ["ann@example.com"]
    assert headers["Subject"] == SUBJECT
    date = email.utils.parsedate_to_datetime(headers["Date"])
    assert date.tzinfo is not None, headers["Date"]
    assert sent_after - timedelta(minutes=1) <= date <= datetime.now(timezone.utc) + timedelta(minutes=1), headers["Date"]
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", headers["Message-ID"]), headers["Message-ID"]
    assert headers["Message-ID"] == f"<{outboxed['id']}@switchyard>"
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert len(headers.get_all(name)) == 1, f"{name} appears {len(headers.get_all(name))} times"
    assert headers.get_content_type() == "text/plain"
    assert headers.get_content_charset() == "utf-8"

    body = body_text(received)
    assert "role member" in body
    assert body.rstrip("\n") == outboxed["body"]
    # Nothing else went out: the owner created on first start gets no mail.
    assert len(smtp_sink.received()) == 1


def test_mail_body_with_dot_line_and_non_ascii_arrives_intact(make_server, smtp_sink):
    # The welcome body has no free-text line of its own, so the public URL (which the body quotes)
    # carries the lines "." and "..": unstuffed wrongly, "." would end the SMTP DATA early.
    server = make_server(smtp_url=smtp_sink.url)
    public_url = f"http://127.0.0.1:{server.port}/\n.\n..\n.dot"
    server.extra_args += ["--public-url", public_url]
    client = start_with_owner(server)

    name = "Zoë Ünïcødé 日本語 🚂"
    client.create_user(email="zoe@example.com", role="admin", name=name)

    received = smtp_sink.wait_for(lambda m: "zoe@example.com" in m["rcpt_tos"], timeout=10)
    outboxed = client.wait_for_status("zoe@example.com", "sent", timeout=5)
    assert received["subject"] == SUBJECT

    body = body_text(received)
    assert body.rstrip("\n") == outboxed["body"], f"received {body!r}\nqueued {outboxed['body']!r}"
    lines = body.split("\n")
    assert f"Hello {name}," in lines
    assert "." in lines and ".." in lines and any(line.startswith(".dot") for line in lines), lines
    assert "role admin" in body
    assert lines[-2].endswith("the password you were given."), lines  # the text after the dots arrived too


# --- outage and restart ---------------------------------------------------------------------------

def test_mail_survives_smtp_outage_and_server_restart(make_server, database_url):
    smtp_port = free_port()  # nothing listens here until the sink starts below
    sink = SMTPSink(port=smtp_port)
    server = make_server(database_url=database_url, smtp_url=sink.url)
    client = start_with_owner(server)
    owner = server.bootstrap_credentials()

    client.create_user(email="bob@example.com", role="developer")

    def failed_once():
        message = client.message_to("bob@example.com")
        return message if message and message["status"] == "queued" and message["attempts"] >= 1 else None
    queued = wait_until(failed_once, 10, "a failed first attempt")
    assert queued.get("last_error"), queued
    assert str(smtp_port) in queued["last_error"], queued["last_error"]
    assert queued.get("next_attempt_at")

    assert server.stop() == 0, f"the server did not exit cleanly on SIGTERM\n{server.log_tail()}"
    stored = stored_message(server.database_url, queued["id"])
    assert stored is not None and stored[0] == "queued" and stored[1] >= 1 and stored[2], stored

    stdout_before_restart = len(server.stdout_text())
    sink.start()
    try:
        server.start()
        # The first retry is due 5 s after the first failure (10 s if a second one got in).
        received = sink.wait_for(lambda m: "bob@example.com" in m["rcpt_tos"], timeout=20)
        assert received["subject"] == SUBJECT
        assert "role developer" in body_text(received)

        sent = client.wait_for_status("bob@example.com", "sent", timeout=5)
        assert sent["id"] == queued["id"]
        assert sent["attempts"] == stored[1] + 1
        assert sent.get("last_error") is None
        # Exactly once: nothing more arrives over a few more sender polls.
        time.sleep(3)
        assert len(received_by(sink, "bob@example.com")) == 1, sink.received()
        assert len(sink.received()) == 1, sink.received()
    finally:
        sink.stop()

    second_start = server.stdout_text()[stdout_before_restart:]
    assert "First start" not in second_start, second_start
    assert owner["password"] not in second_start and owner["token"] not in second_start, second_start
    assert owner["password"] not in server.stderr_text()


# --- no SMTP server configured -------------------------------------------------------------------

def test_mail_logged_without_smtp(make_server):
    server = make_server()
    client = start_with_owner(server)
    owner = server.bootstrap_credentials()

    created = client.create_user(email="carol@example.com", role="admin")
    password = created.get("password")
    assert password, created  # generated, since none was given

    message = client.wait_for_status("carol@example.com", "logged", timeout=10)
    assert message["attempts"] == 1
    assert password not in message["body"]

    log = wait_until(lambda: message["id"] in server.stderr_text() and server.stderr_text(), 5,
                     f"{message['id']} in the server log")
    assert password not in log
    assert password not in server.stdout_text()
    assert owner["password"] not in log and owner["token"] not in log
