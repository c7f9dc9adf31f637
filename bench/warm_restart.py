#!/usr/bin/env python3
"""What a warm restart with a memory file (`-e PATH`) costs: memshard server
against memcached 1.6.18, both `-m 1024 -t 2`, filled with 1,000,000 items
of 100 bytes (keys `key:0` … `key:999999`).

    cargo build --release -p memshard
    python3 bench/warm_restart.py [--rounds 5] [--items 1000000]

Each round, for each place of the file (the default temporary folder, a
disk; and /dev/shm, tmpfs), memshard then memcached:

1. Start the server with `-e PATH`, fill it with `memshard bench` (its
   prefill sets every key once), check `curr_items` and read back two keys.
2. Save: send the signal (SIGTERM to memshard; SIGUSR1 to memcached, the
   only one on which it keeps its memory) and time until the process has
   exited. While it saves, a thread samples VmRSS and the CPU time in
   /proc/PID every ~5 ms (neither is readable once the process is gone); the
   RSS just before the signal is the store's. For memshard also its logged
   save time and, from its log's time stamp, when the file was in place.
3. The file's size (and what is allocated of it; memcached's `.meta` too).
4. Load: spawn the same command and time until a `get` of a known key
   answers the value read before the stop (both servers answer only once the
   file is loaded; memshard's listener is bound earlier, so the first get
   waits in its backlog), and the CPU time the process has used by then.
   Then `curr_items` and the two values against what was saved. memcached
   keeps its memory only when started in a later wall-clock second than the
   `stop_time` it saved: before this restart the script waits for that
   second (not counted).
5. A second cycle the same way (save, wait, start), then a third started
   as soon as the process has exited: `curr_items` after each. Then the
   server is killed (SIGKILL, so that it does not save again) and the files
   removed.

One more memshard run stops with SIGUSR1 instead of SIGTERM, to show it saves
the same. Medians of the rounds. The memshard binary is copied at the start
(a rebuild during the run changes nothing). Loopback only; every process
started is stopped by its PID; every file written is removed.
"""
import argparse, datetime, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MEMSHARD, ROOT, cpu_seconds, free_port  # noqa: E402

MEM_MB, THREADS = 1024, 2
# A copy of the binary, taken at the start, so that a rebuild during the run
# changes nothing; commands are printed with MEMSHARD's path.
BINARY = MEMSHARD
KEYS = ("key:0", "key:{last}")


def server_cmd(kind, port, path):
    if kind == "memcached":
        return ["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", str(THREADS),
                "-m", str(MEM_MB), "-c", "4096", "-e", path]
    return [BINARY, "server", "-l", "127.0.0.1", "-p", str(port), "-t", str(THREADS), "-m", str(MEM_MB),
            "-c", "4096", "-e", path]


def request(port, line, end, timeout):
    """Sends `line`, reads until the answer ends with one of `end`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(line)
        buf = b""
        while not buf.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {buf[:200]!r}")
            buf += chunk
        return buf


def stats(port):
    buf = request(port, b"stats\r\n", (b"END\r\n",), 10)
    return dict(l.split(" ")[1:3] for l in buf.decode().split("\r\n") if l.startswith("STAT "))


def get(port, key, timeout=10):
    """The value of `key`, or None on a miss."""
    buf = request(port, f"get {key}\r\n".encode(), (b"END\r\n",), timeout)
    if buf == b"END\r\n":
        return None
    header, rest = buf.split(b"\r\n", 1)
    n = int(header.split()[3])
    return rest[:n]


def status(pid):
    """VmRSS and VmHWM (bytes) of a live process; None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    hwm = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    if not rss:  # a zombie has no memory lines
        return None
    return int(rss.group(1)) * 1024, int(hwm.group(1)) * 1024


def rss_parts(pid):
    """RssAnon, RssFile and RssShmem (bytes) of a live process."""
    with open(f"/proc/{pid}/status") as f:
        return {m.group(1): int(m.group(2)) * 1024 for m in re.finditer(r"^(Rss\w+):\s+(\d+) kB", f.read(), re.M)}


class Sampler(threading.Thread):
    """Samples a process's VmRSS every ~5 ms until it exits: the peak, and
    the last VmHWM read."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.hwm, self.samples, self.cpu = pid, 0, 0, 0, None
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            st = status(self.pid)
            if st is None:
                return
            self.peak, self.hwm, self.samples = max(self.peak, st[0]), st[1], self.samples + 1
            try:
                self.cpu = cpu_seconds(self.pid)
            except (OSError, IndexError):
                return
            time.sleep(0.005)


class Server:
    """One server process with its stderr in a log file."""

    def __init__(self, kind, port, path, log):
        self.kind, self.port, self.path, self.log = kind, port, path, log
        self.cmd = server_cmd(kind, port, path)
        self.t0 = time.perf_counter()
        with open(log, "ab") as err:
            self.p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=err)

    def wait_value(self, key, value, timeout=120):
        """Seconds from spawn until `get key` answers `value`; None if the
        server answered a miss (it started without the file's items)."""
        end = time.time() + timeout
        while time.time() < end:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.p.returncode}: {self.tail()}")
            try:
                got = get(self.port, key, timeout=max(0.1, end - time.time()))
            except OSError:
                time.sleep(0.001)
                continue
            took = time.perf_counter() - self.t0
            self.load_cpu = cpu_seconds(self.p.pid)
            return took if got == value else None
        raise RuntimeError(f"{self.kind}: no answer within {timeout} s")

    def stop_saving(self, sig, timeout=120):
        """Sends `sig`, samples RSS until exit: (seconds to exit, RSS before,
        peak RSS while saving, last VmHWM, exit code)."""
        before = status(self.p.pid)[0]
        self.parts = rss_parts(self.p.pid)
        cpu_before = cpu_seconds(self.p.pid)
        sampler = Sampler(self.p.pid)
        t0 = time.perf_counter()
        self.signal_wall = time.time()
        self.p.send_signal(sig)
        sampler.start()
        try:
            code = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.kind} did not exit within {timeout} s of {sig.name}")
        took = time.perf_counter() - t0
        sampler.done.set()
        sampler.join(1)
        # CPU seconds while saving, to the last sample (within ~5 ms of the exit).
        self.save_cpu = None if sampler.cpu is None else sampler.cpu - cpu_before
        return took, before, max(sampler.peak, before), sampler.hwm, code

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)

    def tail(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-2000:]


def logged_ms(log, what):
    """memshard's figures from its log: `saved N items (B bytes) in X ms` or
    `loaded N items in X ms`, the last of each."""
    with open(log, errors="replace") as f:
        text = f.read()
    if what == "saved":
        m = re.findall(r"saved (\d+) items \((\d+) bytes\) in (\d+) ms", text)
        return (int(m[-1][0]), int(m[-1][1]), int(m[-1][2])) if m else None
    m = re.findall(r"loaded (\d+) items in (\d+) ms", text)
    return (int(m[-1][0]), int(m[-1][1])) if m else None


def meta_stop_time(path):
    """memcached's `stop_time` (wall-clock seconds) from PATH.meta; None without one."""
    try:
        with open(path + ".meta") as f:
            m = re.search(r"^Kstop_time (\d+)", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def restart_gap(kind, path):
    """memcached 1.6.18 keeps its memory only if the wall-clock second of the
    start is later than the `stop_time` it wrote at the stop (the time delta
    must be > 0). Waits until then; the seconds waited (0 for memshard)."""
    stopped = meta_stop_time(path) if kind == "memcached" else None
    if stopped is None:
        return 0.0
    wait = max(0.0, stopped + 1.02 - time.time())
    time.sleep(wait)
    return wait


def logged_time(log, what):
    """Wall-clock time (unix s) of the last memshard log line saying `memory file … what`."""
    with open(log, errors="replace") as f:
        stamps = re.findall(rf"^(\S+Z)\s.*memory file .*: {what} ", f.read(), re.M)
    if not stamps:
        return None
    return datetime.datetime.fromisoformat(stamps[-1].replace("Z", "+00:00")).timestamp()


def fill(port, items):
    cmd = [BINARY, "bench", "-s", f"127.0.0.1:{port}", "-k", str(items), "-v", "100", "-n", "1", "--warmup", "0",
           "-q", "-c", "8", "-P", "16", "--get-ratio", "1", "--json"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - t0, cmd


def files_of(path):
    """(apparent bytes, allocated bytes) of the file and of PATH.meta if any."""
    out = {}
    for p in (path, path + ".meta"):
        if os.path.exists(p):
            st = os.stat(p)
            out[p] = (st.st_size, st.st_blocks * 512)
    return out


def one(kind, folder, items, sig, log_dir, label):
    """One fill / save / load / second cycle; a dict of figures."""
    path = os.path.join(folder, f"{kind}.mem")
    log = os.path.join(log_dir, f"{label}.log")
    for p in (path, path + ".meta", path + ".tmp"):
        if os.path.exists(p):
            os.remove(p)
    port = free_port()
    r = {"kind": kind, "place": folder, "signal": sig.name, "notes": []}
    srv = Server(kind, port, path, log)
    try:
        srv.wait_value("key:0", None, timeout=30)  # listening, empty
        r["fill_s"], r["fill_cmd"] = fill(port, items)
        keys = [k.format(last=items - 1) for k in KEYS]
        values = {k: get(port, k) for k in keys}
        r["items_before"] = int(stats(port)["curr_items"])
        if r["items_before"] != items:
            r["notes"].append(f"curr_items after the fill {r['items_before']:,}, not {items:,}")
        r["save_s"], r["rss_before"], r["rss_peak"], r["hwm"], code = srv.stop_saving(sig)
        if code != 0:
            r["notes"].append(f"exit code {code} after {sig.name}")
        r["save_cmd"], r["rss_parts"], r["save_cpu"] = srv.cmd, srv.parts, srv.save_cpu
        if kind == "memshard":
            logged = logged_ms(log, "saved")
            r["saved_items"], r["saved_bytes"], r["save_logged_ms"] = logged if logged else (None, None, None)
            saved_at = logged_time(log, "saved")
            r["file_ready_s"] = None if saved_at is None else saved_at - srv.signal_wall
        r["files"] = files_of(path)
        # Load: the same command again (memcached: once the wall clock is
        # past the second of its stop, see restart_gap).
        r["gap_s"] = restart_gap(kind, path)
        srv = Server(kind, port, path, log)
        took = srv.wait_value(keys[-1], values[keys[-1]])
        r["load_s"], r["load_cpu"] = took, srv.load_cpu
        if took is None:
            r["notes"].append(f"after the restart `get {keys[-1]}` missed: started empty")
        r["items_after"] = int(stats(port)["curr_items"])
        r["values_ok"] = all(get(port, k) == v for k, v in values.items())
        if not r["values_ok"]:
            r["notes"].append("a value read back after the restart differs")
        if kind == "memshard":
            logged = logged_ms(log, "loaded")
            r["load_logged_ms"] = logged[1] if logged else None
        r["file_left"] = os.path.exists(path)
        # A second cycle, the same way (no new writes).
        srv.stop_saving(sig)
        restart_gap(kind, path)
        srv = Server(kind, port, path, log)
        srv.wait_value(keys[-1], values[keys[-1]])
        r["items_second"] = int(stats(port)["curr_items"])
        # A third, started as soon as the process has exited.
        srv.stop_saving(sig)
        stopped = meta_stop_time(path)
        spawned = time.time()
        srv = Server(kind, port, path, log)
        srv.wait_value(keys[-1], values[keys[-1]])
        r["items_third"] = int(stats(port)["curr_items"])
        r["third_same_second"] = None if stopped is None else int(spawned) == stopped
    finally:
        srv.kill()
        for p in (path, path + ".meta", path + ".tmp"):
            if os.path.exists(p):
                os.remove(p)
    with open(log, errors="replace") as f:
        r["log"] = f.read()
    restart_lines = [l for l in r["log"].splitlines() if "restart" in l.lower() or "memory file" in l]
    r["log_lines"] = restart_lines
    return r


def mib(b):
    return b / 2**20


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, f):
    return "—" if v is None else f.format(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--disk", default=tempfile.gettempdir(), help="the disk folder (default: the temporary folder)")
    ap.add_argument("--shm", default="/dev/shm")
    a = ap.parse_args()
    if not os.path.exists(MEMSHARD):
        sys.exit("build first: cargo build --release -p memshard")
    global BINARY
    log_dir = tempfile.mkdtemp(prefix="memshard-warm-logs-")
    BINARY = os.path.join(log_dir, "memshard")
    shutil.copy2(MEMSHARD, BINARY)
    version = subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.strip()
    started = datetime.datetime.now(datetime.timezone.utc)
    folders = {"disk": tempfile.mkdtemp(prefix="memshard-warm-", dir=a.disk),
               "tmpfs": tempfile.mkdtemp(prefix="memshard-warm-", dir=a.shm)}
    results = []
    try:
        for rnd in range(a.rounds):
            for place in ("disk", "tmpfs"):
                for kind in ("memshard", "memcached"):
                    label = f"{kind}-{place}-{rnd}"
                    try:
                        r = one(kind, folders[place], a.items, signal.SIGTERM if kind == "memshard" else signal.SIGUSR1,
                                log_dir, label)
                    except Exception as e:  # noqa: BLE001 — reported, the other cells go on
                        r = {"kind": kind, "place": folders[place], "signal": "", "notes": [f"failed: {e}"],
                             "log_lines": []}
                    r["where"], r["round"] = place, rnd
                    results.append(r)
                    print(f"  round {rnd + 1} {kind} on {place}: save {fmt(r.get('save_s'), '{:.3f}')} s, "
                          f"load {fmt(r.get('load_s'), '{:.3f}')} s, items {r.get('items_before')} → "
                          f"{r.get('items_after')} → {r.get('items_second')} → {r.get('items_third')} "
                          f"(same second: {r.get('third_same_second')}), "
                          f"RSS {fmt(r.get('rss_before') and mib(r['rss_before']), '{:.1f}')} → peak "
                          f"{fmt(r.get('rss_peak') and mib(r['rss_peak']), '{:.1f}')} MiB {r['notes']}",
                          file=sys.stderr)
                    for line in r["log_lines"]:
                        print(f"    log: {line}", file=sys.stderr)
        usr1 = one("memshard", folders["disk"], a.items, signal.SIGUSR1, log_dir, "memshard-usr1")
        usr1["where"] = "disk"
    finally:
        for d in list(folders.values()) + [log_dir]:
            shutil.rmtree(d, ignore_errors=True)
    report(a, results, usr1, version, started, folders)


def items_txt(r):
    third = f"{r['items_third']:,}"
    if r.get("third_same_second"):
        third += " (same second)"
    return f"{r['items_before']:,} → {r['items_after']:,} → {r['items_second']:,} → {third}"


def report(a, results, usr1, version, started, folders):
    print(f"Run of {started:%Y-%m-%d %H:%M} UTC; {version}; {a.items:,} items of 100 bytes, `-m {MEM_MB} -t {THREADS}`, "
          f"{a.rounds} alternating rounds, medians.\n")
    print("| server | file on | signal | save s (signal → exit) | per round | signal → file in place s | logged save ms | "
          "CPU s saving | "
          "load s (spawn → first hit) | per round | logged load ms | CPU s to first hit | "
          "items: filled → 1st restart → 2nd → 3rd at once | "
          "RSS before the signal MiB | peak RSS while saving MiB | peak − before MiB | file MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [(kind, place, [r for r in results if r["kind"] == kind and r["where"] == place])
            for place in ("disk", "tmpfs") for kind in ("memshard", "memcached")]
    rows.append(("memshard", "disk", [usr1]))
    for kind, place, rs in rows:
        ok = [r for r in rs if "items_third" in r]
        if not ok:
            print(f"| {kind} | {place} | failed: {'; '.join(n for r in rs for n in r['notes'])} |" + " |" * 14)
            continue
        items = sorted({items_txt(r) for r in ok})
        size = lambda r, i: mib(sum(v[i] for p, v in r["files"].items() if not p.endswith(".meta")))
        file_mib = statistics.median(size(r, 0) for r in ok)
        alloc = statistics.median(size(r, 1) for r in ok)
        file_txt = f"{file_mib:,.1f}" if abs(file_mib - alloc) < 1 else f"{file_mib:,.1f} ({alloc:,.1f} allocated)"
        peak_over = statistics.median(mib(r["rss_peak"] - r["rss_before"]) for r in ok)
        print(f"| {kind} | {place} | {ok[0]['signal']} | {med(ok, 'save_s'):.3f} | "
              f"{' / '.join(fmt(r['save_s'], '{:.2f}') for r in ok)} | {fmt(med(ok, 'file_ready_s'), '{:.3f}')} | "
              f"{fmt(med(ok, 'save_logged_ms'), '{:.0f}')} | "
              f"{fmt(med(ok, 'save_cpu'), '{:.2f}')} | "
              f"{fmt(med(ok, 'load_s'), '{:.3f}')} | {' / '.join(fmt(r.get('load_s'), '{:.2f}') for r in ok)} | "
              f"{fmt(med(ok, 'load_logged_ms'), '{:.0f}')} | {fmt(med(ok, 'load_cpu'), '{:.2f}')} | "
              f"{'; '.join(items)} | "
              f"{mib(med(ok, 'rss_before')):.1f} | {mib(med(ok, 'rss_peak')):.1f} | {peak_over:+.1f} | {file_txt} |")
    print()
    for r in results + [usr1]:
        for n in r["notes"]:
            where = r["where"] if r.get("round") is None else f"{r['where']}, round {r['round'] + 1}"
            print(f"- {r['kind']} on {where}: {n}")
    waits = [r["gap_s"] for r in results if r["kind"] == "memcached" and "gap_s" in r]
    if waits:
        print(f"- memcached: waited {min(waits):.2f}–{max(waits):.2f} s after its exit before each measured restart "
              "(until the wall-clock second after its `stop_time`); not counted in the load time")
    for place in ("disk", "tmpfs"):
        for kind in ("memshard", "memcached"):
            r = next((r for r in results if r["kind"] == kind and r["where"] == place and r.get("files")), None)
            if r:
                files = ", ".join(f"`{os.path.basename(p)}` {s:,} bytes ({al:,} allocated)"
                                  for p, (s, al) in r["files"].items())
                parts = ", ".join(f"{k} {mib(v):.1f}" for k, v in r.get("rss_parts", {}).items())
                print(f"- {kind} on {place}, round 1: after the save {files}; RSS before the signal (MiB): {parts}")
    seen = set()
    for r in results + [usr1]:
        for line in r.get("log_lines", []):
            text = re.sub(r"^\S+Z\s+", "", line.strip())
            for folder in folders.values():
                text = text.replace(folder, "$DIR")
            key = (r["kind"], re.sub(r"\d+", "N", text))
            if key not in seen:
                seen.add(key)
                print(f"- {r['kind']} log: `{text}`")
    tidy = lambda cmd: " ".join(cmd).replace(BINARY, MEMSHARD).replace(ROOT + "/", "")
    for kind in ("memshard", "memcached"):
        r = next((r for r in results if r["kind"] == kind and "save_cmd" in r), None)
        if r:
            cmd = tidy(r["save_cmd"])
            for folder in folders.values():
                cmd = cmd.replace(folder, "$DIR")
            print(f"- {kind}: `{cmd}` (the same command starts it again)")
    first = next((r for r in results if "fill_cmd" in r), None)
    if first:
        print(f"- fill: `{tidy(first['fill_cmd'])}` (port per run)")
    print(f"- $DIR: a new folder in `{os.path.dirname(folders['disk'])}` ({fs_type(folders['disk'])}) or in "
          f"`{os.path.dirname(folders['tmpfs'])}` ({fs_type(folders['tmpfs'])})")


def fs_type(path):
    out = subprocess.run(["df", "-T", os.path.dirname(path)], capture_output=True, text=True).stdout.splitlines()
    return out[-1].split()[1] if len(out) > 1 else "?"


if __name__ == "__main__":
    main()
