# Shared by pymemcache.sh and pylibmc.sh (sourced, not run): the HOST PORT
# arguments, the cached virtualenv location, and what pytest's exit status
# means.

# Sets `host` and `port` from "$@", or exits 2 with the usage.
host_port() {
    if [[ $# -ne 2 ]]; then
        echo "usage: $0 HOST PORT" >&2
        exit 2
    fi
    host=$1
    port=$2
}

# The pinned pytest, the interpreter, and where virtualenvs are cached.
pytest_version=9.0.3
python=${PYTHON:-python3}
cache=${MEMSHARD_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memshard}

# Exits with pytest's status `rc` of suite `name`; status 5 (no tests
# collected) is a broken install or marker, not a pass.
pytest_outcome() {
    local name=$1 rc=$2
    case $rc in
        0) ;;
        5)
            echo "$name: no tests ran (pytest exit status 5)" >&2
            exit 1
            ;;
        *)
            echo "$name: FAILED against ${host}:${port} (pytest exit status ${rc})" >&2
            exit "$rc"
            ;;
    esac
}
