#!/usr/bin/env python3
"""The performance report in one command: memshard vs nutcracker and memcached
on this machine, in the same run, with the same load generator.

    cargo build --release -p memshard
    python3 bench/report.py                 # writes docs/BENCHMARKS.md's report section + docs/bench/*.png
    python3 bench/report.py --quick         # 1 round of 3 s, to try it out

It installs nothing: it says which peers it found (memcached, nutcracker,
valgrind, matplotlib) and leaves out what needs a missing one. The matrix:

  * direct memcached (-t 1);
  * nutcracker -> 3 memcached;
  * memshard proxy -> the same 3 memcached: with 1 worker (per core, as
    nutcracker's one thread), with the default (up to a worker per core, as
    many active as the load needs) and with every worker active;
  * memshard proxy -> 3 memshard servers;
  * memshard server vs memcached at equal threads (-t 1 and -t 2);

each at pipeline depth 1 and 16 (50 connections, 90 % get / 10 % set, 100-byte
values, 100 k keys, all hits), the systems alternating in every round so that
machine drift affects all of them alike; medians of the rounds are reported.
For every run it reads the CPU time of the proxy or server process from
/proc (CPU-µs per request). With valgrind it also counts instructions per
request of each proxy, and of memshard server and memcached, under callgrind
(a fixed load; the count is the same run after run, whatever else the
machine does). Loopback only; every process started is stopped.
"""
import argparse, datetime, json, os, platform, re, resource, shutil, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, bench, cpu_seconds, free_port, pool_file, start, stop, wait_listen  # noqa: E402
from compare_server import bytes_per_item  # noqa: E402

DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
CHARTS = os.path.join(ROOT, "docs", "bench")
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def run_bench(port, pipeline, duration, extra=()):
    return bench(port, pipeline, duration, warmup=0, prefill=False, extra=extra)


def prefill(port):
    cmd = [MEMSHARD, "bench", "-s", f"127.0.0.1:{port}", "-c", "8", "-d", "0.2", "--warmup", "0",
           "-v", "100", "-k", "100000", "--json", "-q"]
    subprocess.run(cmd, check=True, capture_output=True)


def spawn(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listen(port)
    return p


def proxy_name(workers, all_active=False):
    """The report's name for a memshard proxy in front of the 3 memcached."""
    if workers == 1:
        return "memshard proxy → 3 memcached (1 worker)"
    if all_active:
        return f"memshard proxy → 3 memcached ({workers} workers, all active)"
    return f"memshard proxy → 3 memcached (default: up to {workers} workers)"


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


class Matrix:
    """Starts every system once; `targets` maps a name to (port, pid whose CPU is measured, group)."""

    def __init__(self, have, workers, tmp):
        self.procs, self.targets, self.cmds, self.logs = [], {}, {}, {}
        if have["memcached"]:
            direct = start("memcached", 1, 1024)
            self.procs.append(direct[0])
            self.targets["memcached (direct)"] = (direct[1], direct[0].pid, "proxy")
            self.cmds["memcached"] = " ".join(direct[2])
            mc = [start("memcached", 1, 1024) for _ in range(3)]
            self.procs += [b[0] for b in mc]
        ms = [start("memshard", 1, 1024) for _ in range(3)]
        self.procs += [b[0] for b in ms]
        proxies = []
        if have["memcached"] and have["nutcracker"]:
            port = free_port()
            cmd = ["nutcracker", "-c", pool_file(tmp, "nutcracker", port, [b[1] for b in mc]), "-s", str(free_port()),
                   "-a", "127.0.0.1", "-o", os.path.join(tmp, "nutcracker.log")]
            proxies.append(("nutcracker → 3 memcached", cmd, port))
        if have["memcached"]:
            # nutcracker runs one thread: the per-core comparison is against
            # one worker. The default (up to a worker per core, as many
            # active as the load needs) is what users run; every worker
            # active is the scaling figure.
            variants = [(1, False)] + ([(workers, False), (workers, True)] if workers > 1 else [])
            for w_, all_active in variants:
                port = free_port()
                tag = f"w{w_}{'-all' if all_active else ''}"
                cmd = [MEMSHARD, "proxy", "-c", pool_file(tmp, f"memshard-mc-{tag}", port, [b[1] for b in mc]),
                       "-s", str(free_port()), "-a", "127.0.0.1", "--workers", str(w_),
                       "-o", os.path.join(tmp, f"memshard-mc-{tag}.log")]
                if all_active:
                    cmd.append("--all-workers")
                proxies.append((proxy_name(w_, all_active), cmd, port))
        port = free_port()
        cmd = [MEMSHARD, "proxy", "-c", pool_file(tmp, "memshard-ms", port, [b[1] for b in ms]),
               "-s", str(free_port()), "-a", "127.0.0.1", "--workers", str(workers),
               "-o", os.path.join(tmp, "memshard-ms.log")]
        proxies.append(("memshard proxy → 3 memshard", cmd, port))
        for name, cmd, port in proxies:
            if "-o" in cmd and cmd[0] == MEMSHARD:
                self.logs[name] = cmd[cmd.index("-o") + 1]
            p = spawn(cmd, port)
            self.procs.append(p)
            self.targets[name] = (port, p.pid, "proxy")
            self.cmds[name] = " ".join(cmd).replace(ROOT + "/", "")
        for threads in (1, 2):
            kinds = ["memcached", "memshard"] if have["memcached"] else ["memshard"]
            for kind in kinds:
                p, port, cmd = start(kind, threads, 1024)
                self.procs.append(p)
                name = f"{'memshard server' if kind == 'memshard' else 'memcached'} -t {threads}"
                self.targets[name] = (port, p.pid, f"server-t{threads}")
                self.cmds[name] = " ".join(cmd).replace(ROOT + "/", "")
        for port, _, _ in self.targets.values():
            prefill(port)

    def close(self):
        for p in self.procs:
            stop(p)

    def worker_changes(self):
        """Each memshard proxy's changes of its active workers, from its log."""
        out = {}
        for name, path in self.logs.items():
            try:
                with open(path) as f:
                    out[name] = [line.strip() for line in f if "active workers:" in line]
            except OSError:
                out[name] = None
        return out


def measure(matrix, rounds, duration):
    results = {}
    names = list(matrix.targets)
    load_cmd = None
    for pipeline in (1, 16):
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                port, pid, _ = matrix.targets[name]
                before = cpu_seconds(pid)
                rep, load_cmd = run_bench(port, pipeline, duration)
                rep["cpu_us_per_req"] = (cpu_seconds(pid) - before) * 1e6 / max(rep["ops"], 1)
                results.setdefault((name, pipeline), []).append(rep)
                print(f"  P{pipeline} round {r + 1}/{rounds} {name}: {rep['ops_per_sec']:,.0f} ops/s, "
                      f"p99 {rep['p99_us']:.0f} µs, {rep['cpu_us_per_req']:.2f} CPU-µs/req, errors {rep['errors']}",
                      file=sys.stderr)
    return results, load_cmd


def callgrind_per_request(cmd_for_port, seconds=20):
    """Instructions per request of a proxy under callgrind: its total
    instruction count (start-up included, small next to the requests) over
    the requests `memshard bench` completed through it in `seconds`."""
    tmp = tempfile.mkdtemp(prefix="memshard-cg-")
    port = free_port()
    out = os.path.join(tmp, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd_for_port(port)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listen(port, timeout=60)
        load = [MEMSHARD, "bench", "-s", f"127.0.0.1:{port}", "-c", "4", "-P", "1", "-d", str(seconds),
                "--warmup", "0", "--get-ratio", "0.9", "-v", "100", "-k", "1000", "--json", "-q"]
        rep = json.loads(subprocess.run(load, check=True, capture_output=True, text=True, timeout=600).stdout)
        requests = rep["ops"] + rep.get("prefilled", 0)
    finally:
        p.terminate()
        p.wait(60)
    with open(out) as f:
        total = next((int(line.split()[1]) for line in f if line.startswith("summary:")), None)
    shutil.rmtree(tmp, ignore_errors=True)
    return total / requests if total else None


def guarded(what, measure):
    """Runs one measurement of the report's tail; a failure is reported and
    leaves that figure out instead of losing the whole run."""
    try:
        return measure()
    except Exception as e:  # noqa: BLE001 - any failure of a peer or a tool
        print(f"  {what} failed: {e}", file=sys.stderr)
        return None


def zipf_hit_ratio(kind, seconds):
    """Get hit ratio of a server at -m 16 under Zipfian (s = 0.99) keys over
    1 M keys of 100 bytes (about 190 MB of items: far more than fits), 90 %
    gets / 10 % sets, nothing prefilled."""
    p, port, _ = start(kind, 1, 16)
    try:
        cmd = [MEMSHARD, "bench", "-s", f"127.0.0.1:{port}", "-c", "50", "-P", "4", "-d", str(seconds),
               "--warmup", "2", "--no-prefill", "--get-ratio", "0.9", "-v", "100", "-k", "1000000",
               "--key-dist", "zipf:0.99", "--json", "-q"]
        rep = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        return rep["hits"] / max(rep["hits"] + rep["misses"], 1), cmd
    finally:
        stop(p)


def med(reps, field):
    return statistics.median(r[field] for r in reps)


def charts(results, names, where):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    os.makedirs(where, exist_ok=True)
    made = []
    for group, title, fname in (("proxy", "Proxies in front of 3 shards", "proxy"),
                                ("server", "Shard servers at equal threads", "server")):
        chosen = [n for n in names if names[n][2].startswith(group)]
        fig, axes = plt.subplots(1, 2, figsize=(13, 0.6 * len(chosen) + 1.6), sharey=True)
        for ax, pipeline in zip(axes, (1, 16)):
            ops = [med(results[(n, pipeline)], "ops_per_sec") / 1000 for n in chosen]
            bars = ax.barh(chosen, ops, color=["#888" if "memshard" not in n else "#2a7" for n in chosen])
            ax.bar_label(bars, fmt="%.0f k", padding=3, fontsize=8)
            ax.set_title(f"pipeline {pipeline}: ops/s (thousands)")
            if pipeline == 1:
                ax.invert_yaxis()  # the y axis is shared: once for both
            ax.margins(x=0.2)
        fig.suptitle(title)
        fig.tight_layout()
        path = os.path.join(where, f"{fname}-throughput.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
        fig, axes = plt.subplots(1, 2, figsize=(14, 5))
        for ax, pipeline in zip(axes, (1, 16)):
            for n in chosen:
                reps = results[(n, pipeline)]
                ys = [med(reps, f) for f in ("p50_us", "p90_us", "p99_us", "p999_us", "p9999_us")]
                ax.plot(["p50", "p90", "p99", "p99.9", "p99.99"], ys, marker="o", label=n,
                        linestyle="-" if "memshard" in n else "--")
            ax.set_yscale("log")
            ax.set_title(f"pipeline {pipeline}: latency (µs, log scale)")
            ax.legend(fontsize=7)
        fig.suptitle(title + ": latency percentiles")
        fig.tight_layout()
        path = os.path.join(where, f"{fname}-latency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def render(results, matrix, load_cmd, have, args, instr, bytes_item, zipf, pngs, changes):
    L = []
    w = L.append
    w(f"Generated by `python3 bench/report.py{' --quick' if args.quick else ''}` on "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores, "
      f"{platform.system()} {platform.release()}; {args.rounds} alternating rounds of {args.duration:g} s per cell, "
      f"medians. Peers: " + ", ".join(f"{k} {'(' + v + ')' if v else 'missing'}" for k, v in have.items()) + ".")
    w("")
    for p in pngs:
        w(f"![{os.path.basename(p)}](bench/{os.path.basename(p)})")
    if pngs:
        w("")
    for group, heading in (("proxy", "Proxies (3 shards behind each; direct memcached for reference)"),
                           ("server-t1", "Shard servers, 1 thread each"), ("server-t2", "Shard servers, 2 threads each")):
        names = [n for n, t in matrix.targets.items() if t[2] == group]
        base_name = "nutcracker → 3 memcached" if group == "proxy" else f"memcached -t {group[-1]}"
        w(f"### {heading}")
        w("")
        w(f"| system | pipeline | ops/s | p50 µs | p99 µs | p99.9 µs | CPU-µs per request (= CPU-s per million) | ops/s vs {base_name} |")
        w("|---|---|---|---|---|---|---|---|")
        for pipeline in (1, 16):
            base = results.get((base_name, pipeline))
            for n in names:
                reps = results[(n, pipeline)]
                ratio = f"{med(reps, 'ops_per_sec') / med(base, 'ops_per_sec'):.2f}×" if base else "—"
                w(f"| {n} | {pipeline} | {med(reps, 'ops_per_sec'):,.0f} | {med(reps, 'p50_us'):.0f} | "
                  f"{med(reps, 'p99_us'):.0f} | {med(reps, 'p999_us'):.0f} | {med(reps, 'cpu_us_per_req'):.2f} | {ratio} |")
        w("")
    if instr:
        w("### Instructions per request (callgrind, 4 connections, pipeline 1, 20 s; total instructions / requests)")
        w("")
        w("User-space instructions of every thread of the process, start-up included, over the requests served; "
          "the same within a percent run after run, whatever else the machine does.")
        w("")
        w("| proxy or server | instructions per request |")
        w("|---|---|")
        for n, v in instr.items():
            w(f"| {n} | {v:,.0f} |" if v else f"| {n} | — |")
        w("")
    if zipf:
        w("### Hit ratio under Zipfian keys (-m 16, 1 M keys of 100 bytes, s = 0.99, 90 % gets / 10 % sets)")
        w("")
        w("| server | get hit ratio |")
        w("|---|---|")
        for n, (v, _) in zipf.items():
            w(f"| {n} | {v:.4f} |")
        w("")
        w(f"Load: `{' '.join(next(iter(zipf.values()))[1]).replace(ROOT + '/', '')}`")
        w("")
    if bytes_item:
        w("### Memory per stored item (1 M × 100-byte values, RSS growth / items)")
        w("")
        w("| server | bytes of RSS per item |")
        w("|---|---|")
        for n, v in bytes_item.items():
            w(f"| {n} | {v:.1f} |")
        w("")
    w("### Targets")
    w("")
    w("| target | measured | holds |")
    w("|---|---|---|")
    nc_p = "nutcracker → 3 memcached"
    proxies = [(proxy_name(args.workers), f"default, up to {args.workers} workers")] if args.workers > 1 else []
    proxies.append((proxy_name(1), "1 worker, per core"))
    for ms_p, how in proxies:
        for pipeline in (1, 16):
            if (nc_p, pipeline) in results and (ms_p, pipeline) in results:
                r = med(results[(ms_p, pipeline)], "ops_per_sec") / med(results[(nc_p, pipeline)], "ops_per_sec")
                p99 = (med(results[(ms_p, pipeline)], "p99_us"), med(results[(nc_p, pipeline)], "p99_us"))
                w(f"| proxy ({how}) ≥ 1.3 × nutcracker ops/s at pipeline {pipeline}, p99 no worse | {r:.2f}×, "
                  f"p99 {p99[0]:.0f} vs {p99[1]:.0f} µs | {'yes' if r >= 1.3 and p99[0] <= p99[1] else 'no'} |")
        for pipeline in (1, 16):
            if (nc_p, pipeline) in results and (ms_p, pipeline) in results:
                c = med(results[(ms_p, pipeline)], "cpu_us_per_req") / med(results[(nc_p, pipeline)], "cpu_us_per_req")
                w(f"| proxy ({how}) CPU per request ≤ 0.7 × nutcracker's (pipeline {pipeline}) | {c:.2f}× | "
                  f"{'yes' if c <= 0.7 else 'no'} |")
    ms_p = proxy_name(args.workers)
    if ("memcached (direct)", 16) in results and (ms_p, 16) in results:
        r = med(results[(ms_p, 16)], "ops_per_sec") / med(results[("memcached (direct)", 16)], "ops_per_sec")
        w(f"| proxied ≥ 0.85 × direct memcached at pipeline 16 | {r:.2f}× | {'yes' if r >= 0.85 else 'no'} |")
    for t in (1, 2):
        for pipeline in (1, 16):
            a, b = (f"memshard server -t {t}", pipeline), (f"memcached -t {t}", pipeline)
            if a in results and b in results:
                r = med(results[a], "ops_per_sec") / med(results[b], "ops_per_sec")
                w(f"| server ≥ 1.0 × memcached at -t {t}, pipeline {pipeline} | {r:.2f}× | {'yes' if r >= 1.0 else 'no'} |")
    if len(zipf) == 2:
        m, c = zipf["memshard server"][0], zipf["memcached"][0]
        w(f"| Zipfian hit ratio at a fixed -m ≥ memcached's | {m:.4f} vs {c:.4f} | {'yes' if m >= c else 'no'} |")
    if len(bytes_item) == 2:
        m, c = bytes_item["memshard server"], bytes_item["memcached"]
        w(f"| bytes per 100-byte item ≤ memcached's | {m:.1f} vs {c:.1f} | {'yes' if m <= c else 'no'} |")
    w("")
    one, every = proxy_name(1), proxy_name(args.workers, True)
    if args.workers > 1 and all((n, p) in results for n in (one, every) for p in (1, 16)):
        ratios = [med(results[(every, p)], "ops_per_sec") / med(results[(one, p)], "ops_per_sec") for p in (1, 16)]
        w(f"Scaling on this machine: {args.workers} workers all active do {ratios[0]:.2f}× the ops/s of one worker "
          f"at pipeline 1 and {ratios[1]:.2f}× at pipeline 16 (the load generator and the shards share the same "
          f"cores, so a second worker gains no core here; see \"Active workers\" in docs/architecture.md).")
        w("")
    adaptive = {n: c for n, c in changes.items() if "default" in n or n == "memshard proxy → 3 memshard"}
    if adaptive:
        said = "; ".join(f"{n}: {'log unreadable' if c is None else len(c)}" for n, c in adaptive.items())
        w(f"Changes of the active workers logged by the proxies with the default spread during the run: {said}.")
        for n, c in adaptive.items():
            for line in (c or [])[:5]:
                w(f"- {n}: `{line}`")
        w("")
    direct = ("memcached (direct)", 1)
    if direct in results and (nc_p, 1) in results:
        floor = med(results[direct], "cpu_us_per_req")
        nc = med(results[(nc_p, 1)], "cpu_us_per_req")
        w(f"The floor at pipeline 1: every proxy receives and answers each client request with one recv and one "
          f"send, the same kernel work a memcached does for a request it serves; direct memcached spent "
          f"{floor:.2f} CPU-µs per request here, {floor / nc:.2f}× nutcracker's {nc:.2f}. A proxy's own share "
          f"(routing, the backend side) is what lies above that floor.")
        w("")
    w("Commands (ports differ per run):")
    w("")
    for n, c in matrix.cmds.items():
        w(f"- {n}: `{c}`")
    w(f"- load: `{' '.join(load_cmd).replace(ROOT + '/', '')}`")
    return "\n".join(L) + "\n"


def write_doc(section):
    text = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
    block = f"{BEGIN}\n{section}{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## The report (bench/report.py)\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s, no callgrind, no memory figure")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing the doc (docs/ untouched, no charts kept)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3
    if not os.path.exists(MEMSHARD):
        sys.exit("build first: cargo build --release -p memshard")
    have = {"memcached": shutil.which("memcached"), "nutcracker": shutil.which("nutcracker"),
            "valgrind": shutil.which("valgrind")}
    have = {k: (version_of([v, "-V"] if k != "valgrind" else [v, "--version"]) if v else None)
            for k, v in have.items()}
    try:
        import matplotlib  # noqa: F401
        have["matplotlib"] = matplotlib.__version__
    except ImportError:
        have["matplotlib"] = None
    print("peers: " + ", ".join(f"{k}: {v or 'not found'}" for k, v in have.items()), file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="memshard-report-")
    matrix = Matrix(have, args.workers, tmp)
    try:
        results, load_cmd = measure(matrix, args.rounds, args.duration)
    finally:
        matrix.close()
    changes = matrix.worker_changes()
    instr = {}
    if have["valgrind"] and not args.quick:
        backends = [start("memcached" if have["memcached"] else "memshard", 1, 1024) for _ in range(3)]
        try:
            bports = [b[1] for b in backends]
            if have["nutcracker"] and have["memcached"]:
                instr["nutcracker"] = guarded("callgrind of nutcracker", lambda: callgrind_per_request(
                    lambda port: ["nutcracker", "-c", pool_file(tmp, "cg-nc", port, bports), "-s", str(free_port()),
                                  "-a", "127.0.0.1"]))
            instr["memshard proxy (--workers 1)"] = guarded("callgrind of memshard proxy", lambda: callgrind_per_request(
                lambda port: [MEMSHARD, "proxy", "-c", pool_file(tmp, "cg-ms", port, bports), "-s", str(free_port()),
                              "-a", "127.0.0.1", "--workers", "1"]))
        finally:
            for b in backends:
                stop(b[0])
        # The shard servers alone, the load straight at them.
        instr["memshard server -t 1"] = guarded("callgrind of memshard server", lambda: callgrind_per_request(
            lambda port: [MEMSHARD, "server", "-l", "127.0.0.1", "-p", str(port), "-t", "1", "-m", "1024"]))
        if have["memcached"]:
            # memcached sets its open-file limit to exactly -c, and valgrind
            # accepts only its own limit: the hard limit less the 12
            # descriptors it keeps for itself.
            conns = str(resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 12)
            instr["memcached -t 1"] = guarded("callgrind of memcached", lambda: callgrind_per_request(
                lambda port: ["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1",
                              "-m", "1024", "-c", conns]))
    bytes_item, zipf = {}, {}
    if not args.quick:
        for kind, label in (("memshard", "memshard server"), ("memcached", "memcached")):
            if kind == "memshard" or have["memcached"]:
                per_item = guarded(f"memory per item of {label}", lambda: bytes_per_item(kind, 1)[0])
                if per_item is not None:
                    bytes_item[label] = per_item
                ratio = guarded(f"Zipfian hit ratio of {label}", lambda: zipf_hit_ratio(kind, 15))
                if ratio is not None:
                    zipf[label] = ratio
    # --no-write leaves docs/ alone: the charts then go to the temporary directory.
    pngs = charts(results, matrix.targets, tmp if args.no_write else CHARTS)
    section = render(results, matrix, load_cmd, have, args, instr, bytes_item, zipf, pngs, changes)
    shutil.rmtree(tmp, ignore_errors=True)
    if args.no_write:
        print(section)
    else:
        write_doc(section)
        print(f"wrote {os.path.relpath(DOC, ROOT)}" + (f" and {len(pngs)} charts in docs/bench/" if pngs else
                                                        " (no charts: pip install matplotlib)"), file=sys.stderr)


if __name__ == "__main__":
    main()
