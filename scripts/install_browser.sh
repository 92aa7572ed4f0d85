#!/usr/bin/env bash
# Make sure that headless Chromium and its chromedriver are there for the site test (`make browser`,
# which `make test-site` runs first). In order:
#   1. CHROMIUM=/path/to/chrome (and CHROMEDRIVER=/path/to/chromedriver, unless chromedriver is on
#      PATH) use an installed browser. On GitHub's Ubuntu runners, whose apt chromium is a snap
#      stub, use their Chrome: CHROMIUM=$(command -v google-chrome)
#      CHROMEDRIVER=$CHROMEWEBDRIVER/chromedriver.
#   2. chromium and chromedriver already on PATH: nothing to do.
#   3. Otherwise install Debian's `chromium` and `chromium-driver` with apt-get, as root or with
#      password-less sudo. Where apt-get is not available, stop with a message that says what to do.
# tests/test_site.py finds the browser the same way (scripts/site_checks.py, find_browser).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
fail() { echo "ERROR: $*" >&2; exit 1; }
report() { echo "browser: $1 ($("$1" --version 2>/dev/null | tail -n 1)); driver: $2"; }

if [[ -n "${CHROMIUM:-}" ]]; then
    [[ -x "$CHROMIUM" ]] || fail "CHROMIUM=$CHROMIUM is not an executable file"
    driver="${CHROMEDRIVER:-$(command -v chromedriver || true)}"
    [[ -n "$driver" && -x "$driver" ]] ||
        fail "CHROMIUM is set but no chromedriver was found: set CHROMEDRIVER=/path/to/chromedriver"
    report "$CHROMIUM" "$driver"
    exit 0
fi

if have chromium && have chromedriver; then
    report "$(command -v chromium)" "$(command -v chromedriver)"
    exit 0
fi

have apt-get || fail "Chromium and chromedriver are missing and apt-get is not available here.
Install Chromium (or Chrome) and a matching chromedriver, then run again with
CHROMIUM=/path/to/chromium CHROMEDRIVER=/path/to/chromedriver."

if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
elif have sudo && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    fail "installing chromium needs root: run \`sudo apt-get install -y chromium chromium-driver\`,
or set CHROMIUM and CHROMEDRIVER to an installed browser and driver."
fi

echo "Installing Debian's chromium and chromium-driver with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver ||
    fail "apt-get could not install chromium and chromium-driver. On Ubuntu these packages are snap
stubs: install Google Chrome and its chromedriver instead, and set CHROMIUM and CHROMEDRIVER."
have chromium && have chromedriver || fail "chromium or chromedriver is still missing after apt-get"
report "$(command -v chromium)" "$(command -v chromedriver)"
