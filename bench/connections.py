#!/usr/bin/env python3
"""Connections at scale: 10,000 client connections through a proxy, 1,000 of
them active and the rest idle — memshard proxy and nutcracker in front of the
same 3 memcached, in the same run.

    cargo build --release -p memshard
    python3 bench/connections.py [--idle 9000] [--active 1000] [--duration 10] [--rounds 3]

For each proxy, in alternating rounds, each round with a freshly started proxy:

  1. the proxy's RSS at rest (after a short pre-fill), the baseline;
  2. 1,000 active connections alone (`memshard bench -c 1000 -P 1`, 90 % gets,
     100-byte values): ops/s and p99;
  3. 9,000 more connections opened and held idle (each sends one `version`
     first, so the proxy has served it), then the same 1,000-connection load
     beside them: ops/s, p99, and the proxy's RSS with all 10,000 open;
  4. every connection closed, 3 s of rest: the RSS again.

The proxy's RSS is sampled every 0.1 s during each load (the median of the
run's second half). RSS per connection = (RSS with 10,000 open − at rest) /
10,000; per idle connection = (RSS with 10,000 open − with 1,000 active) /
9,000. Medians of the rounds. Loopback only; every process and socket is closed at the end.
"""
import argparse, os, resource, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, bench, free_port, pool_file, rss, start, stop, wait_listen  # noqa: E402


def hold_idle(port, n):
    """Opens `n` connections, each answering one `version`; returns the sockets."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"version\r\n")
        socks.append(s)
        # Read the answers in batches, so the kernel's backlog never fills.
        if len(socks) % 500 == 0 or i == n - 1:
            for t in socks[-500:]:
                buf = b""
                while not buf.endswith(b"\r\n"):
                    chunk = t.recv(64)
                    if not chunk:
                        raise RuntimeError("an idle connection was closed")
                    buf += chunk
    return socks


def bench_sampling_rss(pid, port, a):
    """`bench` with the active connections, sampling the proxy's RSS every
    0.1 s; the report and the median RSS of the run's second half."""
    samples, done = [], threading.Event()

    def sample():
        while not done.wait(0.1):
            try:
                samples.append(rss(pid))
            except OSError:
                return

    t = threading.Thread(target=sample)
    t.start()
    try:
        rep, cmd = bench(port, 1, a.duration, warmup=1, prefill=False, connections=a.active)
    finally:
        done.set()
        t.join()
    half = samples[len(samples) // 2:] or [rss(pid)]
    return rep, cmd, statistics.median(half)


def settle_rss(pid, seconds=3.0):
    """RSS after `seconds` of rest."""
    time.sleep(seconds)
    return rss(pid)


def measure(name, pid, port, a):
    """One round against one proxy: the figures of steps 1 to 4."""
    base = settle_rss(pid, 1.0)
    alone, _, busy = bench_sampling_rss(pid, port, a)
    socks = hold_idle(port, a.idle)
    try:
        beside, cmd, full = bench_sampling_rss(pid, port, a)
    finally:
        for s in socks:
            s.close()
    after = settle_rss(pid, 3.0)
    print(f"  {name}: alone {alone['ops_per_sec']:.0f} ops/s p99 {alone['p99_us']:.0f}us; with {a.idle} idle "
          f"{beside['ops_per_sec']:.0f} ops/s p99 {beside['p99_us']:.0f}us; RSS {base / 2**20:.1f} -> "
          f"{busy / 2**20:.1f} -> {full / 2**20:.1f} -> {after / 2**20:.1f} MiB", file=sys.stderr)
    return {"base": base, "busy": busy, "full": full, "after": after, "alone": alone, "beside": beside}, cmd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=9000)
    ap.add_argument("--active", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for peer in ("memcached", "nutcracker"):
        if not shutil.which(peer):
            sys.exit(f"{peer} not found: apt-get install memcached nutcracker")
    # Room for every socket here and in the proxies (children inherit it).
    need = a.idle + a.active + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need:
        sys.exit(f"the open-file limit is {hard}; {need} are needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="memshard-conns-")
    procs = []
    try:
        backends = [start("memcached", 1, 256) for _ in range(3)]
        procs += [b[0] for b in backends]
        ports = [b[1] for b in backends]
        cmds = {}
        nport = free_port()
        cmds["nutcracker"] = ["nutcracker", "-c", pool_file(tmp, "nutcracker", nport, ports), "-s",
                              str(free_port()), "-a", "127.0.0.1", "-o", os.path.join(tmp, "nutcracker.log")]
        mport = free_port()
        cmds["memshard proxy"] = [MEMSHARD, "proxy", "-c", pool_file(tmp, "memshard", mport, ports), "-s",
                                  str(free_port()), "-a", "127.0.0.1"]
        ports = {"nutcracker": nport, "memshard proxy": mport}
        results, load = {}, None
        for r in range(a.rounds):
            order = list(ports) if r % 2 == 0 else list(reversed(list(ports)))
            for name in order:
                # A fresh process each round: its rest RSS is the baseline,
                # untouched by an earlier round's crowd.
                p = subprocess.Popen(cmds[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(p)
                try:
                    wait_listen(ports[name])
                    # Every key set (again), so the gets of the runs hit.
                    bench(ports[name], 16, 0.2, warmup=0)
                    res, load = measure(name, p.pid, ports[name], a)
                finally:
                    stop(p)
                    procs.remove(p)
                results.setdefault(name, []).append(res)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    total = a.idle + a.active
    mib = lambda b: b / 2**20
    print(f"### {total:,} client connections, {a.active:,} active ({a.rounds} alternating rounds of "
          f"{a.duration:g} s, median)\n")
    print(f"| proxy | RSS at rest | with {a.active:,} active | with {total:,} open | per connection | "
          f"per idle connection | RSS after they close | {a.active:,} alone: ops/s, p99 | "
          f"beside {a.idle:,} idle: ops/s, p99 | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rs in results.items():
        med = lambda f: statistics.median(f(x) for x in rs)
        base, full, after = med(lambda x: x["base"]), med(lambda x: x["full"]), med(lambda x: x["after"])
        busy = med(lambda x: x["busy"])
        p99a, p99b = med(lambda x: x["alone"]["p99_us"]), med(lambda x: x["beside"]["p99_us"])
        opsa, opsb = med(lambda x: x["alone"]["ops_per_sec"]), med(lambda x: x["beside"]["ops_per_sec"])
        print(f"| {name} | {mib(base):.1f} MiB | {mib(busy):.1f} MiB | {mib(full):.1f} MiB | "
              f"{(full - base) / total / 1024:.2f} KiB | {(full - busy) / a.idle / 1024:.2f} KiB | "
              f"{mib(after):.1f} MiB ({(after - base) / base * 100:+.0f} %) | {opsa:,.0f}, {p99a:,.0f} µs | "
              f"{opsb:,.0f}, {p99b:,.0f} µs | {p99b / p99a:.2f}× |")
    print("\nCommands:\n")
    for name, cmd in cmds.items():
        print(f"- {name}: `{' '.join(cmd).replace(ROOT + '/', '').replace(tmp, '$TMP')}`")
    print(f"- active load: `{' '.join(load).replace(ROOT + '/', '')}`; idle connections: one `version` each, "
          "then held open")


if __name__ == "__main__":
    main()
