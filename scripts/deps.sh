#!/usr/bin/env bash
# Installs what `make test|run|bench` needs; prints nothing when all of it is already there.
set -euo pipefail

# nginx: the receiver of bench/webhooks.sh, started there with a config of its own.
apt_packages=(postgresql libpq-dev libjavascriptcoregtk-4.1-dev libsqlite3-dev sqlite3 wrk procps nginx)
# standardwebhooks: the e2e receivers verify every webhook delivery with it.
# authlib: the OAuth 2.0 client of e2e/test_oauth.py, and with Flask the OAuth 2.0 provider of
# e2e/oauth_provider.py that integrations authorize against (bench/oauth.sh uses Flask too).
pip_packages=(aiosmtpd schemathesis pytest requests cryptography standardwebhooks authlib flask)
python_imports="aiosmtpd, schemathesis, pytest, requests, cryptography, standardwebhooks, authlib, flask"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# Installers are chatty even when quiet; keep their output and show it only if they fail.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
quietly() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: failed: $*" >&2
    exit 1
  fi
}

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  # CI has no stdin: nothing may ask a question.
  export DEBIAN_FRONTEND=noninteractive
  quietly "${sudo_cmd[@]}" apt-get update
  quietly "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! python3 -c "import ${python_imports}" >/dev/null 2>&1; then
  echo "deps: installing Python packages: ${pip_packages[*]}"
  quietly env PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet \
    --disable-pip-version-check "${pip_packages[@]}"
fi
