#!/usr/bin/env python3
"""What a hot reload of the proxy's pool file costs: latency during the
second of a reload against steady state, the time from SIGHUP to the new
server set serving (3 servers, and 300), and memory after 1,000 reloads.

    cargo build --release -p memshard
    python3 bench/reload.py [--pairs 10] [--reloads 1000]

1. Latency: `memshard bench` (50 connections, pipeline 1, 90 % gets,
   100-byte values) runs 1 s at a time against a proxy in front of 3
   memcached, in alternating pairs: a steady second, then a second during
   which the pool file is rewritten and the proxy sent SIGHUP (0.3 s in; the
   file alternates between two server sets of the same 3 memcached, weights
   1/1/1 and 1/2/1, so keys move as ketama moves them). Medians of the
   pairs' p50 and p99.
2. Time to serve: from the proxy's log, the time between its `SIGHUP` line
   and its `reload applied` line (the new set published), over 20 reloads,
   for a pool of 3 servers and one of 300 (addresses nothing listens on:
   the ring is built and published the same; no request is sent).
3. Memory: RSS after the first reload and after `--reloads` more, the file
   alternating between two server sets, each reload confirmed on the stats
   port (`config_generation`) before the next.

Loopback only; every process started is stopped.
"""
import argparse, datetime, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, bench, free_port, rss, start, stop, wait_listen  # noqa: E402


def pool_yaml(port, servers):
    """One ketama/fnv1a_64 pool on `port`; `servers` are `host:port:weight` entries."""
    lines = [f"mc:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n"
             "  auto_eject_hosts: false\n  servers:\n"]
    lines += [f"   - {s}\n" for s in servers]
    return "".join(lines)


def write(path, text):
    """Replaces the file as an editor or `kubectl cp` would: a new file renamed over the old."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return json.loads(buf)
            buf += chunk


def generation(stats_port):
    return stats(stats_port)["config_generation"]


class Proxy:
    """`memshard proxy` on a pool file (no file watch: reloads by SIGHUP only)."""

    def __init__(self, tmp, name, text, port):
        self.file = os.path.join(tmp, f"{name}.yml")
        self.log = os.path.join(tmp, f"{name}.log")
        write(self.file, text)
        self.stats_port = free_port()
        self.cmd = [MEMSHARD, "proxy", "-c", self.file, "-s", str(self.stats_port), "-a", "127.0.0.1",
                    "-o", self.log, "--watch-interval", "0"]
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listen(port)
        wait_listen(self.stats_port)

    def reload(self, text, wait=True):
        """Writes `text`, sends SIGHUP; with `wait`, returns once it is in force."""
        before = generation(self.stats_port)
        write(self.file, text)
        self.p.send_signal(signal.SIGHUP)
        if not wait:
            return
        end = time.time() + 10
        while generation(self.stats_port) <= before:
            if time.time() > end:
                raise RuntimeError(f"reload not applied: {stats(self.stats_port)}")
            time.sleep(0.002)

    def stop(self):
        stop(self.p)


def stamps(log, what):
    """Times (datetime) of the log lines containing `what`."""
    out = []
    with open(log) as f:
        for line in f:
            if what in line:
                ts = re.match(r"(\S+Z)", line)
                if ts:
                    out.append(datetime.datetime.fromisoformat(ts.group(1).replace("Z", "+00:00")))
    return out


def latency(a, tmp, backends):
    port = free_port()
    sets = [[f"127.0.0.1:{b}:1" for b in backends], [f"127.0.0.1:{b}:{w}" for b, w in zip(backends, (1, 2, 1))]]
    proxy = Proxy(tmp, "latency", pool_yaml(port, sets[0]), port)
    steady, during, cmd = [], [], None
    try:
        bench(port, 16, 0.5, prefill=True)
        for i in range(a.pairs):
            rep, cmd = bench(port, 1, 1, warmup=0, prefill=False)
            steady.append(rep)
            runner = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            time.sleep(0.3)
            proxy.reload(pool_yaml(port, sets[(i + 1) % 2]), wait=False)
            out, _ = runner.communicate(timeout=30)
            during.append(json.loads(out))
            print(f"  pair {i + 1}: steady p99 {steady[-1]['p99_us']:.0f} us, reload p99 {during[-1]['p99_us']:.0f} us",
                  file=sys.stderr)
        applied = generation(proxy.stats_port) - 1
    finally:
        proxy.stop()
    med = lambda reps, f: statistics.median(r[f] for r in reps)
    print(f"### Latency during a reload ({a.pairs} alternating pairs of 1 s runs, median)\n")
    print("| second | ops/s | p50 µs | p99 µs | p99.9 µs | errors |")
    print("|---|---|---|---|---|---|")
    for name, reps in (("steady", steady), ("with a SIGHUP reload 0.3 s in", during)):
        print(f"| {name} | {med(reps, 'ops_per_sec'):,.0f} | {med(reps, 'p50_us'):.0f} | {med(reps, 'p99_us'):.0f} | "
              f"{med(reps, 'p999_us'):.0f} | {sum(r['errors'] for r in reps)} |")
    print(f"\nReloads applied: {applied} of {a.pairs}; p99 during / steady: "
          f"{med(during, 'p99_us') / med(steady, 'p99_us'):.2f}×\n")
    print(f"- proxy: `{' '.join(proxy.cmd).replace(ROOT + '/', '').replace(tmp, '$TMP')}`")
    print(f"- load: `{' '.join(cmd).replace(ROOT + '/', '')}`\n")


def time_to_serve(tmp, backends):
    print("### From SIGHUP to the new server set serving (20 reloads each, from the proxy's log)\n")
    print("| servers in the pool | median ms | max ms |")
    print("|---|---|---|")
    for n in (3, 300):
        port = free_port()
        if n == 3:
            sets = [[f"127.0.0.1:{b}:1" for b in backends], [f"127.0.0.1:{b}:{w}" for b, w in zip(backends, (1, 2, 1))]]
        else:
            # 127.0.1.x: loopback addresses nothing listens on.
            sets = [[f"127.0.1.{i % 250 + 1}:{11211 + i // 250}:1" for i in range(n)],
                    [f"127.0.1.{i % 250 + 1}:{11211 + i // 250}:{1 + i % 2}" for i in range(n)]]
        proxy = Proxy(tmp, f"serve{n}", pool_yaml(port, sets[0]), port)
        try:
            for i in range(20):
                proxy.reload(pool_yaml(port, sets[(i + 1) % 2]))
                time.sleep(0.05)
        finally:
            proxy.stop()
        asked, applied = stamps(proxy.log, "SIGHUP: reloading"), stamps(proxy.log, "reload applied")
        ms = [(b - a).total_seconds() * 1000 for a, b in zip(asked, applied)]
        print(f"| {n} | {statistics.median(ms):.2f} | {max(ms):.2f} |")
    print()


def memory(a, tmp, backends):
    port = free_port()
    sets = [[f"127.0.0.1:{b}:1" for b in backends], [f"127.0.0.1:{b}:1" for b in backends[:2]]]
    proxy = Proxy(tmp, "memory", pool_yaml(port, sets[0]), port)
    try:
        bench(port, 16, 1, prefill=True)
        proxy.reload(pool_yaml(port, sets[1]))
        first = rss(proxy.p.pid)
        start_t = time.time()
        for i in range(a.reloads):
            proxy.reload(pool_yaml(port, sets[i % 2]))
        took = time.time() - start_t
        bench(port, 16, 1, prefill=False)
        after = rss(proxy.p.pid)
        gen = generation(proxy.stats_port)
    finally:
        proxy.stop()
    print(f"### Memory across reloads\n")
    print("| RSS after the first reload | after {0:,} more | growth |".format(a.reloads))
    print("|---|---|---|")
    print(f"| {first / 2**20:.1f} MiB | {after / 2**20:.1f} MiB | {(after - first) / 2**20:+.2f} MiB |")
    print(f"\n{a.reloads:,} reloads in {took:.1f} s (each confirmed before the next); config generation {gen}; "
          f"a 1 s load before the first and after the last.\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--reloads", type=int, default=1000)
    a = ap.parse_args()
    if not os.path.exists(MEMSHARD):
        sys.exit("build first: cargo build --release -p memshard")
    tmp = tempfile.mkdtemp(prefix="memshard-reload-")
    backends = [start("memcached", 1, 256) for _ in range(3)]
    try:
        ports = [b[1] for b in backends]
        latency(a, tmp, ports)
        time_to_serve(tmp, ports)
        memory(a, tmp, ports)
        print(f"- backends: `{' '.join(backends[0][2])}` (one port each)")
    finally:
        for b in backends:
            stop(b[0])


if __name__ == "__main__":
    main()
