#!/usr/bin/env bash
# Runs libmemcached's `memccapable` capability checks against a server, the
# ASCII-protocol ones (-a) and the binary-protocol ones (-b), and fails
# unless every check of both passes.
#
#   usage: memccapable.sh HOST PORT
#
# WARNING: memccapable flushes the server it tests.
#
# memccapable prints one "[pass]"/"[FAIL]" line per check and ends with
# "All tests passed" or "N of M tests failed" (exit status 1). It exits 0
# when it cannot connect at all, so this script also checks reachability
# first and requires at least one "[pass]" and the "All tests passed" line.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 HOST PORT" >&2
    exit 2
fi
host=$1
port=$2

if ! command -v memccapable >/dev/null 2>&1; then
    echo "memccapable not installed (Debian: apt-get install libmemcached-tools)" >&2
    exit 2
fi

# Reachability, bounded: bash's /dev/tcp opens a plain TCP connection.
if ! timeout 5 bash -c "exec 3<>/dev/tcp/${host}/${port}" 2>/dev/null; then
    echo "memccapable: cannot connect to ${host}:${port}" >&2
    exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

for mode in -a -b; do
    # -t 5: per-operation I/O timeout, so a hung server fails instead of hanging.
    set +e
    timeout 300 memccapable -h "$host" -p "$port" "$mode" -t 5 >"$out" 2>&1
    rc=$?
    set -e
    cat "$out"

    passed=$(grep -c '\[pass\]' "$out" || true)
    failed=$(grep -c '\[FAIL\]' "$out" || true)
    echo "memccapable $mode: ${passed} passed, ${failed} failed"

    if [[ $rc -ne 0 || $failed -ne 0 || $passed -eq 0 ]] || ! grep -q '^All tests passed' "$out"; then
        echo "memccapable $mode: FAILED against ${host}:${port} (exit status ${rc})" >&2
        exit 1
    fi
done
