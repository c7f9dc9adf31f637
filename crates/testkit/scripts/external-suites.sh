#!/usr/bin/env bash
# Runs the external conformance suites (memccapable -a and -b, pymemcache's
# integration tests, pylibmc's own tests) against a freshly started
# `memshard server`.
#
#   usage: external-suites.sh PATH/TO/memshard
set -euo pipefail
bin=${1:?usage: $0 PATH/TO/memshard}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
"$bin" server -l 127.0.0.1 -p 0 -t 2 -m 64 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "memshard server did not start:"; cat "$log"; exit 1; }
echo "memshard server on 127.0.0.1:$port (pid $pid)"
bash "$here/memccapable.sh" 127.0.0.1 "$port"
bash "$here/pymemcache.sh" 127.0.0.1 "$port"
bash "$here/pylibmc.sh" 127.0.0.1 "$port"
