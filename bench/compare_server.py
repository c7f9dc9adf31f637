#!/usr/bin/env python3
"""Same-run comparison: `memshard server` vs `memcached` at equal thread counts.

Runs `memshard bench` (and with `--generators memshard memtier`,
memtier_benchmark too: $MEMTIER or memtier_benchmark in PATH) against each
server in alternating rounds (so machine drift affects both alike), then measures bytes of process memory per stored
100-byte item (RSS growth over 1M items). Prints a Markdown report.

    cargo build --release -p memshard
    python3 bench/compare_server.py [--rounds 3] [--duration 10] [--threads 1] [--generators memshard memtier]

Installs nothing: it uses `memcached` from PATH if present and says so.
Only loopback addresses are used; every process started is stopped.
"""
import argparse, os, shutil, socket, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, bench, memtier, rss, start, stop  # noqa: E402,F401


def bytes_per_item(kind, threads, items=1_000_000):
    p, port, cmd = start(kind, threads, 1024)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"mn\r\n"); s.recv(16)
        time.sleep(0.5)
        before = rss(p.pid)
        value = b"v" * 100
        batch = []
        for i in range(items):
            batch.append(b"set key:%07d 0 0 100 noreply\r\n%s\r\n" % (i, value))
            if len(batch) == 1000:
                s.sendall(b"".join(batch)); batch = []
        if batch:
            s.sendall(b"".join(batch))
        s.sendall(b"mn\r\n")
        buf = b""
        while not buf.endswith(b"MN\r\n"):
            buf += s.recv(4096)
        s.sendall(b"stats\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            buf += s.recv(65536)
        stats = dict(l.split(" ")[1:3] for l in buf.decode().split("\r\n") if l.startswith("STAT "))
        time.sleep(0.5)
        after = rss(p.pid)
        return (after - before) / items, int(stats.get("curr_items", 0)), int(stats.get("bytes", 0)) / items
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--generators", nargs="+", choices=["memshard", "memtier"], default=["memshard"],
                    help="load generators, alternated in every round")
    a = ap.parse_args()
    if not os.path.exists(MEMSHARD):
        sys.exit("build first: cargo build --release -p memshard")
    mc = shutil.which("memcached")
    print(f"peers: memcached {'found at ' + mc if mc else 'NOT found (memshard only)'}", file=sys.stderr)
    kinds = ["memcached", "memshard"] if mc else ["memshard"]
    results = {}
    cmds = {}
    run = {"memshard": lambda port, p: bench(port, p, a.duration),
           "memtier": lambda port, p: memtier(port, p, a.duration)}
    for pipeline in (1, 16):
        servers = {k: start(k, a.threads, 1024) for k in kinds}
        try:
            if "memtier" in a.generators:
                # memtier's keys set once, so its gets hit as `bench`'s do.
                for k in kinds:
                    memtier(servers[k][1], 1, 1, prefill=True)
            for r in range(a.rounds):
                order = kinds if r % 2 == 0 else list(reversed(kinds))
                gens = a.generators if r % 2 == 0 else list(reversed(a.generators))
                for k in order:
                    for g in gens:
                        rep, cmd = run[g](servers[k][1], pipeline)
                        results.setdefault((k, pipeline, g), []).append(rep)
                        cmds[k] = servers[k][2]
                        cmds["load", g] = cmd
                        print(f"  {k} P{pipeline} {g} round {r+1}: {rep['ops_per_sec']:.0f} ops/s p99 {rep['p99_us']:.0f}us",
                              file=sys.stderr)
        finally:
            for p, _, _ in servers.values():
                stop(p)
    for g in a.generators:
        print(f"### Throughput and latency, {'memshard bench' if g == 'memshard' else 'memtier_benchmark'} "
              f"(-t {a.threads}, 50 conns, 90% get / 10% set, 100-byte values, "
              f"100k keys all hits, {a.rounds} alternating rounds of {a.duration:g} s, median)\n")
        print("| server | pipeline | ops/s (median) | rounds | p50 µs | p99 µs | p99.9 µs | vs memcached |")
        print("|---|---|---|---|---|---|---|---|")
        for pipeline in (1, 16):
            base = None
            for k in kinds:
                reps = results[(k, pipeline, g)]
                ops = statistics.median(r["ops_per_sec"] for r in reps)
                med = lambda f: statistics.median(r[f] for r in reps)
                if k == "memcached":
                    base = ops
                ratio = f"{ops / base:.2f}×" if base else "—"
                runs = " / ".join(f"{r['ops_per_sec'] / 1000:.0f}k" for r in reps)
                print(f"| {k} | {pipeline} | {ops:,.0f} | {runs} | {med('p50_us'):.0f} | {med('p99_us'):.0f} | "
                      f"{med('p999_us'):.0f} | {ratio} |")
        print()
    print("### Memory per stored item (1M × 100-byte values, 11-byte keys, RSS growth / items)\n")
    print("| server | bytes of RSS per item | items held | `bytes` stat per item |")
    print("|---|---|---|---|")
    for k in kinds:
        per, held, stat = bytes_per_item(k, a.threads)
        print(f"| {k} | {per:.1f} | {held:,} | {stat:.1f} |")
    print("\nCommands:\n")
    for k in kinds:
        print(f"- {k}: `{' '.join(cmds[k]).replace(ROOT + '/', '')}`")
    for g in a.generators:
        print(f"- load ({g}): `{' '.join(cmds['load', g]).replace(ROOT + '/', '')}` (port and pipeline per cell)")


if __name__ == "__main__":
    main()
