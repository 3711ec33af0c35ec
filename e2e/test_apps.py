"""End-to-end: an app's whole flow against the real binary, with its mails at a real SMTP server
(aiosmtpd): the developer's invite (a link, never the one-time password), the notice that the
one-time password changed, and the notice that their access was removed."""

import re
import time

import requests

from test_mail import start_with_owner


def mail_to(sink, recipient, subject_part, timeout=10.0):
    received = sink.wait_for(lambda m: recipient in m["rcpt_tos"] and subject_part in m["subject"], timeout=timeout)
    assert received is not None, f"no mail to {recipient} about {subject_part!r}: {[m['subject'] for m in sink.received()]}"
    return received["body"].replace("\r\n", "\n")


def test_app_flow_with_mails(make_server, smtp_sink):
    server = make_server(smtp_url=smtp_sink.url)
    owner = start_with_owner(server)
    admin = {"Authorization": owner.session.headers["Authorization"]}
    workspace = requests.get(f"{server.url}/v1/workspaces", headers=admin, timeout=10).json()["data"][0]["id"]
    answer = requests.post(f"{server.url}/v1/apps", headers=admin, timeout=10, json={
        "name": "Ledger Partner", "description": "Reads workspaces", "category": "accounting", "access": "read",
        "workspaces": [workspace], "permissions": ["events:read"], "developer_email": "dev@partner.example"})
    assert answer.status_code == 201, answer.text
    app = answer.json()
    password = app["one_time_password"]

    body = mail_to(smtp_sink, "dev@partner.example", "invited")
    assert password not in body, "the one-time password is never mailed"
    link = re.search(r"(http://\S+/portal/invite/(syi_\S+))", body)
    assert link, body
    # The link opens a page naming the app.
    page = requests.get(link.group(1), timeout=10)
    assert page.status_code == 200 and "Ledger Partner" in page.text

    portal = requests.Session()
    signup = portal.post(f"{server.url}/portal/api/signup", timeout=10,
                         json={"invite_token": link.group(2), "password": "a long portal password"})
    assert signup.status_code == 201, signup.text
    set_cookie = signup.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie, set_cookie

    # The admin resets the one-time password: the developer hears that it changed, not what it is.
    reset = requests.post(f"{server.url}/v1/apps/{app['id']}/one-time-password", headers=admin, timeout=10)
    assert reset.status_code == 200, reset.text
    new_password = reset.json()["one_time_password"]
    notice = mail_to(smtp_sink, "dev@partner.example", "one-time password")
    assert new_password not in notice and password not in notice

    verified = portal.post(f"{server.url}/portal/api/apps/{app['id']}/verify", timeout=10,
                           json={"one_time_password": new_password})
    assert verified.status_code == 200, verified.text
    secret = portal.post(f"{server.url}/portal/api/apps/{app['id']}/secrets", timeout=10)
    assert secret.status_code == 201, secret.text

    token = requests.post(f"{server.url}/oauth/token", timeout=10, auth=(app["client_id"], secret.json()["secret"]),
                          data={"grant_type": "client_credentials"})
    assert token.status_code == 200, token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    ping = requests.get(f"{server.url}/v1/ping", headers=bearer, timeout=10)
    assert ping.json()["authenticated_by"] == "app", ping.text
    assert requests.get(f"{server.url}/v1/workspaces/{workspace}/events", headers=bearer, timeout=10).status_code == 200

    # Removing the developer takes the app out of their portal and mails them.
    removed = requests.delete(f"{server.url}/v1/apps/{app['id']}/developer", headers=admin, timeout=10)
    assert removed.status_code == 200, removed.text
    mail_to(smtp_sink, "dev@partner.example", "removed")
    assert portal.get(f"{server.url}/portal/api/apps/{app['id']}", timeout=10).status_code == 404

    # Revoke: the token stops on the next call.
    assert requests.post(f"{server.url}/v1/apps/{app['id']}/revoke", headers=admin, timeout=10).status_code == 200
    assert requests.get(f"{server.url}/v1/ping", headers=bearer, timeout=10).status_code == 401
    # The app's calls are in its activity log within a second or so.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        activity = requests.get(f"{server.url}/v1/apps/{app['id']}/activity", headers=admin, timeout=10).json()["data"]
        if any(entry["action"] == "app.request" for entry in activity):
            break
        time.sleep(0.2)
    actions = {entry["action"] for entry in activity}
    assert {"app.created", "app.verified", "app.token_issued", "app.request", "app.revoked"} <= actions, actions
