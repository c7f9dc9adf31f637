#!/usr/bin/env python3
"""What replication costs: one memshard proxy with `replicas: 2` beside one
with `replicas: 1` (twemproxy's placement), in front of the same 3 memcached
backends, in the same run.

    cargo build --release -p memshard
    python3 bench/replicas.py [--rounds 3] [--duration 6] [--workers 2]
    python3 bench/replicas.py --callgrind [--duration 5]

Each cell (get ratio x pipeline depth) runs both proxies in alternating
rounds, so machine drift hits both alike; prints a Markdown report with
ops/s, p99, the proxy's CPU time per client request (user + system, from
/proc, over the whole run; the load has no warm-up, so every request of the
run is counted), and the backends' requests per client request (what R
writes cost the shards). Every key is set through each proxy first, so
every get hits.

`--callgrind` counts the proxy's CPU instructions per client request
instead, which other load on the machine does not disturb: each proxy runs
alone under `valgrind --tool=callgrind`, the keys are set, the counters
zeroed, then the load runs for `--duration` seconds.

Installs nothing; needs memcached in PATH (and valgrind for `--callgrind`). Loopback only; every process
started is stopped.
"""
import argparse, os, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, cpu_seconds, free_port, pool_file, served, start, stop, wait_listen  # noqa: E402
import common  # noqa: E402


def proxy_cmd(tmp, backends, r, workers):
    """The command of a memshard proxy with `replicas: r` and its listen port."""
    port = free_port()
    path = pool_file(tmp, f"r{r}", port, [b[1] for b in backends], extra=f"  replicas: {r}\n")
    return [MEMSHARD, "proxy", "-c", path, "-s", str(free_port()), "-a", "127.0.0.1", "--workers", str(workers)], port


def callgrind(a, backends, tmp):
    """Instructions per client request of each proxy, alone under callgrind, per cell."""
    print(f"### Instructions per client request under callgrind (50 conns, 100-byte values, 100k keys all hits, "
          f"--workers {a.workers}, {a.duration:g} s per cell)\n")
    print("| gets | pipeline | replicas | requests | instructions / request | vs R=1 |")
    print("|---|---|---|---|---|---|")
    cmds, load_cmd = {}, None
    for ratio in a.ratios:
        for pipeline in a.pipelines:
            base = None
            for r in (1, 2):
                cmd, port = proxy_cmd(tmp, backends, r, a.workers)
                cmds[r] = cmd
                out = os.path.join(tmp, f"cg.r{r}.{pipeline}.{ratio}")
                ir, (rep, load_cmd) = common.callgrind_instructions(
                    cmd, port, out, lambda: common.bench(port, 16, 1, prefill=True, warmup=0),
                    lambda: common.bench(port, pipeline, a.duration, prefill=False, warmup=0, get_ratio=ratio))
                per = ir / max(rep["ops"], 1)
                base = base or per
                print(f"| {ratio:.0%} | {pipeline} | {r} | {rep['ops']:,} | {per:,.0f} | {per / base:.2f}× |", flush=True)
    print("\nCommands:\n")
    print("- each proxy: `valgrind --tool=callgrind <proxy command>`, then a prefill, "
          "`callgrind_control -z PID`, the load, `callgrind_control -d PID`")
    for r, cmd in cmds.items():
        print(f"- replicas: {r}: `{' '.join(cmd).replace(ROOT + '/', '').replace(tmp + '/', '')}`")
    print(f"- load: `{' '.join(load_cmd).replace(ROOT + '/', '')}` (port, -P and --get-ratio per cell)\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ratios", type=float, nargs="+", default=[1.0, 0.9, 0.5])
    ap.add_argument("--pipelines", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--callgrind", action="store_true", help="count instructions per request instead")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="memshard-replicas-")
    backends = [start("memcached", 1, 1024) for _ in range(3)]
    if a.callgrind:
        try:
            return callgrind(a, backends, tmp)
        finally:
            for b in backends:
                stop(b[0])
    procs, targets, cmds = [], {}, {}
    try:
        for r in (1, 2):
            cmd, port = proxy_cmd(tmp, backends, r, a.workers)
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_listen(port)
            targets[f"replicas: {r}"], cmds[f"replicas: {r}"] = (port, procs[-1].pid), cmd
        for port, _ in targets.values():
            common.bench(port, 16, 0.1, prefill=True, warmup=0)
        results, load_cmd = {}, None
        for ratio in a.ratios:
            for pipeline in a.pipelines:
                for rnd in range(a.rounds):
                    order = list(targets) if rnd % 2 == 0 else list(reversed(list(targets)))
                    for k in order:
                        port, pid = targets[k]
                        before = (cpu_seconds(pid), served(backends))
                        rep, load_cmd = common.bench(port, pipeline, a.duration, prefill=False, warmup=0,
                                                     get_ratio=ratio)
                        after = (cpu_seconds(pid), served(backends))
                        n = max(rep["ops"], 1)
                        cell = (k, ratio, pipeline)
                        results.setdefault(cell, []).append(
                            (rep["ops_per_sec"], rep["p99_us"], (after[0] - before[0]) * 1e6 / n,
                             (after[1] - before[1]) / n, rep["errors"]))
                        print(f"  {k} get {ratio:.0%} P{pipeline} round {rnd + 1}: {rep['ops_per_sec']:.0f} ops/s "
                              f"p99 {rep['p99_us']:.0f}us errors {rep['errors']}", file=sys.stderr)
    finally:
        for p in procs:
            stop(p)
        for b in backends:
            stop(b[0])
    print(f"### replicas: 2 vs replicas: 1 (3 × memcached, 50 conns, 100-byte values, 100k keys all hits, "
          f"--workers {a.workers}, {a.rounds} alternating rounds of {a.duration:g} s, median)\n")
    print("| gets | pipeline | replicas | ops/s | rounds | p99 µs | proxy CPU µs / request | backend requests / request "
          "| errors | ops/s vs R=1 | p99 vs R=1 | CPU vs R=1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ratio in a.ratios:
        for pipeline in a.pipelines:
            base = [statistics.median(x[i] for x in results[("replicas: 1", ratio, pipeline)]) for i in range(4)]
            for k in targets:
                rows = results[(k, ratio, pipeline)]
                med = [statistics.median(x[i] for x in rows) for i in range(4)]
                runs = " / ".join(f"{x[0] / 1000:.0f}k" for x in rows)
                errors = sum(x[4] for x in rows)
                print(f"| {ratio:.0%} | {pipeline} | {k.split(': ')[1]} | {med[0]:,.0f} | {runs} | {med[1]:.0f} | "
                      f"{med[2]:.2f} | {med[3]:.2f} | {errors} | {med[0] / base[0]:.2f}× | {med[1] / base[1]:.2f}× | "
                      f"{med[2] / base[2]:.2f}× |")
    print("\nCommands:\n")
    print(f"- backends: `{' '.join(backends[0][2])}` (one port each)")
    for name, cmd in cmds.items():
        print(f"- {name}: `{' '.join(cmd).replace(ROOT + '/', '').replace(tmp + '/', '')}` (pool file: the seed's "
              f"settings, `{name}`)")
    print(f"- load: `{' '.join(load_cmd).replace(ROOT + '/', '')}` (port, -P and --get-ratio per cell)\n")


if __name__ == "__main__":
    main()
