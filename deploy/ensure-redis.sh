#!/usr/bin/env bash
# The tests use a real Redis on 127.0.0.1:6379: start one if none answers (installing
# Debian's redis-server if it is missing). It keeps nothing on disk.
set -euo pipefail
ping() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
ping && exit 0
if ! command -v redis-server >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server
fi
redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
for _ in $(seq 50); do ping && exit 0; sleep 0.1; done
echo "redis-server did not answer on 127.0.0.1:6379" >&2
exit 1
