"""OAuth 2.0 end to end: the PyPI `authlib` client, unmodified, against the real binary.

The app is registered as a user would (an admin's POST /v1/apps, the developer's portal signup,
one-time password and secret: oauth_support.register_app). authlib discovers the endpoints from the RFC 8414 metadata, gets tokens
with client_secret_basic and client_secret_post, introspects (RFC 7662) and revokes (RFC 7009) them,
and reads RFC 6749 errors as OAuthError.
"""

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from oauth_support import register_app


@pytest.fixture
def hub(make_server, smtp_sink):
    """A started server with its owner's token, live workspace and an app holding events:read."""
    server = make_server(smtp_url=smtp_sink.url).start()
    owner = server.bootstrap_credentials()["token"]
    workspaces = requests.get(f"{server.url}/v1/workspaces", headers={"Authorization": f"Bearer {owner}"}, timeout=10).json()
    workspace = next(w["id"] for w in workspaces["data"] if w["mode"] == "live")
    app = register_app(server.url, owner, smtp_sink, "Acme Ledger", ["events:read"], [workspace])
    assert app is not None, "the registration and portal routes answer"
    metadata = requests.get(f"{server.url}/.well-known/oauth-authorization-server", timeout=10).json()
    return server, app, metadata


def session(app, method):
    return OAuth2Session(app["client_id"], app["client_secret"], token_endpoint_auth_method=method)


def api_status(server, token):
    """The status of an app call: GET /v1/ping (200 for a working token, 401 once refused)."""
    return requests.get(f"{server.url}/v1/ping", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def test_metadata_names_the_endpoints(hub):
    server, _, metadata = hub
    assert metadata["issuer"] == server.url
    assert metadata["token_endpoint"] == f"{server.url}/oauth/token"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_gets_introspects_and_revokes_a_token(hub, method):
    server, app, metadata = hub
    client = session(app, method)
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith("sya_live_")
    assert token["expires_in"] == 3600
    assert token["scope"] == "events:read"
    assert api_status(server, token["access_token"]) == 200

    answer = client.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    introspection = answer.json()
    assert introspection["active"] is True
    assert introspection["client_id"] == app["client_id"]
    assert introspection["scope"] == "events:read"
    assert introspection["exp"] > 0

    revoked = client.revoke_token(metadata["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token")
    assert revoked.status_code == 200
    assert api_status(server, token["access_token"]) == 401
    assert client.introspect_token(metadata["introspection_endpoint"], token=token["access_token"]).json() == {"active": False}


def test_authlib_reads_the_errors(hub):
    server, app, metadata = hub
    wrong = session({**app, "client_secret": "syc_wrong"}, "client_secret_basic")
    with pytest.raises(OAuthError) as refused:
        wrong.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"

    with pytest.raises(OAuthError) as scoped:
        session(app, "client_secret_post").fetch_token(metadata["token_endpoint"], grant_type="client_credentials",
                                                       scope="webhooks:manage")
    assert scoped.value.error == "invalid_scope"

    raw = requests.post(metadata["token_endpoint"], data={"grant_type": "password", "username": "a", "password": "b"},
                        auth=(app["client_id"], app["client_secret"]), timeout=10)
    assert raw.status_code == 400
    assert raw.json()["error"] == "unsupported_grant_type"
    assert app["client_secret"] not in raw.text
    unauthenticated = requests.post(metadata["token_endpoint"], data={"grant_type": "client_credentials"}, timeout=10)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"] == 'Basic realm="switchyard"'
    json_body = requests.post(metadata["token_endpoint"], json={"grant_type": "client_credentials"},
                              auth=(app["client_id"], app["client_secret"]), timeout=10)
    assert json_body.status_code == 400
    assert json_body.json()["error"] == "invalid_request"
