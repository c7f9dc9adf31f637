#!/usr/bin/env bash
# Runs pymemcache 4.0.0's own integration tests against a server.
#
#   usage: pymemcache.sh HOST PORT
#
# The virtualenv is created once and cached (override the location with
# MEMSHARD_PY_CACHE; choose the interpreter with PYTHON). The tests flush
# the server they run against.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 HOST PORT" >&2
    exit 2
fi
host=$1
port=$2

pymemcache_version=4.0.0
# pytest is pinned too, so a new pytest release cannot change the outcome.
pytest_version=9.0.3
python=${PYTHON:-python3}
cache=${MEMSHARD_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memshard}
venv="$cache/pymemcache-${pymemcache_version}-pytest-${pytest_version}"

if ! "$venv/bin/python" -c 'import pymemcache, pytest' >/dev/null 2>&1; then
    echo "pymemcache: creating virtualenv in $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "pymemcache==${pymemcache_version}" "pytest==${pytest_version}"
fi

# The integration tests ship inside the package, next to the conftest.py
# that defines --server/--port.
testdir=$("$venv/bin/python" -c 'import os, pymemcache.test as t; print(os.path.dirname(t.__file__))')

set +e
# -p no:cacheprovider: do not write .pytest_cache into site-packages.
timeout 600 "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider \
    -o "markers=integration: needs a live server" -m integration \
    "$testdir/test_integration.py" --server "$host" --port "$port"
rc=$?
set -e

case $rc in
    0) ;;
    5)
        # pytest's "no tests collected": a broken install or marker, not a pass.
        echo "pymemcache: no tests ran (pytest exit status 5)" >&2
        exit 1
        ;;
    *)
        echo "pymemcache: FAILED against ${host}:${port} (pytest exit status ${rc})" >&2
        exit "$rc"
        ;;
esac
