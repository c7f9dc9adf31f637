"""What the benchmark scripts share: where the binary is, free loopback
ports, starting and stopping servers, pool files, `memshard bench` runs, and
reading a process's CPU time and memory from /proc, and what a report quotes
(command lines, the commit, the load average, a range).

Used by every script in this folder. Loopback only.
"""
import json, os, socket, subprocess, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMSHARD = os.path.join(ROOT, "target", "release", "memshard")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listen(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start(kind, threads, mem_mb):
    """A memcached or memshard server on a free port: (process, port, command)."""
    port = free_port()
    if kind == "memcached":
        cmd = ["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
               "-t", str(threads), "-m", str(mem_mb), "-c", "4096"]
    else:
        cmd = [MEMSHARD, "server", "-l", "127.0.0.1", "-p", str(port),
               "-t", str(threads), "-m", str(mem_mb), "-c", "4096"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listen(port)
    return p, port, cmd


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def pool_file(tmp, name, port, backend_ports, extra=""):
    """A twemproxy pool file: `listen` on `port`, the seed's settings (fnv1a_64,
    ketama, 400 ms) without ejection, then the keys in `extra`, one named
    server per backend port."""
    path = os.path.join(tmp, f"{name}.yml")
    with open(path, "w") as f:
        f.write(f"mc:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n"
                "  auto_eject_hosts: false\n  server_retry_timeout: 2000\n  server_failure_limit: 1\n" + extra + "  servers:\n")
        for i, bport in enumerate(backend_ports):
            f.write(f"   - 127.0.0.1:{bport}:1 mc{i + 1}\n")
    return path


def bench(port, pipeline, duration, *, keys=100000, warmup=None, prefill=True, extra=(), binary=MEMSHARD,
          connections=50, get_ratio=0.9):
    """One `memshard bench` run against 127.0.0.1:`port` (50 connections, 90 %
    gets unless told, 100-byte values); its JSON report and the command."""
    cmd = [binary, "bench", "-s", f"127.0.0.1:{port}", "-c", str(connections), "-P", str(pipeline), "-d", str(duration),
           "--get-ratio", str(get_ratio), "-v", "100", "-k", str(keys), "--json", "-q"]
    if warmup is not None:
        cmd += ["--warmup", str(warmup)]
    if not prefill:
        cmd.append("--no-prefill")
    cmd += list(extra)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out), cmd


def served(backends):
    """Requests the backends (memcached-speaking, as `start` returns them) have
    executed so far: gets, sets and touches."""
    total = 0
    for _, port, _ in backends:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += s.recv(65536)
        st = dict(l.split(" ")[1:3] for l in buf.decode().split("\r\n") if l.startswith("STAT "))
        total += int(st["cmd_get"]) + int(st["cmd_set"]) + int(st.get("cmd_touch", 0))
    return total


def callgrind_instructions(cmd, port, out, prefill, load):
    """Instructions a server executes under callgrind while `load()` runs:
    starts `cmd` (listening on `port`) under `valgrind --tool=callgrind`,
    runs `prefill()`, zeroes the counters, runs `load()`, dumps them and
    stops it. Returns (instructions, what `load` returned); `out` is the
    dump files' prefix."""
    import glob, re
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listen(port, timeout=120)
        prefill()
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        result = load()
        for f in glob.glob(f"{out}.*"):
            os.remove(f)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        time.sleep(1)
    finally:
        stop(p)
    # The dump taken after the load (".1"); the file written at exit holds only the shutdown.
    dumps = sorted(glob.glob(f"{out}.*.1")) or sorted(glob.glob(f"{out}.*"))
    with open(dumps[0]) as f:
        return int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1)), result


def user_system(pid):
    """(user, system) CPU seconds, every thread, a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid):
    """CPU seconds (user + system, every thread) a process has used so far."""
    return sum(user_system(pid))


def rss(pid):
    """A process's resident set size, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memtier_bin():
    """memtier_benchmark: $MEMTIER, or the one in PATH; None when there is none."""
    import shutil
    path = os.environ.get("MEMTIER") or shutil.which("memtier_benchmark")
    return path if path and os.path.exists(path) else None


def memtier(port, pipeline, duration, *, keys=100000, binary=None, prefill=False, threads=1, clients=50):
    """One memtier_benchmark run against 127.0.0.1:`port` with the load of
    `bench` (`clients` connections over `threads` threads, 90 % gets / 10 %
    sets, 100-byte values, `keys` random keys, memcached text protocol), as a
    report shaped like `memshard bench --json`'s (ops/s, p50/p99/p99.9 in µs),
    and the command. With `prefill`, first sets every key once."""
    import tempfile
    binary = binary or memtier_bin()
    common = [binary, "-s", "127.0.0.1", "-p", str(port), "-P", "memcache_text", "-d", "100",
              "--key-minimum=1", f"--key-maximum={keys}", "--hide-histogram"]
    if prefill:
        fill = common + ["-t", "1", "-c", "10", "--ratio=1:0", "--key-pattern=P:P", "-n", "allkeys"]
        subprocess.run(fill, check=True, capture_output=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = common + ["-t", str(threads), "-c", str(clients // threads), f"--pipeline={pipeline}", "--ratio=1:9",
                        "--key-pattern=R:R", f"--test-time={max(1, round(duration))}", "--distinct-client-seed",
                        "--print-percentiles=50,99,99.9", f"--json-out-file={out.name}"]
        subprocess.run(cmd, check=True, capture_output=True)
        doc = json.load(open(out.name))
    totals = doc["ALL STATS"]["Totals"]
    pct = totals.get("Percentile Latencies", {})
    ms = lambda name: float(pct.get(name, "nan")) * 1000.0
    ops_sec = float(totals["Ops/sec"])
    count = totals.get("Count") or ops_sec * max(1, round(duration))
    return {"ops_per_sec": ops_sec, "p50_us": ms("p50.00"), "p99_us": ms("p99.00"), "p999_us": ms("p99.90"),
            "ops": int(count), "errors": 0}, cmd


def rel(cmd, tmp):
    """A command line as the report quotes it: paths relative to the
    repository and to the run's temporary folder."""
    return " ".join(cmd).replace(ROOT + "/", "").replace(tmp + "/", "")


def load_avg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def tree_commit():
    """The checkout's commit, and whether tracked files differ from it."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def spread(xs, fmt):
    return f"{fmt(min(xs))}–{fmt(max(xs))}"
