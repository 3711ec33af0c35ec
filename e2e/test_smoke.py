from conftest import http_status


def test_health_and_readiness(server):
    assert http_status(server.url + "/healthz") == 200
    assert http_status(server.url + "/readyz") == 200
