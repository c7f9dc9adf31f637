#!/usr/bin/env python3
"""What the proxy's admin surface costs: two memshard proxies on the same 3
memcached backends, A without `--admin`, B with `--admin 127.0.0.1:0` (the
admin HTTP port, and with it each pool's hot-key sketch, fed the keys of one
request in 64 on the data path), in the same run.

    cargo build --release -p memshard
    python3 bench/admin_overhead.py [--rounds 7] [--duration 8] [--workers 1] [--key-dist uniform] [--out FILE]
    python3 bench/admin_overhead.py --no-scrape ...     # B not read: the data path's share alone
    python3 bench/admin_overhead.py --callgrind [--duration 5] [--out FILE]

Throughput mode sets every key once, then runs `memshard bench` (closed
loop, 50 connections, 90 % get / 10 % set, 100-byte values, 100k keys, so
every get hits) against A and B in alternating rounds at pipeline 1 and 16,
so machine drift hits both alike. Around each run it reads the proxy's CPU
time (user + system, every thread, /proc/PID/stat) and the requests the
backends served, for the proxy's CPU µs per request. While B is loaded, a
thread of this script reads B's /metrics, /hotkeys and /summary.json once a
second each (what Prometheus, `curl` and the dashboard would read), so what
B is measured at includes being read. Per-server latency histograms and
hit/miss counters are kept by both proxies alike (they are counted with or
without the admin port). Prints a Markdown table (medians of the rounds, B/A,
min–max of the rounds) and writes every run to `--out` as JSON.

`--callgrind` counts instructions instead, which other load on the machine
does not disturb: each proxy runs alone under `valgrind --tool=callgrind`,
the keys are set, the counters zeroed, then the load runs for `--duration`
seconds; the proxy's instructions (every thread) are divided by the
requests the backends served. B is not read during those runs (under
valgrind a request is ~50× slower, so a scrape a second would weigh ~50×
what it weighs at full speed); a scrape's own instructions are counted
apart, on B with a full sketch and no load: one scrape set is /metrics,
/hotkeys and /summary.json once each.

Builds and installs nothing: needs target/release/memshard (`cargo build
--release -p memshard`), memcached in PATH, and valgrind for `--callgrind`.
Loopback only, free ports; every process started is stopped by its PID.
"""
import argparse, datetime, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MEMSHARD, free_port, load_avg, pool_file, rel, served, spread, start, stop,  # noqa: E402
                    tree_commit, wait_listen)
import common  # noqa: E402

# What is read from B's admin port during its runs, each once a second.
SCRAPED = ("/metrics", "/hotkeys", "/summary.json")
# Loopback only: never through an HTTP proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def proxy_cmd(tmp, name, backends, workers, admin):
    """A memshard proxy's command, its listen port and its log file."""
    port = free_port()
    log = os.path.join(tmp, f"{name}.log")
    cmd = [MEMSHARD, "proxy", "-c", pool_file(tmp, name, port, [b[1] for b in backends]), "-s", str(free_port()),
           "-a", "127.0.0.1", "-o", log]
    if workers:
        cmd += ["--workers", str(workers)]
    if admin:
        cmd += ["--admin", "127.0.0.1:0"]
    return cmd, port, log


def admin_port(log, timeout=120):
    """The port the proxy's admin surface took (`--admin 127.0.0.1:0`), from its log."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(log) as f:
                for line in f:
                    m = re.search(r"listening on \S+:(\d+)", line)
                    if m and "proxy-admin" in line:
                        return int(m.group(1))
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no admin port in {log}")


def scrape_once(port):
    """One GET of every path in SCRAPED; bytes read."""
    n = 0
    for path in SCRAPED:
        with OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            if r.status != 200:
                raise RuntimeError(f"{path}: HTTP {r.status}")
            n += len(r.read())
    return n


class Scraper(threading.Thread):
    """Reads every path in SCRAPED once per `interval` seconds until stopped."""

    def __init__(self, port, interval=1.0):
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.done = threading.Event()
        self.sets = self.failed = self.bytes = 0

    def run(self):
        due = time.monotonic()
        while not self.done.is_set():
            try:
                self.bytes += scrape_once(self.port)
                self.sets += 1
            except Exception as e:  # noqa: BLE001 — counted and reported, the run goes on
                self.failed += 1
                print(f"  scrape failed: {e}", file=sys.stderr)
            due += self.interval
            self.done.wait(max(0.0, due - time.monotonic()))

    def stop(self):
        self.done.set()
        self.join(10)


def throughput(a, backends, tmp):
    procs, targets, cmds = {}, {}, {}
    runs, load_cmd = [], None
    extra = ("--key-dist", a.key_dist)
    try:
        for k, admin in (("A", False), ("B", True)):
            cmd, port, log = proxy_cmd(tmp, k, backends, a.workers, admin)
            procs[k] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_listen(port)
            targets[k], cmds[k] = {"port": port, "pid": procs[k].pid, "log": log}, cmd
        targets["B"]["admin_port"] = admin_port(targets["B"]["log"])
        scrape_once(targets["B"]["admin_port"])  # the admin port answers before anything is measured
        # Every key set once (both proxies share the backends, and set them alike).
        for k in targets:
            common.bench(targets[k]["port"], 16, 0.1, keys=a.keys, warmup=0, prefill=True, extra=extra)
        load0 = load_avg()
        for pipeline in a.pipelines:
            for r in range(a.rounds):
                for k in (("A", "B") if r % 2 == 0 else ("B", "A")):
                    t = targets[k]
                    scraper = Scraper(t["admin_port"]) if k == "B" and not a.no_scrape else None
                    if scraper:
                        scraper.start()
                    n0, cpu0 = served(backends), common.user_system(t["pid"])
                    rep, load_cmd = common.bench(t["port"], pipeline, a.duration, keys=a.keys, warmup=a.warmup,
                                                 prefill=False, extra=extra)
                    n1, cpu1 = served(backends), common.user_system(t["pid"])
                    if scraper:
                        scraper.stop()
                    n = max(n1 - n0, 1)
                    run = {"proxy": k, "pipeline": pipeline, "round": r + 1, "ops_per_sec": rep["ops_per_sec"],
                           "p50_us": rep["p50_us"], "p99_us": rep["p99_us"], "errors": rep["errors"],
                           "backend_requests": n, "user_s": cpu1[0] - cpu0[0], "system_s": cpu1[1] - cpu0[1],
                           "cpu_us_per_request": (sum(cpu1) - sum(cpu0)) * 1e6 / n}
                    if scraper:
                        run.update(scrape_sets=scraper.sets, scrape_failures=scraper.failed, scrape_bytes=scraper.bytes)
                    runs.append(run)
                    print(f"  {k} P{pipeline} round {r + 1}: {rep['ops_per_sec']:.0f} ops/s, "
                          f"{run['cpu_us_per_request']:.2f} CPU-µs/req, p99 {rep['p99_us']:.0f}us, errors {rep['errors']}"
                          + (f", {scraper.sets} scrape sets ({scraper.failed} failed)" if scraper else ""),
                          file=sys.stderr)
        load1 = load_avg()
    finally:
        for p in procs.values():
            stop(p)
    summary = {}
    for pipeline in a.pipelines:
        cell = {}
        for k in ("A", "B"):
            rs = [x for x in runs if x["proxy"] == k and x["pipeline"] == pipeline]
            cell[k] = {"ops_per_sec": statistics.median(x["ops_per_sec"] for x in rs),
                       "ops_min": min(x["ops_per_sec"] for x in rs), "ops_max": max(x["ops_per_sec"] for x in rs),
                       "cpu_us": statistics.median(x["cpu_us_per_request"] for x in rs),
                       "cpu_min": min(x["cpu_us_per_request"] for x in rs),
                       "cpu_max": max(x["cpu_us_per_request"] for x in rs),
                       "p99_us": statistics.median(x["p99_us"] for x in rs),
                       "errors": sum(x["errors"] for x in rs)}
        # Each round's pair (A and B back to back), B/A: the drift between rounds cancels.
        pairs = [([x for x in runs if x["proxy"] == "B" and x["pipeline"] == pipeline and x["round"] == r][0],
                  [x for x in runs if x["proxy"] == "A" and x["pipeline"] == pipeline and x["round"] == r][0])
                 for r in range(1, a.rounds + 1)]
        cell["ops_ratio"] = cell["B"]["ops_per_sec"] / cell["A"]["ops_per_sec"]
        cell["cpu_ratio"] = cell["B"]["cpu_us"] / cell["A"]["cpu_us"]
        cell["ops_ratio_paired"] = statistics.median(b["ops_per_sec"] / x["ops_per_sec"] for b, x in pairs)
        cell["cpu_ratio_paired"] = statistics.median(b["cpu_us_per_request"] / x["cpu_us_per_request"] for b, x in pairs)
        cell["within_3pct"] = cell["ops_ratio"] >= 0.97 and cell["cpu_ratio"] <= 1.03
        summary[str(pipeline)] = cell
    scr = [x for x in runs if x["proxy"] == "B" and "scrape_sets" in x]
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": tree_commit(),
           "machine": {"cpus": os.cpu_count(), "loadavg_before": load0, "loadavg_after": load1},
           "settings": {"rounds": a.rounds, "duration_s": a.duration, "warmup_s": a.warmup, "workers": a.workers,
                        "keys": a.keys, "key_dist": a.key_dist, "pipelines": a.pipelines, "connections": 50,
                        "get_ratio": 0.9, "value_bytes": 100, "scraped_paths": list(SCRAPED), "scrape_interval_s": 1.0,
                        "hot_key_sample": "1 in 64", "scraped": not a.no_scrape},
           "commands": {"backends": rel(backends[0][2], tmp), "A": rel(cmds["A"], tmp), "B": rel(cmds["B"], tmp),
                        "load": rel(load_cmd, tmp)},
           "scrapes": {"sets": sum(x["scrape_sets"] for x in scr), "failed": sum(x["scrape_failures"] for x in scr)},
           "summary": summary, "runs": runs}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)
    workers = f"--workers {a.workers}" if a.workers else "default workers"
    print(f"### Admin port and hot keys on vs off (3 × memcached, 50 conns, 90% get / 10% set, 100-byte values, "
          f"{a.keys // 1000}k keys {a.key_dist}, all hits, {workers}, {a.rounds} alternating rounds of {a.duration:g} s, "
          f"median)\n")
    print(f"| pipeline | ops/s A (no admin) | ops/s B (admin{'' if a.no_scrape else ', scraped'}) | B/A | B/A per round (median) | "
          "proxy CPU µs / req A | B | B/A | B/A per round (median) | p99 µs A / B | within 3 % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for pipeline in a.pipelines:
        c = summary[str(pipeline)]
        A, B = c["A"], c["B"]
        kops = lambda v: f"{v / 1000:.0f}k"
        two = lambda v: f"{v:.2f}"
        print(f"| {pipeline} | {A['ops_per_sec']:,.0f} ({spread([A['ops_min'], A['ops_max']], kops)}) | "
              f"{B['ops_per_sec']:,.0f} ({spread([B['ops_min'], B['ops_max']], kops)}) | {c['ops_ratio']:.3f} | "
              f"{c['ops_ratio_paired']:.3f} | {A['cpu_us']:.2f} ({spread([A['cpu_min'], A['cpu_max']], two)}) | "
              f"{B['cpu_us']:.2f} ({spread([B['cpu_min'], B['cpu_max']], two)}) | {c['cpu_ratio']:.3f} | "
              f"{c['cpu_ratio_paired']:.3f} | {A['p99_us']:.0f} / {B['p99_us']:.0f} | "
              f"{'yes' if c['within_3pct'] else 'no'} |")
    errors = sum(x["errors"] for x in runs)
    print(f"\nRun of {doc['date']}, commit {doc['commit']}; load average {load0[0]:.2f} before, {load1[0]:.2f} after; "
          f"B read {doc['scrapes']['sets']} times ({doc['scrapes']['failed']} failed) during its runs; "
          f"{errors} request errors.\n")
    print("Commands:\n")
    print(f"- backends: `{doc['commands']['backends']}` (one port each)")
    print(f"- A: `{doc['commands']['A']}`")
    print(f"- B: `{doc['commands']['B']}`" + ("" if a.no_scrape else
          f", and during its runs `GET {', '.join(SCRAPED)}` once a second each"))
    print(f"- load: `{doc['commands']['load']}` (port and -P per cell)\n")


def callgrind(a, backends, tmp):
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found: apt-get install valgrind")
    extra = ("--key-dist", a.key_dist)
    rows, cmds, load_cmd = [], {}, None
    for pipeline in a.pipelines:
        for k, admin in (("A", False), ("B", True)):
            cmd, port, _ = proxy_cmd(tmp, f"cg-{k}-{pipeline}", backends, a.workers, admin)
            cmds[k] = cmd
            out = os.path.join(tmp, f"cg.{k}.{pipeline}")

            def load():
                before = served(backends)
                rep, c = common.bench(port, pipeline, a.duration, keys=a.keys, warmup=0, prefill=False, extra=extra)
                return served(backends) - before, rep, c

            ir, (n, rep, load_cmd) = common.callgrind_instructions(
                cmd, port, out, lambda: common.bench(port, 16, 1, keys=a.keys, warmup=0, prefill=True, extra=extra), load)
            rows.append({"proxy": k, "pipeline": pipeline, "requests": n, "instructions": ir,
                         "per_request": ir / max(n, 1)})
            print(f"  {k} P{pipeline}: {n} requests, {ir / max(n, 1):.0f} instructions/request", file=sys.stderr)
    # A scrape set's own instructions: B with a full sketch (keys set, 2 s of load), no load while read.
    cmd, port, log = proxy_cmd(tmp, "cg-scrape", backends, a.workers, True)
    out = os.path.join(tmp, "cg.scrape")
    sets = 20

    def fill():
        common.bench(port, 16, 1, keys=a.keys, warmup=0, prefill=True, extra=extra)
        common.bench(port, 1, 2, keys=a.keys, warmup=0, prefill=False, extra=extra)

    def read():
        p = admin_port(log)
        return sum(scrape_once(p) for _ in range(sets))

    scrape_ir, scrape_bytes = common.callgrind_instructions(cmd, port, out, fill, read)
    per_set = scrape_ir / sets
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": tree_commit(),
           "settings": {"duration_s": a.duration, "workers": a.workers, "keys": a.keys, "key_dist": a.key_dist},
           "commands": {"A": rel(cmds["A"], tmp), "B": rel(cmds["B"], tmp), "load": rel(load_cmd, tmp)},
           "rows": rows, "scrape_set": {"paths": list(SCRAPED), "instructions": per_set, "bytes": scrape_bytes / sets}}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)
    workers = f"--workers {a.workers}" if a.workers else "default workers"
    print(f"### Instructions per request under callgrind (50 conns, 90% get / 10% set, 100-byte values, "
          f"{a.keys // 1000}k keys {a.key_dist}, all hits, {workers}, {a.duration:g} s per cell)\n")
    print("| pipeline | requests A | instructions / request A | requests B | instructions / request B | B/A |")
    print("|---|---|---|---|---|---|")
    for pipeline in a.pipelines:
        ra = [x for x in rows if x["proxy"] == "A" and x["pipeline"] == pipeline][0]
        rb = [x for x in rows if x["proxy"] == "B" and x["pipeline"] == pipeline][0]
        print(f"| {pipeline} | {ra['requests']:,} | {ra['per_request']:,.0f} | {rb['requests']:,} | "
              f"{rb['per_request']:,.0f} | {rb['per_request'] / ra['per_request']:.3f} |")
    print(f"\nOne scrape set ({', '.join(SCRAPED)}, {scrape_bytes / sets / 1024:.1f} KiB) on B with a full sketch: "
          f"{per_set:,.0f} instructions; once a second at 100k requests/s that is {per_set / 100000:.1f} "
          f"instructions per request.\n")
    print("Commands:\n")
    print("- each proxy: `valgrind --tool=callgrind <proxy command>`, then a prefill, `callgrind_control -z PID`, "
          "the load, `callgrind_control -d PID`")
    print(f"- A: `{doc['commands']['A']}`")
    print(f"- B: `{doc['commands']['B']}`")
    print(f"- load: `{doc['commands']['load']}` (port and -P per cell)\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds per pipeline depth (default 7)")
    ap.add_argument("--duration", type=float, default=8, help="measured seconds per run (default 8)")
    ap.add_argument("--warmup", type=float, default=1, help="warm-up seconds before each run (default 1)")
    ap.add_argument("--workers", type=int, default=1,
                    help="--workers of both proxies (default 1; 0: the proxy's default, one per core, adaptive)")
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--key-dist", default="uniform", help="memshard bench --key-dist: uniform (default), zipf, zipf:S")
    ap.add_argument("--pipelines", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--out", help="write the runs and the summary here as JSON")
    ap.add_argument("--no-scrape", action="store_true", help="do not read B's admin port during its runs")
    ap.add_argument("--callgrind", action="store_true", help="count instructions per request instead")
    a = ap.parse_args()
    if not os.path.exists(MEMSHARD):
        sys.exit(f"{MEMSHARD} not found: build first with `cargo build --release -p memshard`")
    if not shutil.which("memcached"):
        sys.exit("memcached not found: apt-get install memcached")
    tmp = tempfile.mkdtemp(prefix="memshard-admin-")
    print(f"files (pool files, logs, callgrind dumps) in {tmp}", file=sys.stderr)
    backends = []
    try:
        for _ in range(3):
            backends.append(start("memcached", 1, 1024))
        if a.callgrind:
            callgrind(a, backends, tmp)
        else:
            throughput(a, backends, tmp)
    finally:
        for b in backends:
            stop(b[0])


if __name__ == "__main__":
    main()
