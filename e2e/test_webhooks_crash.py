"""Webhook delivery survives a process killed mid-delivery, and two processes share the work.

1. `switchyard serve` is killed with SIGKILL while it delivers 2,000 events and started again: every
   event reaches the receiver at least once (the deliveries in flight at the kill come again once
   their leases expire, within a minute). SQLite, and PostgreSQL when it is available.
2. Two `switchyard serve` processes on one PostgreSQL deliver 5,000 events to two endpoints, with
   events posted through both: every event reaches each endpoint, and none twice (counted by
   `webhook-id` at the receiver). Skipped without $SWITCHYARD_TEST_POSTGRES_URL.
"""

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from webhook_support import WEBHOOK_ARGS, API, Receiver, metric_sum, missing_summary, start_owner, wait_until


def test_serve_killed_mid_delivery_delivers_every_event_after_restart(make_server, database_url):
    receiver = Receiver().start()
    try:
        server = make_server(database_url=database_url, extra_args=WEBHOOK_ARGS)
        api, ws = start_owner(server)
        # 50 deliveries a second: the 2,000 take 40 s, so the kill lands mid-delivery however fast
        # the events are posted (the receiver itself answers at once, and the default timeout and
        # lease, 15 s and 60 s, stay).
        endpoint = api.create_webhook(ws, url=receiver.url(), subscriptions=[{"events": ["*"]}], rate_limit=50)
        posted = api.post_events(ws, 2000)
        assert len(set(posted)) == 2000
        wait_until(lambda: len(receiver.ids()) >= 100, 30, "100 deliveries before the kill",
                   lambda: f"received {len(receiver.ids())}\n{server.log_tail()}")
        server.kill()  # SIGKILL
        at_kill = len(receiver.ids())
        assert at_kill < 2000, "everything was delivered before the kill: the check tested nothing"

        server.start()
        api.call("PATCH", f"/v1/workspaces/{ws}/webhooks/{endpoint['id']}", {"rate_limit": None})
        wait_until(lambda: sorted(event["id"] for event in api.events(ws)) == sorted(posted), 10,
                   "the 2,000 posted events, and no other, in the log after the restart",
                   lambda: f"{len(api.events(ws))} events in the log")
        # The leases of the killed process's deliveries expire within a minute; then they are sent.
        wait_until(lambda: all(receiver.ids().get(i) for i in posted), 150,
                   f"every event delivered after the restart ({at_kill} distinct before the kill)",
                   lambda: f"{missing_summary(posted, receiver.ids())}\n{server.log_tail()}")
        counts = receiver.ids()
        assert set(counts) == set(posted), f"unexpected webhook-ids: {set(counts) - set(posted)}"
        again = sum(count - 1 for count in counts.values())
        print(f"delivered {len(posted)} events; {at_kill} distinct before the kill; {again} sent more than once")

        wait_until(lambda: {d["status"] for d in api.deliveries(ws, endpoint["id"])} == {"succeeded"}, 30,
                   "every delivery recorded as succeeded",
                   lambda: str([d for d in api.deliveries(ws, endpoint["id"]) if d["status"] != "succeeded"][:5]))
    finally:
        receiver.stop()


def test_two_processes_on_one_postgres_deliver_each_event_once(make_server, pg_database_url):
    receiver = Receiver().start()
    try:
        # One secret key for both: endpoint secrets are sealed with it.
        args = WEBHOOK_ARGS + ["--secret-key", secrets.token_hex(32)]
        first = make_server(database_url=pg_database_url, extra_args=args)
        api1, ws = start_owner(first)
        second = make_server(database_url=pg_database_url, extra_args=args).start()
        api2 = API(second.url, api1.token)

        api1.create_webhook(ws, url=receiver.url("/one"), subscriptions=[{"events": ["*"]}])
        api2.create_webhook(ws, url=receiver.url("/two"), subscriptions=[{"events": ["e2e.tick"]}])
        with ThreadPoolExecutor(2) as pool:
            halves = [pool.submit(api1.post_events, ws, 2500, first=0), pool.submit(api2.post_events, ws, 2500, first=2500)]
            posted = halves[0].result() + halves[1].result()
        assert len(set(posted)) == 5000

        for path in ("/one", "/two"):
            wait_until(lambda: all(receiver.ids(path).get(i) for i in posted), 180, f"5,000 deliveries at {path}",
                       lambda: f"{missing_summary(posted, receiver.ids(path))}\n{first.log_tail(20)}\n{second.log_tail(20)}")
        time.sleep(2)  # a duplicate would be on its way by now
        for path in ("/one", "/two"):
            counts = receiver.ids(path)
            twice = {i: c for i, c in counts.items() if c > 1}
            assert not twice, f"{len(twice)} events delivered more than once to {path}, e.g. {list(twice.items())[:5]}"
            assert set(counts) == set(posted), f"unexpected webhook-ids at {path}: {list(set(counts) - set(posted))[:5]}"

        shares = [metric_sum(s.url, "switchyard_webhook_attempts_total", outcome="succeeded") for s in (first, second)]
        print(f"succeeded attempts by process: {shares}")
        if None not in shares:
            assert sum(shares) == 10000, shares
    finally:
        receiver.stop()
