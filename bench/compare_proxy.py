#!/usr/bin/env python3
"""Same-run comparison of the sharding proxies: memshard proxy vs nutcracker,
both in front of the same 3 memcached backends, plus direct memcached.

    cargo build --release -p memshard
    python3 bench/compare_proxy.py [--rounds 3] [--duration 8] [--workers 2]

Alternates the targets in rounds so machine drift hits all alike; prints a
Markdown report. Installs nothing; needs memcached and nutcracker in PATH.
Loopback only; every process started is stopped.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_server import MEMSHARD, ROOT, bench, free_port, start, stop, wait_listen  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if not os.path.exists(MEMSHARD):
        sys.exit("build first: cargo build --release -p memshard")
    for peer in ("memcached", "nutcracker"):
        if not shutil.which(peer):
            sys.exit(f"{peer} not found: apt-get install memcached nutcracker")
    print("peers: memcached, nutcracker found", file=sys.stderr)
    procs = []
    try:
        backends = [start("memcached", 1, 1024) for _ in range(3)]
        procs += [b[0] for b in backends]
        direct = start("memcached", 1, 1024)
        procs.append(direct[0])
        tmp = tempfile.mkdtemp(prefix="memshard-bench-")
        ports = {"nutcracker": free_port(), "memshard proxy": free_port()}
        for kind, port in ports.items():
            with open(os.path.join(tmp, f"{kind.replace(' ', '_')}.yml"), "w") as f:
                f.write(f"mc:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n"
                        "  timeout: 400\n  auto_eject_hosts: false\n  server_retry_timeout: 2000\n"
                        "  server_failure_limit: 1\n  servers:\n")
                for i, (_, bport, _) in enumerate(backends):
                    f.write(f"   - 127.0.0.1:{bport}:1 mc{i + 1}\n")
        nc_cmd = ["nutcracker", "-c", os.path.join(tmp, "nutcracker.yml"), "-s", str(free_port()), "-a", "127.0.0.1",
                  "-o", os.path.join(tmp, "nutcracker.log")]
        ms_cmd = [MEMSHARD, "proxy", "-c", os.path.join(tmp, "memshard_proxy.yml"), "-s", str(free_port()),
                  "-a", "127.0.0.1", "--workers", str(a.workers)]
        for cmd, port in ((nc_cmd, ports["nutcracker"]), (ms_cmd, ports["memshard proxy"])):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_listen(port)
        targets = {"memcached direct": direct[1], **ports}
        results, load_cmd = {}, None
        for pipeline in (1, 16):
            for r in range(a.rounds):
                order = list(targets) if r % 2 == 0 else list(reversed(list(targets)))
                for k in order:
                    rep, load_cmd = bench(targets[k], pipeline, a.duration)
                    results.setdefault((k, pipeline), []).append(rep)
                    print(f"  {k} P{pipeline} round {r + 1}: {rep['ops_per_sec']:.0f} ops/s p99 {rep['p99_us']:.0f}us "
                          f"errors {rep['errors']}", file=sys.stderr)
        print(f"### Proxies in front of 3 × memcached (50 conns, 90% get / 10% set, 100-byte values, 100k keys all "
              f"hits, {a.rounds} alternating rounds of {a.duration:g} s, median; memshard proxy --workers {a.workers})\n")
        print("| target | pipeline | ops/s (median) | rounds | p50 µs | p99 µs | p99.9 µs | vs nutcracker |")
        print("|---|---|---|---|---|---|---|---|")
        for pipeline in (1, 16):
            base = statistics.median(r["ops_per_sec"] for r in results[("nutcracker", pipeline)])
            for k in targets:
                reps = results[(k, pipeline)]
                med = lambda f: statistics.median(x[f] for x in reps)
                ops = med("ops_per_sec")
                runs = " / ".join(f"{x['ops_per_sec'] / 1000:.0f}k" for x in reps)
                print(f"| {k} | {pipeline} | {ops:,.0f} | {runs} | {med('p50_us'):.0f} | {med('p99_us'):.0f} | "
                      f"{med('p999_us'):.0f} | {ops / base:.2f}× |")
        print("\nCommands:\n")
        print(f"- backends and direct: `{' '.join(backends[0][2])}` (one port each)")
        print(f"- nutcracker: `{' '.join(nc_cmd)}`")
        print(f"- memshard proxy: `{' '.join(ms_cmd).replace(ROOT + '/', '')}`")
        print(f"- load: `{' '.join(load_cmd).replace(ROOT + '/', '')}` (port per target)")
    finally:
        for p in procs:
            stop(p)


if __name__ == "__main__":
    main()
