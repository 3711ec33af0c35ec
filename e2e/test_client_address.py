"""The client address recorded for a request: the TCP peer, or, behind a trusted reverse proxy,
what the proxy put in X-Forwarded-For. A real server process on loopback, which plays the proxy."""
import requests

EMAIL = "nobody@example.com"


def failed_sign_in_ips(server, token, forwarded_for):
    requests.post(server.url + "/v1/sessions", json={"email": EMAIL, "password": "wrong password"},
                  headers={"X-Forwarded-For": forwarded_for}, timeout=10)
    log = requests.get(server.url + "/v1/activity", params={"action": "session.created", "outcome": "failure"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    return [entry["ip"] for entry in log["data"]]


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(make_server):
    server = make_server().start()
    token = server.bootstrap_credentials()["token"]
    # Anyone can send the header: without --trusted-proxy it changes nothing.
    assert failed_sign_in_ips(server, token, "203.0.113.7") == ["127.0.0.1"]


def test_a_trusted_proxy_gives_the_client_address(make_server):
    server = make_server(extra_args=["--trusted-proxy", "127.0.0.0/8", "--trusted-proxy", "10.0.0.0/8"]).start()
    token = server.bootstrap_credentials()["token"]
    # Read right to left, past our own proxies (10.1.2.3), to the first address they did not add;
    # what the client itself wrote further left (198.51.100.1) is not believed.
    assert failed_sign_in_ips(server, token, "198.51.100.1, 203.0.113.7, 10.1.2.3") == ["203.0.113.7"]


def test_a_bad_trusted_proxy_setting_stops_the_server(make_server):
    server = make_server(extra_args=["--trusted-proxy", "10.0.0.0/33"])
    try:
        server.start()
        raise AssertionError("the server started with --trusted-proxy 10.0.0.0/33")
    except RuntimeError as error:
        assert "prefix length" in str(error)
