#!/usr/bin/env bash
# Runs pymemcache 4.0.0's own integration tests against a server.
#
#   usage: pymemcache.sh HOST PORT
#
# The virtualenv is created once and cached (override the location with
# MEMSHARD_PY_CACHE; choose the interpreter with PYTHON). The tests flush
# the server they run against.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=pysuite-lib.sh
source "$here/pysuite-lib.sh"
host_port "$@"

pymemcache_version=4.0.0
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

pytest_outcome pymemcache "$rc"
