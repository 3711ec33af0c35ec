"""Webhooks end to end: the real binary delivering to real HTTP receivers on loopback.

Every delivery is verified with the PyPI `standardwebhooks` library, as a receiver in the wild
would, before and after a secret rotation (when both signatures are sent). A receiver that answers
500 gets its endpoint disabled and the alert mail arrives at a real SMTP server (aiosmtpd); one that
answers 410 is disabled at once. FIFO order holds when an event fails first. Outbound safety:
loopback is refused unless allowed, by address and by a name that resolves to it, and metadata
addresses are refused even inside an allowed network.

The server runs with `--allowed-target-networks 127.0.0.0/8,::1/128 --retry-schedule
0,100ms,200ms` (webhook_support.WEBHOOK_ARGS), so retries take milliseconds. Each check runs on
SQLite and, when $SWITCHYARD_TEST_POSTGRES_URL is set, on PostgreSQL.
"""

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from webhook_support import WEBHOOK_ARGS, Receiver, minutes_ago, missing_summary, start_owner, wait_until

WORK_ORDER = {"key": "work_order", "name": "Work order", "fields": [
    {"key": "number", "type": "text", "required": True},
    {"key": "status", "type": "enum", "options": ["open", "in_progress", "completed"], "default": "open"},
    {"key": "trade", "type": "enum", "options": ["HVAC", "PLUMBING", "ELECTRICAL"]},
    {"key": "nte", "type": "number"},
]}


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def verify(secret, delivery):
    """The body, parsed, if the delivery verifies with secret; raises WebhookVerificationError if not."""
    return Webhook(secret).verify(delivery.body, delivery.headers)


def wait_for_ids(receiver, ids, path, timeout, server):
    ids = list(ids)
    return wait_until(lambda: all(receiver.ids(path).get(i) for i in ids), timeout,
                      f"deliveries of {len(ids)} events at {path}",
                      lambda: f"{missing_summary(ids, receiver.ids(path))}\n{server.log_tail()}")


# --- signatures, bodies, rotation, ping ------------------------------------------------------------

def test_every_delivery_verifies_with_standardwebhooks(make_server, database_url, receiver):
    server = make_server(database_url=database_url, extra_args=WEBHOOK_ARGS)
    api, ws = start_owner(server)
    api.post(f"/v1/workspaces/{ws}/object-types", WORK_ORDER)

    everything = api.create_webhook(ws, url=receiver.url("/all"), name="everything",
                                    subscriptions=[{"events": ["*"]}],
                                    headers={"X-Tenant": "acme"}, secret_headers={"Authorization": "Bearer s3cr3t-e2e"})
    assert everything["id"].startswith("ep_") and everything["status"] == "active", everything
    secret = everything["secret"]
    assert secret.startswith("whsec_"), everything
    assert everything["secret_headers"] == ["Authorization"], everything
    assert "s3cr3t-e2e" not in str(api.webhook(ws, everything["id"]))
    plumbing = api.create_webhook(ws, url=receiver.url("/plumbing"), subscriptions=[
        {"object_type": "work_order", "events": ["updated"], "filters": {"trade": ["PLUMBING"]}, "changed": ["status"]}])

    # Record events and host events, after both endpoints exist.
    orders = [api.post(f"/v1/workspaces/{ws}/records/work_order", {"fields": {"number": f"WO-{n}", "trade": trade}})
              for n, trade in enumerate(["PLUMBING", "HVAC", "PLUMBING"])]
    for order in orders:
        api.call("PATCH", f"/v1/workspaces/{ws}/records/work_order/{order['id']}", {"fields": {"status": "in_progress"}})
    api.call("PATCH", f"/v1/workspaces/{ws}/records/work_order/{orders[0]['id']}", {"fields": {"nte": 600}})
    api.post_events(ws, 20, type="invoice.paid")

    # On PostgreSQL an event shows once no older transaction is open: a moment, at most.
    log = wait_until(lambda: (lambda log: log if len(log) == 3 + 3 + 1 + 20 else None)(api.events(ws)), 10,
                     "27 events in the log", lambda: str([e["type"] for e in api.events(ws)]))
    by_id = {event["id"]: event for event in log}
    wait_for_ids(receiver, by_id, "/all", 30, server)

    for delivery in receiver.received("/all"):
        body = verify(secret, delivery)
        event = by_id[delivery.webhook_id]
        assert body == {"type": event["type"], "timestamp": event["occurred_at"], "data": event}, body
        assert delivery.headers["content-type"].startswith("application/json"), delivery.headers
        assert delivery.headers["user-agent"].startswith("Switchyard-Webhooks/"), delivery.headers
        assert abs(int(delivery.headers["webhook-timestamp"]) - delivery.received_at) < 60, delivery.headers
        assert delivery.headers["x-tenant"] == "acme" and delivery.headers["authorization"] == "Bearer s3cr3t-e2e"
        with pytest.raises(WebhookVerificationError):  # a tampered body does not verify
            Webhook(secret).verify(delivery.body.replace(b'"', b"'", 1), delivery.headers)

    # The filtered endpoint got the status changes of plumbing orders only: not HVAC, not the nte edit.
    wanted = [e["id"] for e in log if e["type"] == "work_order.updated" and e["data"]["fields"].get("trade") == "PLUMBING"
              and "status" in e.get("changed_fields", {})]
    assert len(wanted) == 2
    wait_for_ids(receiver, wanted, "/plumbing", 10, server)
    time.sleep(0.5)  # anything wrongly matched would have arrived with the rest
    assert sorted(receiver.ids("/plumbing")) == sorted(wanted), receiver.ids("/plumbing")
    for delivery in receiver.received("/plumbing"):
        verify(plumbing["secret"], delivery)

    # The delivery log: all succeeded, one attempt each, the secret header redacted.
    deliveries = api.deliveries(ws, everything["id"])
    assert sorted(d["event_id"] for d in deliveries) == sorted(by_id), deliveries[:3]
    assert {d["status"] for d in deliveries} == {"succeeded"}, [d for d in deliveries if d["status"] != "succeeded"][:3]
    assert all(d["id"].startswith("dlv_") and d["endpoint_id"] == everything["id"] for d in deliveries)
    attempts = api.attempts(ws, everything["id"], deliveries[0]["id"])
    assert len(attempts) == 1 and attempts[0]["succeeded"] and attempts[0]["response_status"] == 204, attempts
    headers = {k.lower(): v for k, v in attempts[0]["request_headers"].items()}
    assert headers["authorization"] == "[redacted]" and headers["x-tenant"] == "acme", headers
    assert headers["webhook-id"] == deliveries[0]["event_id"], headers
    assert "s3cr3t-e2e" not in str(attempts)

    # Rotation: the new secret alone, and the old one, both verify every delivery for 24 hours.
    rotated = api.post(f"/v1/workspaces/{ws}/webhooks/{everything['id']}/rotate-secret", expect=(200,))["secret"]
    assert rotated.startswith("whsec_") and rotated != secret
    assert api.get(f"/v1/workspaces/{ws}/webhooks/{everything['id']}/secret") == {"secret": rotated}
    after_rotation = api.post_events(ws, 10, type="invoice.paid")
    wait_for_ids(receiver, after_rotation, "/all", 30, server)
    for delivery in (d for d in receiver.received("/all") if d.webhook_id in after_rotation):
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2, delivery.headers["webhook-signature"]
        assert verify(rotated, delivery)["data"]["id"] == delivery.webhook_id
        assert verify(secret, delivery)["data"]["id"] == delivery.webhook_id
        new_only = {**delivery.headers, "webhook-signature": delivery.headers["webhook-signature"].split(" ")[0]}
        Webhook(rotated).verify(delivery.body, new_only)  # the new one comes first

    # Ping: sent now, signed, and answered with the attempt.
    before = len(receiver.received("/all"))
    ping = api.post(f"/v1/workspaces/{ws}/webhooks/{everything['id']}/ping", expect=(200,))
    assert ping["succeeded"] is True and ping["response_status"] == 204, ping
    assert ping["duration_ms"] >= 0 and ping["url"] == receiver.url("/all"), ping
    pinged = wait_until(lambda: [d for d in receiver.received("/all")[before:] if d.json().get("type") == "webhook.ping"],
                        5, "the webhook.ping at the receiver")
    assert verify(rotated, pinged[0])["type"] == "webhook.ping"


# --- failures: auto-disable with the alert mail, 410, recover -------------------------------------

def test_failing_endpoint_is_disabled_and_the_alert_mail_arrives(make_server, database_url, smtp_sink):
    answers = {"status": 500}
    receiver = Receiver(answer=lambda delivery: answers["status"]).start()
    try:
        server = make_server(database_url=database_url, smtp_url=smtp_sink.url,
                             extra_args=WEBHOOK_ARGS + ["--webhook-disable-after-failures", "2"])
        api, ws = start_owner(server)
        since = minutes_ago(1)
        endpoint = api.create_webhook(ws, url=receiver.url(), name="Flaky dispatch", subscriptions=[{"events": ["*"]}],
                                      alert_emails=["oncall@example.com"])
        failed = api.post_events(ws, 2)

        def disabled():
            current = api.webhook(ws, endpoint["id"])
            return current if current["status"] == "disabled" else None
        current = wait_until(disabled, 20, "the endpoint disabled after 2 exhausted deliveries",
                             lambda: f"{api.webhook(ws, endpoint['id'])}\n{api.deliveries(ws, endpoint['id'])}")
        assert current.get("disabled_at") and current.get("disabled_reason"), current

        # Each delivery went through the whole schedule: three attempts, 100 ms and 200 ms (±20 %) apart.
        deliveries = api.deliveries(ws, endpoint["id"], status="failed")
        assert sorted(d["event_id"] for d in deliveries) == sorted(failed), deliveries
        for delivery in deliveries:
            assert delivery["attempts"] == 3 and delivery["last_status"] == 500, delivery
            attempts = api.attempts(ws, endpoint["id"], delivery["id"])
            assert [a["number"] for a in attempts] == [1, 2, 3], attempts
            assert all(a["response_status"] == 500 and not a["succeeded"] and a["error"] for a in attempts), attempts
        assert receiver.ids() == {i: 3 for i in failed}, receiver.ids()

        # The alert: to the endpoint's alert address and to the owner, naming the endpoint and what failed.
        for recipient in ("oncall@example.com", "owner@example.com"):
            mail = smtp_sink.wait_for(lambda m: recipient in m["rcpt_tos"], timeout=20)
            text = mail["subject"] + "\n" + mail["body"]
            assert "Flaky dispatch" in text or endpoint["id"] in text, text
            assert "500" in text, text
        activity = api.get("/v1/activity", limit=200)["data"]
        assert any("disabled" in entry["action"] and endpoint["id"] in str(entry) for entry in activity), \
            [(e["action"], e.get("target_id")) for e in activity[:10]]

        # While disabled, events are recorded as failed deliveries and not sent.
        while_disabled = api.post_events(ws, 1)
        wait_until(lambda: any(d["event_id"] == while_disabled[0] for d in api.deliveries(ws, endpoint["id"], status="failed")),
                   10, "the event recorded as a failed delivery while disabled",
                   lambda: str(api.deliveries(ws, endpoint["id"])))
        time.sleep(0.5)
        assert while_disabled[0] not in receiver.ids()

        # Re-enabled, it gets new events; recover sends what failed.
        answers["status"] = 204
        assert api.call("PATCH", f"/v1/workspaces/{ws}/webhooks/{endpoint['id']}", {"status": "active"})["status"] == "active"
        recovered = api.post(f"/v1/workspaces/{ws}/webhooks/{endpoint['id']}/recover", {"since": since}, expect=(202,))
        assert recovered == {"deliveries": 3}, recovered
        fresh = api.post_events(ws, 1)
        everything = failed + while_disabled + fresh
        wait_until(lambda: all(receiver.ids().get(i, 0) > (3 if i in failed else 0) for i in everything), 20,
                   "the recovered and the new deliveries", lambda: str(receiver.ids()))
        wait_until(lambda: {d["status"] for d in api.deliveries(ws, endpoint["id"])} == {"succeeded"}, 10,
                   "every delivery succeeded", lambda: str(api.deliveries(ws, endpoint["id"])))
    finally:
        receiver.stop()


def test_410_disables_at_once_and_retry_sends_again(make_server, database_url):
    answers = {"status": 410}
    receiver = Receiver(answer=lambda delivery: answers["status"]).start()
    try:
        server = make_server(database_url=database_url, extra_args=WEBHOOK_ARGS)
        api, ws = start_owner(server)
        endpoint = api.create_webhook(ws, url=receiver.url(), subscriptions=[{"events": ["e2e.tick"]}])
        [event] = api.post_events(ws, 1)
        wait_until(lambda: api.webhook(ws, endpoint["id"])["status"] == "disabled", 10, "disabled after a 410",
                   lambda: str(api.webhook(ws, endpoint["id"])))
        time.sleep(0.5)  # no retry follows a 410
        assert receiver.ids() == {event: 1}, receiver.ids()
        [delivery] = api.deliveries(ws, endpoint["id"])
        assert delivery["status"] == "failed" and delivery["last_status"] == 410, delivery

        answers["status"] = 204
        api.call("PATCH", f"/v1/workspaces/{ws}/webhooks/{endpoint['id']}", {"status": "active"})
        again = api.post(f"/v1/workspaces/{ws}/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/retry", expect=(202,))
        assert again["id"] == delivery["id"] and again["status"] == "pending", again
        wait_until(lambda: receiver.ids().get(event) == 2, 10, "the retried delivery", lambda: str(receiver.ids()))
        wait_until(lambda: api.deliveries(ws, endpoint["id"])[0]["status"] == "succeeded", 10, "the retry recorded")
        assert [a["response_status"] for a in api.attempts(ws, endpoint["id"], delivery["id"])] == [410, 204]
    finally:
        receiver.stop()


# --- FIFO ----------------------------------------------------------------------------------------

def test_fifo_endpoint_receives_in_log_order_when_one_fails_first(make_server, database_url):
    failed_once = set()

    def answer(delivery):
        # The 5th event fails its first attempt: everything after it must wait for its retry.
        if delivery.json()["data"]["data"]["n"] == 4 and delivery.webhook_id not in failed_once:
            failed_once.add(delivery.webhook_id)
            return 503
        return 204
    receiver = Receiver(answer=answer).start()
    try:
        server = make_server(database_url=database_url, extra_args=WEBHOOK_ARGS)
        api, ws = start_owner(server)
        endpoint = api.create_webhook(ws, url=receiver.url(), ordering="fifo", subscriptions=[{"events": ["e2e.tick"]}])
        assert endpoint["ordering"] == "fifo"
        for n in range(30):  # one at a time, so the log order is the order they were posted in
            api.post(f"/v1/workspaces/{ws}/events", {"type": "e2e.tick", "data": {"n": n}}, expect=(201,))
        log = wait_until(lambda: (lambda ids: ids if len(ids) == 30 else None)([e["id"] for e in api.events(ws, type="e2e.tick")]),
                         10, "30 events in the log")
        wait_for_ids(receiver, log, "/hook", 30, server)
        arrivals = [d.webhook_id for d in receiver.received()]
        assert len(failed_once) == 1 and arrivals.count(log[4]) == 2, arrivals
        # The first arrival of each, the failed attempt aside, is the log order.
        assert arrivals[:4] == log[:4] and arrivals[4] == arrivals[5] == log[4], arrivals
        assert arrivals[5:] == log[4:], arrivals
    finally:
        receiver.stop()


# --- outbound safety -----------------------------------------------------------------------------

def test_blocked_targets_are_refused(make_server, receiver):
    # No --allowed-target-networks: loopback is refused, by address and by a name resolving to it.
    server = make_server()
    api, ws = start_owner(server)
    never = [{"events": ["e2e.never_posted"]}]  # nothing is ever sent, whatever the answer
    for url in (receiver.url(), f"http://localhost:{receiver.port}/hook", f"http://[::1]:{receiver.port}/hook",
                "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/"):
        problem = api.post(f"/v1/workspaces/{ws}/webhooks", {"url": url, "subscriptions": never}, expect=(422,))
        assert problem["type"] == "urn:switchyard:problem:blocked-target" and problem["field"] == "url", (url, problem)
    for url in ("ftp://example.test/x", "not a url", "http:///nohost"):
        problem = api.post(f"/v1/workspaces/{ws}/webhooks", {"url": url, "subscriptions": never}, expect=(422,))
        assert problem["type"] == "urn:switchyard:problem:validation-failed" and problem["field"] == "url", (url, problem)
    assert api.get(f"/v1/workspaces/{ws}/webhooks")["data"] == []
    assert receiver.received() == []


def test_metadata_addresses_are_refused_inside_allowed_networks(make_server):
    server = make_server(extra_args=["--allowed-target-networks", "169.254.0.0/16,fd00::/8"])
    api, ws = start_owner(server)
    never = [{"events": ["e2e.never_posted"]}]
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/meta-data/"):
        problem = api.post(f"/v1/workspaces/{ws}/webhooks", {"url": url, "subscriptions": never}, expect=(422,))
        assert problem["type"] == "urn:switchyard:problem:blocked-target", (url, problem)
    assert api.get(f"/v1/workspaces/{ws}/webhooks")["data"] == []
