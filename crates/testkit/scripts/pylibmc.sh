#!/usr/bin/env bash
# Runs pylibmc 1.6.3's own tests (from its sdist) against a server; several
# of them use the binary protocol (`binary=True`).
#
#   usage: pylibmc.sh HOST PORT
#
# Builds pylibmc against libmemcached (Debian: libmemcached-dev, zlib1g-dev)
# once, in a cached virtualenv ($MEMSHARD_PY_CACHE, default
# ~/.cache/memshard). test_autoconf.py is left out: it assumes a server on
# 127.0.0.1:11211 whatever MEMCACHED_PORT says. The tests flush the server.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=pysuite-lib.sh
source "$here/pysuite-lib.sh"
host_port "$@"

pylibmc_version=1.6.3
venv="$cache/pylibmc-${pylibmc_version}-pytest-${pytest_version}"
src="$cache/pylibmc-${pylibmc_version}-sdist"

if ! "$venv/bin/python" -c 'import pylibmc, pytest' >/dev/null 2>&1 || [[ ! -d $src/tests ]]; then
    echo "pylibmc: building pylibmc ${pylibmc_version} into $venv" >&2
    rm -rf "$venv" "$src" "$cache/pylibmc-dl"
    mkdir -p "$cache/pylibmc-dl"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$cache/pylibmc-dl" "pylibmc==${pylibmc_version}"
    tar -xzf "$cache/pylibmc-dl/pylibmc-${pylibmc_version}.tar.gz" -C "$cache/pylibmc-dl"
    mv "$cache/pylibmc-dl/pylibmc-${pylibmc_version}" "$src"
    rm -rf "$cache/pylibmc-dl"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pytest==${pytest_version}" "$src"
fi

set +e
# Run from the sdist's folder so `tests` is its test package.
(cd "$src" && MEMCACHED_HOST="$host" MEMCACHED_PORT="$port" timeout 600 "$venv/bin/python" -m pytest -q -rs \
    -p no:cacheprovider tests --ignore=tests/test_autoconf.py)
rc=$?
set -e
pytest_outcome pylibmc "$rc"
