#!/usr/bin/env python3
"""Same-run comparison of the sharding proxies: memshard proxy vs nutcracker,
both in front of the same 3 memcached backends, plus direct memcached.

    cargo build --release -p memshard
    python3 bench/compare_proxy.py [--rounds 3] [--duration 8] [--workers 1 2] [--all-workers]
    python3 bench/compare_proxy.py --generators memshard memtier   # both load generators, same run
    python3 bench/compare_proxy.py --callgrind [--duration 10]
    python3 bench/compare_proxy.py --syscalls --generators memshard memtier --workers 1

Throughput mode sets every key once per target, then alternates the targets
in rounds so machine drift hits all alike (one memshard proxy per
`--workers` value, all running side by side); prints a Markdown report with
ops/s and latency, and the CPU time (user + system, from /proc) each process
spent per request served, which says where the shared cores went.

`--callgrind` mode counts CPU instructions per request instead, which other
load on the machine does not disturb: each proxy runs alone under
`valgrind --tool=callgrind`, the keys are set first, the counters are zeroed,
then `memshard bench` runs for `--duration` seconds; instructions executed by
the proxy (every thread) are divided by the requests the backends served in
that window (their `cmd_get + cmd_set`).

Installs nothing; needs memcached and nutcracker (and valgrind for
`--callgrind`, perf for `--syscalls`, memtier_benchmark in PATH or $MEMTIER
for `--generators memtier`) in PATH. `--syscalls` counts the proxies' system
calls per request with `perf stat` and splits their CPU into user and kernel
time. Loopback only; every process started is stopped.
"""
import argparse, glob, os, resource, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, cpu_seconds as cpu_secs, free_port, pool_file, served, start, stop, wait_listen  # noqa: E402
import common  # noqa: E402

# The load generator (`memshard bench`); --bench-bin replaces it.
BENCH_BIN = MEMSHARD


def proxy_cmds(tmp, backends, workers, proxy_bin, all_workers=False):
    """(name, command, listen port) of nutcracker and one memshard proxy per worker count (and, with
    `all_workers`, one more per count above 1 that keeps every worker active)."""
    port = free_port()
    out = [("nutcracker", ["nutcracker", "-c", pool_file(tmp, "nutcracker", port, [b[1] for b in backends]), "-s", str(free_port()),
                           "-a", "127.0.0.1", "-o", os.path.join(tmp, "nutcracker.log")], port)]
    variants = [(w, False) for w in workers] + ([(w, True) for w in workers if w > 1] if all_workers else [])
    for w, every in variants:
        port = free_port()
        tag = f"w{w}{'_all' if every else ''}"
        cmd = [proxy_bin, "proxy", "-c", pool_file(tmp, f"memshard_{tag}", port, [b[1] for b in backends]), "-s", str(free_port()),
               "-a", "127.0.0.1", "--workers", str(w)] + (["--all-workers"] if every else [])
        out.append((f"memshard proxy -w{w}{' --all-workers' if every else ''}", cmd, port))
    return out


def switches(pid):
    """Voluntary context switches of every thread of a process so far."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(path) as f:
                total += sum(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
        except OSError:
            pass  # a thread that ended meanwhile
    return total


def callgrind(a, backends, tmp):
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found: apt-get install valgrind")
    print("### Instructions per request under callgrind (50 conns, 90% get / 10% set, 100-byte values, "
          f"{a.keys} keys all hits, {a.duration:g} s per cell)\n")
    print("| proxy | pipeline | requests | instructions | instructions / request |")
    print("|---|---|---|---|---|")
    load_cmd, cmds = None, {}
    for name, cmd, port in proxy_cmds(tmp, backends, a.workers, a.proxy_bin):
        if a.only and a.only not in name:
            continue
        cmds[name] = cmd
        for pipeline in a.pipelines:
            out = os.path.join(tmp, f"cg.{name.replace(' ', '_')}.{pipeline}")

            def load():
                before = served(backends)
                _, load_cmd = bench(port, pipeline, a.duration, keys=a.keys, warmup=0)
                return before, served(backends), load_cmd

            ir, (before, after, load_cmd) = common.callgrind_instructions(
                cmd, port, out, lambda: bench(port, 16, 1, prefill=True, keys=a.keys, warmup=0), load)
            n = after - before
            print(f"| {name} | {pipeline} | {n:,} | {ir:,} | {ir / n:,.0f} |", flush=True)
    print("\nCommands:\n")
    print("- each proxy: `valgrind --tool=callgrind <proxy command>`, then a prefill, "
          "`callgrind_control -z PID`, the load, `callgrind_control -d PID`")
    for name, cmd in cmds.items():
        print(f"- {name}: `{' '.join(cmd).replace(ROOT + '/', '')}`")
    print(f"- load: `{' '.join(load_cmd).replace(ROOT + '/', '')}` (port and -P per cell)")


def bench(port, pipeline, duration, prefill=False, keys=100000, warmup=1):
    """One `memshard bench` run (the keys set beforehand unless `prefill`); its JSON report and command."""
    return common.bench(port, pipeline, duration, keys=keys, warmup=warmup, prefill=prefill, binary=BENCH_BIN)


def throughput(a, backends, direct, tmp):
    procs, targets, cmds, pids = [], {"memcached direct": direct[1]}, {}, {"memcached direct": None}
    servers = {"memcached direct": [direct]}
    try:
        for name, cmd, port in proxy_cmds(tmp, backends, a.workers, a.proxy_bin, a.all_workers):
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_listen(port)
            targets[name], cmds[name], pids[name], servers[name] = port, cmd, procs[-1].pid, backends
        # Every key set once per target (each generator has its own key
        # names), so that every get of the runs hits.
        for port in targets.values():
            bench(port, 16, 0.1, prefill=True)
            if "memtier" in a.generators:
                common.memtier(port, 1, 1, prefill=True)
        results, cpu, load_cmds = {}, {}, {}
        run = {"memshard": lambda port, p: bench(port, p, a.duration),
               "memtier": lambda port, p: common.memtier(port, p, a.duration, threads=a.memtier_threads)}
        for pipeline in (1, 16):
            for r in range(a.rounds):
                order = list(targets) if r % 2 == 0 else list(reversed(list(targets)))
                gens = a.generators if r % 2 == 0 else list(reversed(a.generators))
                for k in order:
                    for g in gens:
                        # CPU per request of each process, over the whole run (warm-up included).
                        before = (served(servers[k]), pids[k] and cpu_secs(pids[k]),
                                  sum(cpu_secs(b[0].pid) for b in servers[k]),
                                  resource.getrusage(resource.RUSAGE_CHILDREN), pids[k] and switches(pids[k]))
                        rep, load_cmds[g] = run[g](targets[k], pipeline)
                        after = (served(servers[k]), pids[k] and cpu_secs(pids[k]),
                                 sum(cpu_secs(b[0].pid) for b in servers[k]),
                                 resource.getrusage(resource.RUSAGE_CHILDREN), pids[k] and switches(pids[k]))
                        n = after[0] - before[0]
                        gen = lambda u: u.ru_utime + u.ru_stime
                        cpu.setdefault((k, pipeline, g), []).append(
                            ((after[1] - before[1]) * 1e6 / n if pids[k] else 0.0, (after[2] - before[2]) * 1e6 / n,
                             (gen(after[3]) - gen(before[3])) * 1e6 / n,
                             (after[4] - before[4]) / n if pids[k] else 0.0))
                        results.setdefault((k, pipeline, g), []).append(rep)
                        print(f"  {k} P{pipeline} {g} round {r + 1}: {rep['ops_per_sec']:.0f} ops/s "
                              f"p99 {rep['p99_us']:.0f}us errors {rep['errors']}", file=sys.stderr)
    finally:
        for p in procs:
            stop(p)
    for g in a.generators:
        report(a, g, targets, pids, results, cpu, cmds, backends, load_cmds[g])


def report(a, g, targets, pids, results, cpu, cmds, backends, load_cmd):
    """The Markdown tables of the runs of generator `g`."""
    results = {(k, p): v for (k, p, gg), v in results.items() if gg == g}
    cpu = {(k, p): v for (k, p, gg), v in cpu.items() if gg == g}
    print(f"## Load generator: {'memshard bench' if g == 'memshard' else 'memtier_benchmark'}\n")
    print(f"### Proxies in front of 3 × memcached (50 conns, 90% get / 10% set, 100-byte values, 100k keys all "
          f"hits, {a.rounds} alternating rounds of {a.duration:g} s, median)\n")
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
    print("\n#### CPU per request (µs, user + system, median of the rounds; every request of the run, warm-up "
          "included)\n")
    print("| target | pipeline | proxy | memcached (all) | generator | total | proxy's voluntary context switches per request |")
    print("|---|---|---|---|---|---|---|")
    for pipeline in (1, 16):
        for k in targets:
            med = [statistics.median(c[i] for c in cpu[(k, pipeline)]) for i in range(4)]
            proxy, vcs = (f"{med[0]:.2f}", f"{med[3]:.3f}") if pids[k] else ("—", "—")
            print(f"| {k} | {pipeline} | {proxy} | {med[1]:.2f} | {med[2]:.2f} | {sum(med[:3]):.2f} | {vcs} |")
    print("\nCommands:\n")
    print(f"- backends and direct: `{' '.join(backends[0][2])}` (one port each)")
    for name, cmd in cmds.items():
        print(f"- {name}: `{' '.join(cmd).replace(ROOT + '/', '')}`")
    print(f"- load: `{' '.join(load_cmd).replace(ROOT + '/', '')}` (port per target)\n")


CALLS = ["recvfrom", "sendto", "read", "writev", "epoll_wait", "epoll_ctl", "getpeername"]


def syscalls(a, backends, tmp):
    """System calls and CPU per request of each proxy under each generator,
    counted by `perf stat` on the kernel's system-call tracepoints (counting
    a tracepoint does not stop the process, unlike strace, so the batching
    the counts depend on is the unperturbed one), with the user/kernel split
    of the proxy's CPU from /proc."""
    if not shutil.which("perf"):
        sys.exit("perf not found: apt-get install linux-perf")
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{c}" for c in CALLS]
    rows, procs = [], []
    try:
        for name, cmd, port in proxy_cmds(tmp, backends, a.workers, a.proxy_bin):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_listen(port)
            bench(port, 16, 0.1, prefill=True)
            if "memtier" in a.generators:
                common.memtier(port, 1, 1, prefill=True)
            for g in a.generators:
                for pipeline in a.pipelines:
                    out = os.path.join(tmp, f"perf.{p.pid}.{g}.{pipeline}")
                    tracer = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(events), "-p", str(p.pid)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                    before, cpu0 = served(backends), common.user_system(p.pid)
                    if g == "memtier":
                        common.memtier(port, pipeline, a.duration, threads=a.memtier_threads)
                    else:
                        bench(port, pipeline, a.duration, warmup=0)
                    after, cpu1 = served(backends), common.user_system(p.pid)
                    tracer.send_signal(2)
                    tracer.wait(30)
                    calls = {}
                    with open(out) as f:
                        for line in f:
                            parts = line.strip().split(",")
                            if len(parts) >= 3 and parts[0].isdigit():
                                calls[parts[2].split(":")[-1].removeprefix("sys_enter_")] = int(parts[0])
                    # Requests as the clients count them (a multi-key fragment is one).
                    n = max(after - before, 1)
                    user, system = (cpu1[0] - cpu0[0]) / n * 1e6, (cpu1[1] - cpu0[1]) / n * 1e6
                    rows.append((name, g, pipeline, n, calls, user, system))
                    print(f"  {name} {g} P{pipeline}: {n} requests, {calls.get('sys_enter', 0)} calls", file=sys.stderr)
    finally:
        for p in procs:
            stop(p)
    print(f"### System calls and CPU per request of the proxy ({a.duration:g} s of load, `perf stat` on the system-call tracepoints)\n")
    print("| proxy | generator | pipeline | " + " | ".join(f"`{c}`" for c in CALLS) + " | all calls | user µs | kernel µs | kernel share |")
    print("|---|---|---|" + "---|" * (len(CALLS) + 4))
    for name, g, pipeline, n, calls, user, system in rows:
        cells = " | ".join(f"{calls.get(c, 0) / n:.2f}" for c in CALLS)
        share = system / (user + system) if user + system else 0
        print(f"| {name} | {g} | {pipeline} | {cells} | {calls.get('sys_enter', 0) / n:.2f} | {user:.2f} | {system:.2f} | {share:.0%} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[2], help="one memshard proxy per value")
    ap.add_argument("--all-workers", action="store_true",
                    help="also one proxy per worker count above 1 with every worker active (--all-workers)")
    ap.add_argument("--proxy-bin", default=MEMSHARD, help="memshard binary that runs the proxy")
    ap.add_argument("--bench-bin", default=MEMSHARD, help="memshard binary that runs the load")
    ap.add_argument("--callgrind", action="store_true", help="count instructions per request instead")
    ap.add_argument("--syscalls", action="store_true", help="count system calls and CPU per request (perf stat) instead")
    ap.add_argument("--only", help="--callgrind: only the proxies whose name contains this")
    ap.add_argument("--pipelines", type=int, nargs="+", default=[1, 16], help="--callgrind: pipeline depths")
    ap.add_argument("--keys", type=int, default=10000, help="key space of --callgrind runs")
    ap.add_argument("--generators", nargs="+", choices=["memshard", "memtier"], default=["memshard"],
                    help="load generators, alternated in every round (memtier: $MEMTIER or memtier_benchmark in PATH)")
    ap.add_argument("--memtier-threads", type=int, default=1, help="memtier's threads (its 50 connections split)")
    a = ap.parse_args()
    global BENCH_BIN
    BENCH_BIN = a.bench_bin
    if not (os.path.exists(a.proxy_bin) and os.path.exists(BENCH_BIN)):
        sys.exit("build first: cargo build --release -p memshard")
    for peer in ("memcached", "nutcracker"):
        if not shutil.which(peer):
            sys.exit(f"{peer} not found: apt-get install memcached nutcracker")
    if "memtier" in a.generators and not common.memtier_bin():
        sys.exit("memtier_benchmark not found: set MEMTIER=/path/to/memtier_benchmark")
    print("peers: memcached, nutcracker found", file=sys.stderr)
    procs = []
    try:
        backends = [start("memcached", 1, 1024) for _ in range(3)]
        procs += [b[0] for b in backends]
        tmp = tempfile.mkdtemp(prefix="memshard-bench-")
        print(f"files (pool files, callgrind dumps) in {tmp}", file=sys.stderr)
        if a.callgrind:
            callgrind(a, backends, tmp)
        elif a.syscalls:
            syscalls(a, backends, tmp)
        else:
            direct = start("memcached", 1, 1024)
            procs.append(direct[0])
            throughput(a, backends, direct, tmp)
    finally:
        for p in procs:
            stop(p)


if __name__ == "__main__":
    main()
