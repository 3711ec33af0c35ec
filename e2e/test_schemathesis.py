"""docs/openapi.yaml against the real server, by schemathesis (4.x).

Schemathesis generates requests from the document (valid and invalid ones, edge cases of the
schemas, ids and keys taken from earlier answers, short stateful sequences) and checks every
answer: no 5xx, a status code the document lists for the operation, the documented content type,
and a body that matches the documented schema. A server bug, or a document that has drifted from
the server, fails the test, and the schemathesis report (with a curl command reproducing each
failure) is printed.

It runs the `schemathesis run` command line in a subprocess: in schemathesis 4 that is the way to
run every phase (examples, coverage, fuzzing, stateful) against a live server; its Python API is a
pytest plugin making one test per operation, which does not fit a server started by a fixture.
The number of examples and the seed are fixed (override with $SWITCHYARD_SCHEMATHESIS_SEED and
$SWITCHYARD_SCHEMATHESIS_MAX_EXAMPLES), so a run takes about the same time each time.

Three runs against one server, and a fourth against a second one:
1. as the owner, over every operation but the two that sign out or revoke a credential and the two
   that take a webhook URL;
2. with a member's test token limited to a sandbox, fewer examples: the documented 403s;
3. `DELETE /v1/tokens/{token_id}` and `DELETE /v1/sessions/current`, with a throwaway token;
4. creating and changing webhook endpoints, on a server of its own where no event is ever appended:
   a generated URL could name any address, and there nothing is ever sent to it. In runs 1 to 3
   webhooks are those the test created, delivering to a receiver of its own on loopback.
Before them the test creates data (a sandbox workspace, object types with every kind of field,
records, events, a second user) and hands its ids and keys to schemathesis as dictionaries that
path parameters draw from part of the time: random ids alone would only reach the 404s of the
nested routes.

The SQLite run always happens; the same runs against PostgreSQL happen when
$SWITCHYARD_TEST_POSTGRES_URL is set. $SWITCHYARD_OPENAPI_SPEC points the test at another copy of
the document (to try a change, or to see the test fail on a broken one).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from webhook_support import WEBHOOK_ARGS, Receiver, wait_until

SPEC = Path(os.environ.get("SWITCHYARD_OPENAPI_SPEC", REPO_ROOT / "docs" / "openapi.yaml"))
SEED = int(os.environ.get("SWITCHYARD_SCHEMATHESIS_SEED", "20261124"))
MAX_EXAMPLES = int(os.environ.get("SWITCHYARD_SCHEMATHESIS_MAX_EXAMPLES", "40"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

# Operations that can take away the credential the run uses. Schemathesis reuses ids from earlier
# answers (GET /v1/tokens lists the owner's token), so fuzzing `DELETE /v1/tokens/{token_id}`
# with the owner token would soon revoke it, and every later request would get a (documented)
# 401: the rest of the run would test nothing. These run on their own, last, with a throwaway
# token. `DELETE /v1/sessions/current` cannot end a token's access (it answers 422 to a token),
# but it is the other "sign out" route, so it goes with them.
CREDENTIAL_OPERATIONS = ["revokeToken", "signOut"]

# Operations that take a webhook URL. A generated URL can name any address (a number such as
# `http://16777217` is 1.0.0.1 to the resolver), and an endpoint sends to its URL as soon as an
# event matches or a ping asks: only run 4 calls these, on a server where nothing is ever sent.
WEBHOOK_URL_OPERATIONS = ["createWebhook", "updateWebhook"]


class API:
    """A tiny JSON client for setting data up, with an API token or a session cookie."""

    def __init__(self, url, token=None, cookie=None):
        self.url = url
        self.token = token
        self.cookie = cookie

    def call(self, method, path, body=None, expect=(200, 201)):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            headers["Cookie"] = self.cookie
        request = urllib.request.Request(self.url + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text, answer = response.status, response.read().decode(), response
        except urllib.error.HTTPError as error:
            status, text, answer = error.code, error.read().decode(), error
        assert status in expect, f"{method} {path} answered {status}: {text}"
        self.last_headers = answer.headers
        return json.loads(text) if text else None


def restricted_token(owner, sandbox):
    """A member's test token limited to the sandbox: most routes answer it 403, the live default
    workspace included, which puts the documented 403s (and their bodies) to the test."""
    owner.call("POST", "/v1/users", {"email": "restricted@example.com", "role": "member", "password": "correct horse battery"})
    anonymous = API(owner.url)
    anonymous.call("POST", "/v1/sessions", {"email": "restricted@example.com", "password": "correct horse battery"})
    cookie = anonymous.last_headers["Set-Cookie"].split(";")[0]
    member = API(owner.url, cookie=cookie)
    return member.call("POST", "/v1/tokens", {"name": "restricted", "mode": "test", "workspaces": [sandbox]})["token"]


SITE_FIELDS = [{"key": "name", "type": "text", "required": True}, {"key": "code", "type": "text", "unique": True}]
ORDER_FIELDS = [
    {"key": "status", "type": "enum", "options": ["open", "done"], "required": True, "default": "open"},
    {"key": "due_on", "type": "date"},
    {"key": "number", "type": "integer", "unique": True},
    {"key": "amount", "type": "number"},
    {"key": "urgent", "type": "boolean"},
    {"key": "starts_at", "type": "datetime"},
    {"key": "contact", "type": "email"},
    {"key": "link", "type": "url"},
    {"key": "note", "type": "text"},
    {"key": "site", "type": "reference", "reference": "site"},
    {"key": "extra", "type": "json"},
]
# Fields of `scratch` that `DELETE …/fields/{field_key}` may remove, so the others stay to be changed.
REMOVABLE_FIELDS = [{"key": f"spare_{n}", "type": "text"} for n in range(8)]


def seed(api):
    """Data for the nested routes, in the default workspace and a sandbox: object types with every
    kind of field and records of them, events, a second user. Each destructive operation gets data
    of its own to destroy (records, fields, whole types), so it cannot empty what the others read."""
    default = api.call("GET", "/v1/workspaces")["data"][0]["id"]
    sandbox = api.call("POST", "/v1/workspaces", {"name": "Sandbox", "mode": "sandbox"})["id"]
    orders, doomed_orders = [], []
    for workspace in (default, sandbox):
        def post(path, body):
            return api.call("POST", f"/v1/workspaces/{workspace}{path}", body)

        post("/object-types", {"key": "site", "name": "Site", "fields": SITE_FIELDS})
        post("/object-types", {"key": "work_order", "name": "Work order", "fields": ORDER_FIELDS})
        post("/object-types", {"key": "scratch", "name": "Scratch", "fields": ORDER_FIELDS[:-2] + REMOVABLE_FIELDS})
        post("/object-types", {"key": "doomed", "name": "Doomed", "fields": SITE_FIELDS})
        post("/object-types", {"key": "empty", "name": "Empty"})
        post("/records/doomed", {"fields": {"name": "x"}})
        for n in range(9):
            site = post("/records/site", {"fields": {"name": f"Site {n}", "code": f"S{n}"}})
            order = post("/records/work_order", {"fields": {
                "number": n + 1, "due_on": "2026-01-31", "amount": 12.5, "urgent": n == 0, "starts_at": "2026-01-31T09:30:00Z",
                "contact": "ada@example.com", "link": "https://example.com/x", "note": "hello", "site": site["id"],
                "extra": {"a": [1, None, "x"]}}})
            post("/records/scratch", {"fields": {"number": n + 1, "note": "x"}})
            if workspace == default:
                (orders if n < 3 else doomed_orders).append(order["id"])
        post("/events", {"type": "invoice.paid", "data": {"amount_cents": 100}})
    member = api.call("POST", "/v1/users", {"email": "member@example.com", "role": "member"})["user"]["id"]
    owner = api.call("GET", "/v1/ping")["user"]["id"]
    return {
        "workspaces": [default, sandbox],
        "default": [default],
        "types": ["site", "work_order", "scratch", "empty"],
        "work_order": ["work_order"],
        "scratch": ["scratch"],
        "doomed_types": ["doomed", "empty"],
        "scratch_fields": [field["key"] for field in ORDER_FIELDS[:-2]],
        "removable_fields": [field["key"] for field in REMOVABLE_FIELDS],
        "orders": orders,
        "doomed_orders": doomed_orders,
        "users": [owner, member],
    }


def seed_webhooks(api, receiver, data):
    """Endpoints in the default workspace that deliver to the test's receiver (one to a path that
    answers 500, so there are failed deliveries to retry and recover), two to delete, and a few
    deliveries; their ids go to data."""
    default = data["default"][0]

    def endpoint(path, events=("*",)):
        return api.call("POST", f"/v1/workspaces/{default}/webhooks",
                        {"url": receiver.url(path), "subscriptions": [{"events": list(events)}]})["id"]

    working, failing = endpoint("/ok"), endpoint("/fail")
    doomed = [endpoint("/doomed", events=["e2e.never_posted"]) for _ in range(2)]
    for n in range(3):
        api.call("POST", f"/v1/workspaces/{default}/events", {"type": "invoice.paid", "data": {"n": n}})

    def deliveries(endpoint_id):
        return api.call("GET", f"/v1/workspaces/{default}/webhooks/{endpoint_id}/deliveries")["data"]
    ok = wait_until(lambda: len(deliveries(working)) >= 3 and deliveries(working), 30, "deliveries of the seeded endpoint")
    data.update(webhooks=[working, failing], delivery_webhook=[working], deliveries=[d["id"] for d in ok],
                doomed_webhooks=doomed)
    return data


def toml(value):
    return json.dumps(value)  # a JSON string or a list of strings is valid TOML as written


def write_config(path, dictionaries, probability=0.5):
    """A schemathesis.toml: path parameters draw from the seeded ids and keys with `probability`
    and are generated the rest of the time. Where one parameter only makes sense with another (a
    record id in its type and workspace), the operation gets values that go together."""
    def draw(dictionary, chance=probability):
        return f'{{ dictionary = "{dictionary}", probability = {chance} }}'

    operations = [
        # (operation ids, path parameters, destructive)
        (["getRecord", "updateRecord"],
         {"workspace_id": draw("default", 1.0), "type_key": draw("work_order", 1.0), "record_id": draw("orders", 0.7)}, False),
        (["deleteRecord"],
         {"workspace_id": draw("default", 1.0), "type_key": draw("work_order", 1.0), "record_id": draw("doomed_orders", 0.7)}, True),
        (["listRecords", "createRecord"], {"workspace_id": draw("default", 1.0), "type_key": draw("types", 0.8)}, False),
        (["addField", "updateField"],
         {"workspace_id": draw("default", 1.0), "type_key": draw("scratch", 0.8), "field_key": draw("scratch_fields", 0.7)}, False),
        (["removeField"],
         {"workspace_id": draw("default", 1.0), "type_key": draw("scratch", 0.8), "field_key": draw("removable_fields", 0.7)}, True),
        (["deleteObjectType"], {"workspace_id": draw("workspaces"), "type_key": draw("doomed_types")}, True),
    ]
    if "webhooks" in dictionaries:
        operations += [
            (["getWebhook", "getWebhookSecret", "rotateWebhookSecret", "pingWebhook", "recoverWebhook", "listWebhookDeliveries"],
             {"workspace_id": draw("default", 1.0), "endpoint_id": draw("webhooks", 0.8)}, False),
            (["listWebhookAttempts", "retryWebhookDelivery"],
             {"workspace_id": draw("default", 1.0), "endpoint_id": draw("delivery_webhook", 1.0),
              "delivery_id": draw("deliveries", 0.7)}, False),
            (["deleteWebhook"], {"workspace_id": draw("default", 1.0), "endpoint_id": draw("doomed_webhooks", 0.7)}, True),
        ]
    lines = ["[dictionaries]"]
    lines += [f"{name} = {{ values = {toml(values)} }}" for name, values in dictionaries.items()]
    lines += ["", "[parameters]",
              f'"path.workspace_id" = {draw("workspaces")}',
              f'"path.type_key" = {draw("types")}',
              f'"path.user_id" = {draw("users")}']
    for ids, parameters, destructive in operations:
        lines += ["", "[[operations]]", f"include-operation-id = {toml(ids)}",
                  "parameters = { " + ", ".join(f'"path.{name}" = {value}' for name, value in parameters.items()) + " }"]
        if destructive:
            # Not ids and keys seen in earlier answers: those name what the other operations use.
            lines += ["phases.examples.extra-data-sources.responses = false",
                      "phases.coverage.extra-data-sources.responses = false",
                      "phases.fuzzing.extra-data-sources.responses = false"]
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis(server, token, tmp_path, name, config, filters, max_examples=MAX_EXAMPLES):
    """Runs `schemathesis run` against the server; returns (exit code, report text)."""
    workdir = tmp_path / name
    workdir.mkdir()
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", str(SPEC),
        "--url", server.url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(max_examples),
        "--seed", str(SEED),
        # Not the bearer header we send: generated security values would only test 401s.
        "--generation-with-security-parameters", "false",
        # No .hypothesis folder anywhere: each run starts from the seed alone.
        "--generation-database", "none",
        "--request-timeout", "15",
        # One worker: with two, hypothesis's lambda descriptions call ast.parse from two threads at
        # once, and CPython 3.11 fails that now and then with "SystemError: AST constructor
        # recursion depth mismatch" inside schemathesis.
        "--workers", "1",
        "--no-color",
        "--output-truncate", "false",
        # Unsanitized, so reproductions keep body members such as `key`; the token is masked below.
        "--output-sanitize", "false",
        "--report", "junit",
        "--report-dir", str(workdir / "report"),
        *filters,
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "COLUMNS": "160"})
    elapsed = time.monotonic() - started
    # The token is a secret even in a test run's output.
    report = (result.stdout + result.stderr).replace(token, token[:8] + "…")
    print(f"--- schemathesis {name}: exit {result.returncode} in {elapsed:.1f} s ---\n{report}")
    return result.returncode, report


@pytest.fixture(params=["sqlite", "postgres"])
def api_server(request, make_server):
    """A started server on a fresh SQLite file, or on a fresh PostgreSQL database when
    $SWITCHYARD_TEST_POSTGRES_URL is set (skipped otherwise)."""
    if request.param == "postgres":
        return make_server(database_url=request.getfixturevalue("pg_database_url"), extra_args=WEBHOOK_ARGS).start()
    return make_server(extra_args=WEBHOOK_ARGS).start()


@pytest.fixture
def receiver():
    """Where the seeded webhooks deliver: 500 at /fail, 204 elsewhere."""
    r = Receiver(answer=lambda delivery: 500 if delivery.path == "/fail" else 204).start()
    yield r
    r.stop()


def options(flag, operations):
    return [option for operation in operations for option in (flag, operation)]


def test_api_conforms_to_openapi_document(api_server, make_server, receiver, tmp_path):
    server = api_server
    if not SPEC.exists():
        pytest.fail(f"no OpenAPI document at {SPEC}")
    owner = API(server.url, server.bootstrap_credentials()["token"])
    data = seed_webhooks(owner, receiver, seed(owner))
    config = write_config(tmp_path / "schemathesis.toml", data)
    exclude = options("--exclude-operation-id", CREDENTIAL_OPERATIONS + WEBHOOK_URL_OPERATIONS)
    include = options("--include-operation-id", CREDENTIAL_OPERATIONS)
    failures = []

    # 1. Everything but the credential operations, as the owner.
    code, report = schemathesis(server, owner.token, tmp_path, "owner", config, exclude)
    if code != 0:
        failures.append(f"schemathesis as the owner (every operation but {', '.join(CREDENTIAL_OPERATIONS + WEBHOOK_URL_OPERATIONS)}) failed:\n{report}")

    # 2. The same with a restricted token, fewer examples: the refusals.
    restricted = restricted_token(owner, data["workspaces"][1])
    code, report = schemathesis(server, restricted, tmp_path, "restricted", config, exclude, max_examples=max(5, MAX_EXAMPLES // 4))
    if code != 0:
        failures.append(f"schemathesis with a member's sandbox test token failed:\n{report}")

    # 3. The credential operations, with a token of their own to revoke.
    throwaway = owner.call("POST", "/v1/tokens", {"name": "schemathesis throwaway"})
    config = tmp_path / "credentials.toml"
    config.write_text(f'[dictionaries]\ntokens = {{ values = {toml([throwaway["api_token"]["id"]])} }}\n\n'
                      '[parameters]\n"path.token_id" = { dictionary = "tokens", probability = 0.5 }\n')
    code, report = schemathesis(server, throwaway["token"], tmp_path, "credentials", config, include)
    if code != 0:
        failures.append(f"schemathesis ({', '.join(CREDENTIAL_OPERATIONS)}) failed:\n{report}")

    # 4. Webhook URLs, on a server of its own that never appends an event, so never sends one: its
    # only data is an object type for subscriptions to name, and endpoints to change. Once is enough
    # (the checks of a URL and of subscriptions do not depend on the engine), so on SQLite only.
    if server.database_url.startswith("sqlite:"):
        inputs = make_server(extra_args=WEBHOOK_ARGS).start()
        inputs_owner = API(inputs.url, inputs.bootstrap_credentials()["token"])
        workspace = inputs_owner.call("GET", "/v1/workspaces")["data"][0]["id"]
        inputs_owner.call("POST", f"/v1/workspaces/{workspace}/object-types", {"key": "work_order", "name": "Work order", "fields": ORDER_FIELDS[:1]})
        endpoints = [inputs_owner.call("POST", f"/v1/workspaces/{workspace}/webhooks",
                                       {"url": receiver.url("/inputs"), "subscriptions": [{"object_type": "work_order", "events": ["created"]}]})["id"]
                     for _ in range(2)]
        config = tmp_path / "webhook-inputs.toml"
        config.write_text(f'[dictionaries]\ndefault = {{ values = {toml([workspace])} }}\nwebhooks = {{ values = {toml(endpoints)} }}\n\n'
                          '[parameters]\n"path.workspace_id" = { dictionary = "default", probability = 0.9 }\n'
                          '"path.endpoint_id" = { dictionary = "webhooks", probability = 0.7 }\n')
        code, report = schemathesis(inputs, inputs_owner.token, tmp_path, "webhook-inputs", config,
                                    options("--include-operation-id", WEBHOOK_URL_OPERATIONS + ["listWebhooks", "getWebhook"]))
        if code != 0:
            failures.append(f"schemathesis ({', '.join(WEBHOOK_URL_OPERATIONS)}) failed:\n{report}")
        assert inputs.process.poll() is None, f"switchyard exited during the webhook-input run\n{inputs.log_tail()}"
        assert inputs_owner.call("GET", f"/v1/workspaces/{workspace}/events")["data"] == [], "an event was appended: it could have been sent"
        assert receiver.received("/inputs") == [], "the webhook-input run sent a delivery"

    # The server must have survived all of it.
    assert server.process.poll() is None, f"switchyard exited during the run\n{server.log_tail()}"
    log = server.log_tail(80).replace(owner.token, owner.token[:8] + "…")
    assert not failures, "\n\n".join(failures) + f"\n\nserver log:\n{log}"
