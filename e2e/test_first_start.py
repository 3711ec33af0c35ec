"""The first start as a newcomer meets it: what `serve` prints on an empty database, the address
it prints, and the curl line it suggests, run exactly as printed.

The server here is a copy of the binary in a folder of its own, started from another working
directory: a release binary copied anywhere must still serve its front page and /openapi.yaml.
"""

import json
import re
import shutil
import subprocess
import urllib.request

from conftest import REPO_ROOT, SWITCHYARD_BIN, Server


class CopiedServer(Server):
    """A Server whose binary is a copy outside the repository."""

    def __init__(self, tmp_path, binary, **kwargs):
        super().__init__(tmp_path, **kwargs)
        self.binary = binary

    def command(self):
        return [str(self.binary)] + super().command()[1:]


def get(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def paragraph_with(text, needle):
    """The blank-line-separated paragraph of text that holds needle."""
    for paragraph in text.split("\n\n"):
        if needle in paragraph:
            return paragraph
    raise AssertionError(f"{needle!r} is not in the first-start output:\n{text}")


def test_first_start_says_what_the_credentials_are_for_and_its_curl_line_works(tmp_path):
    binary = tmp_path / "elsewhere" / "switchyard"
    binary.parent.mkdir()
    shutil.copy2(SWITCHYARD_BIN, binary)
    server = CopiedServer(tmp_path / "server", binary)
    try:
        server.start()
        credentials = server.bootstrap_credentials()
        out = server.stdout_text()

        # The token is for the API, and the output says how to send it and gives a call to try.
        token_part = paragraph_with(out, "token: " + credentials["token"])
        assert "API" in token_part and "Authorization: Bearer" in token_part, token_part
        # The password is for the console once it lands, and today for API sessions.
        password_part = paragraph_with(out, "password: " + credentials["password"])
        assert "console" in password_part and "POST /v1/sessions" in password_part, password_part
        assert "Sign in at" not in out, "no sign-in page exists yet"

        # The curl line, exactly as printed, reaches the API as the owner.
        curl_lines = [line.strip() for line in out.splitlines() if line.strip().startswith("curl ")]
        assert len(curl_lines) == 1, out
        run = subprocess.run(["sh", "-c", curl_lines[0] + " -s --fail-with-body --max-time 5"],
                             capture_output=True, text=True, timeout=10)
        assert run.returncode == 0, f"{curl_lines[0]}\n{run.stdout}\n{run.stderr}"
        answer = json.loads(run.stdout)
        assert answer["ok"] is True and answer["authenticated_by"] == "api_token"
        assert answer["user"]["email"] == credentials["email"]

        # The password signs in through the API, as the output says.
        request = urllib.request.Request(
            server.url + "/v1/sessions", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"email": credentials["email"], "password": credentials["password"]}).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201

        # The printed address answers a page a browser shows, with the binary's version.
        assert re.search(rf"running at {re.escape(server.url)}\b", out), out
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
        assert version
        status, content_type, body = get(server.url + "/", accept="text/html,*/*;q=0.8")
        assert status == 200 and content_type.startswith("text/html"), (status, content_type)
        assert f"Switchyard {version}" in body.decode()

        # The document it links to is the repository's, served by the copied binary.
        status, content_type, body = get(server.url + "/openapi.yaml")
        assert (status, content_type) == (200, "application/yaml")
        assert body == (REPO_ROOT / "docs" / "openapi.yaml").read_bytes()
    finally:
        server.stop()
