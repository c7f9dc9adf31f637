#!/usr/bin/env bash
# Runs memcached 1.6.18's own test files (t/*.t from Debian's source package
# `memcached`) against a server that is already running, the way the suite
# allows it: T_MEMD_USE_DAEMON=HOST:PORT, with a stub `memcached-debug` in
# the working directory (the suite asks it for `-h` to learn which features
# exist). Each file gets a freshly started server of its own.
#
#   usage: memcached-suite.sh PATH/TO/memshard            # against memshard server
#          memcached-suite.sh --memcached                 # the same files against Debian's memcached
#
# Fetches the source once with `apt-get source` (a private deb-src list;
# nothing in /etc/apt changes) into $MEMSHARD_SUITE_CACHE (default
# ~/.cache/memshard). Needs perl and dpkg-dev. The list of files, and why
# every other file is left out, is in crates/testkit/README.md; keep the two
# in step.
set -euo pipefail

# Files that pass against Debian's memcached 1.6.18 started with default
# flags, and need none of: their own start flags, a restart, `debugtime`,
# the binary protocol. Each must pass against memshard server too.
FILES=(
  binary-get bogus-commands cas chunked-items flags getandtouch getset incrdecr
  issue_104 issue_108 issue_14 issue_152 issue_163 issue_192 issue_29 issue_3
  issue_41 issue_42 issue_68 issue_70 malicious-commands metaget
  multiversioning noreply quit stats-detail strtol-testing touch watcher_connid
)

target=${1:?usage: $0 PATH/TO/memshard | --memcached}
if [[ $target == --memcached ]]; then
  command -v memcached >/dev/null || { echo "memcached not installed" >&2; exit 2; }
  # exec: the background job is then the server itself, so `$!` is its PID
  # and the kill below stops it (not only the subshell around it).
  start() { exec memcached -U 0 -l 127.0.0.1 -p "$1" -u root; }
  # Without ext_path in its help the suite skips the extstore parts, which
  # need start flags a running daemon did not get.
  help() { memcached -h | grep -v ext_path; }
else
  bin=$(cd "$(dirname "$target")" && pwd)/$(basename "$target")
  [[ -x $bin ]] || { echo "$target is not an executable" >&2; exit 2; }
  start() { exec "$bin" server -l 127.0.0.1 -p "$1" -t 2; }
  help() { "$bin" server --help; }
fi
command -v perl >/dev/null || { echo "perl not installed" >&2; exit 2; }

# --- the suite's source -----------------------------------------------------
cache=${MEMSHARD_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memshard}
src="$cache/memcached-1.6.18"
if [[ ! -f $src/t/lib/MemcachedTest.pm ]]; then
  command -v dpkg-source >/dev/null || { echo "dpkg-source missing (apt-get install dpkg-dev)" >&2; exit 2; }
  apt_dir="$cache/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$cache/src"
  cat >"$apt_dir/sources.list" <<'EOF'
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian bookworm-updates main
EOF
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" -qq update
  # The version of the memcached binary compared against, when installed.
  want=memcached
  if v=$(dpkg-query -W -f '${Version}' memcached 2>/dev/null) && [[ $v == 1.6.18* ]]; then
    want="memcached=$v"
  fi
  (cd "$cache/src" && apt-get "${opts[@]}" -qq source "$want" >/dev/null)
  rm -rf "$src"
  mv "$cache/src/memcached-1.6.18" "$src"
  rm -rf "$cache/src"
fi
[[ -f $src/t/lib/MemcachedTest.pm ]] || { echo "no memcached 1.6.18 test suite in $src" >&2; exit 2; }

# The stub: the suite runs `./memcached-debug -h` to see what the server supports.
work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n $server_pid ]] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
help >"$work/help.txt" 2>&1 || true
cp -r "$src/t" "$work/t"
printf '#!/bin/sh\ncat "%s"\n' "$work/help.txt" >"$work/memcached-debug"
chmod +x "$work/memcached-debug"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

failed=()
for f in "${FILES[@]}"; do
  port=$(free_port)
  start "$port" >"$work/server.log" 2>&1 &
  server_pid=$!
  up=""
  for _ in $(seq 1 100); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then up=1; break; fi
    sleep 0.05
  done
  if [[ -z $up ]]; then
    echo "not ok $f: the server did not start"; cat "$work/server.log"; failed+=("$f")
  else
    set +e
    (cd "$work" && T_MEMD_USE_DAEMON="127.0.0.1:$port" timeout 120 perl "t/$f.t") >"$work/$f.log" 2>&1
    rc=$?
    set -e
    passed=$(grep -c '^ok ' "$work/$f.log" || true)
    planned=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$work/$f.log" | head -1)
    # A file that planned nothing or skipped itself did not pass: it did not run.
    if [[ $rc -ne 0 || -z $planned || $planned -eq 0 || $passed -ne $planned ]]; then
      echo "not ok $f (exit $rc, $passed of ${planned:-?} passed)"
      grep -v '^ok ' "$work/$f.log" | head -40
      failed+=("$f")
    else
      echo "ok $f ($passed tests)"
    fi
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
done

echo "memcached's t/*.t: $(( ${#FILES[@]} - ${#failed[@]} )) of ${#FILES[@]} files passed"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
