#!/usr/bin/env bash
# The browser tests (tests/service/test_ui_browser.py) drive Debian's Chromium headless through
# Playwright: install it where it is missing (Playwright's own browser download is not used).
set -euo pipefail
CHROMIUM=${NLD_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "chromium is not at $CHROMIUM after installing it" >&2; exit 1; }
