#!/usr/bin/env python3
"""What TLS costs, in the same run: the proxy with TLS at both ends against
the proxy in plaintext, and `memshard server -Z` against `memcached -Z`.

    cargo build --release -p memshard
    python3 bench/tls_cost.py [--rounds 5] [--duration 6] [--threads 1] [--workers 1] [--out FILE]
    python3 bench/tls_cost.py --no-plain-servers ...     # servers: the two TLS ones only
    python3 bench/tls_cost.py --callgrind [--duration 6] [--out FILE]

Certificates are made for the run with the `openssl` CLI in a temporary
directory: a CA (EC P-256, v3, basicConstraints CA:TRUE) and one server
certificate it signs (EC P-256, subjectAltName DNS:localhost, IP:127.0.0.1,
keyUsage digitalSignature, extendedKeyUsage serverAuth, clientAuth), used by
every TLS listener. No client certificates (no mutual TLS).

Proxy: two shard sets of 3 × `memshard server -t 1`, one plaintext, one with
`-Z`; proxy P (`--workers 1`) in plaintext in front of the plaintext set, proxy
T (`--workers 1`) with `tls_cert_file`/`tls_key_file` (clients speak TLS to
it) and `server_tls: true` (it speaks TLS to its shards, which it verifies
against the CA). Same pool settings otherwise (the seed's: fnv1a_64, ketama,
timeout 400). Two shard sets so that each proxy's requests are counted by its
own shards and neither set switches mode during the run; a shard set that is
not loaded is idle.

Servers: `memshard server -Z` and `memcached -Z` (Debian's, OpenSSL), both
`-t --threads` (default 1: the generator takes one of the two cores, the
server the other, as in "memshard server vs memcached"), and unless
`--no-plain-servers` both again in plaintext, all side by side.

Every key set once through each target, then `memshard bench -t 1` (closed
loop, one generator thread, 50 connections, 90 % get / 10 % set, 100-byte
values, 100k keys so every get hits; `--tls-ca CA` for every TLS target, the
same flags otherwise) runs against the targets in alternating rounds (order
reversed every other round) at pipeline 1 and 16. Around each run the script
reads the CPU time (user + system, every thread, /proc/PID/stat) of the
proxy and of its shards, or of the server, and of the generator
(RUSAGE_CHILDREN), and the requests the shards or the server executed
(`stats`: cmd_get + cmd_set + cmd_touch, read over TLS from TLS ones), for
CPU µs per request. Connections are opened once per run and kept: no
handshake is inside a measured second (the warm-up second holds them), but
the CPU time and the requests are read around the whole run, so its 50
handshakes are in the CPU per request (on this machine ~0.2 µs per
request at pipeline 1, ~0.04 at 16).
Prints Markdown tables (medians of the rounds, ratio of the medians, median
of each round's ratio) and writes every run to `--out` as JSON.

`--callgrind` counts instructions instead (machine noise does not move
them): each proxy (and each server) runs alone under `valgrind
--tool=callgrind`, the keys are set through it, then two loads run, 1 s and
1 s + `--duration`, each opening its 50 connections; the counters are zeroed
before and dumped after each. Instructions per request (every thread) are
the difference of the two counts over the difference of the requests the
shards (the server) executed, so the connections' opening (handshakes
included) cancels out; what it costs is reported apart, per connection.
memcached runs there with `-c` at the open-file hard limit less 12 (valgrind
accepts no more, as in bench/report.py). The dumps stay in the temporary
directory for `callgrind_annotate`.
valgrind reports no VAES/VPCLMULQDQ, so there ring (rustls' crypto) runs its
AES-NI + AVX AES-GCM, not the VAES-AVX2 routine it picks on this CPU at full
speed: the TLS share of those counts is an upper bound.

Builds and installs nothing: needs target/release/memshard, memcached and
openssl in PATH, and valgrind for `--callgrind`. Loopback only, free ports;
every process started is stopped by its PID.
"""
import argparse, datetime, json, os, resource, shutil, socket, ssl, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (MEMSHARD, free_port, load_avg, pool_file, rel, spread, stop,  # noqa: E402
                    tree_commit, wait_listen)
import common  # noqa: E402

KEYS = 100000


# --- certificates ---------------------------------------------------------

def make_pki(tmp):
    """A CA and a server certificate it signs (both EC P-256, X.509 v3) in
    `tmp`: {"ca", "cert", "key"} paths."""
    d = os.path.join(tmp, "pki")
    os.makedirs(d)
    p = lambda name: os.path.join(d, name)
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p("ca.key"))
    run("req", "-x509", "-new", "-key", p("ca.key"), "-sha256", "-days", "2", "-subj", "/CN=memshard bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", p("ca.pem"))
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p("server.key"))
    run("req", "-new", "-key", p("server.key"), "-subj", "/CN=localhost", "-out", p("server.csr"))
    with open(p("server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
        "-days", "2", "-sha256", "-extfile", p("server.ext"), "-out", p("server.pem"))
    return {"ca": p("ca.pem"), "cert": p("server.pem"), "key": p("server.key")}


# --- processes ------------------------------------------------------------

def server_cmd(kind, port, threads, pki, conns=4096):
    """A memcached or memshard server's command on `port`; TLS (-Z) when `pki`."""
    if kind == "memcached":
        cmd = ["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
               "-t", str(threads), "-m", "1024", "-c", str(conns)]
    else:
        cmd = [MEMSHARD, "server", "-l", "127.0.0.1", "-p", str(port), "-t", str(threads), "-m", "1024", "-c", "4096"]
    if pki:
        cmd += ["-Z", "-o", f"ssl_chain_cert={pki['cert']},ssl_key={pki['key']}"]
    return cmd


def start_server(kind, threads, pki):
    """(process, port, command, tls)."""
    port = free_port()
    cmd = server_cmd(kind, port, threads, pki)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listen(port)
    return p, port, cmd, bool(pki)


def proxy_cmd(tmp, name, shards, workers, pki):
    """A memshard proxy's command in front of `shards` and its listen port;
    TLS at both ends when `pki`."""
    port = free_port()
    extra = ""
    if pki:
        extra = (f"  tls_cert_file: {pki['cert']}\n  tls_key_file: {pki['key']}\n"
                 f"  server_tls: true\n  server_tls_ca_file: {pki['ca']}\n")
    cmd = [MEMSHARD, "proxy", "-c", pool_file(tmp, name, port, [s[1] for s in shards], extra), "-s", str(free_port()),
           "-a", "127.0.0.1", "-o", os.path.join(tmp, f"{name}.log")]
    if workers:
        cmd += ["--workers", str(workers)]
    return cmd, port


def served(counters, ca):
    """Requests executed so far by the memcached-speaking servers in
    `counters` ([(port, tls)]): cmd_get + cmd_set + cmd_touch. TLS ones are
    read over TLS (the certificate checked against `ca`)."""
    ctx = ssl.create_default_context(cafile=ca)
    total = 0
    for port, tls in counters:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError(f"stats on {port}: connection closed")
                buf += chunk
            if tls:
                s.close()
        st = dict(l.split(" ")[1:3] for l in buf.decode().split("\r\n") if l.startswith("STAT "))
        total += int(st["cmd_get"]) + int(st["cmd_set"]) + int(st.get("cmd_touch", 0))
    return total


def bench(port, pipeline, duration, *, warmup, prefill, tls_ca=None, timeout=None):
    """One `memshard bench` run as common.bench runs it (50 connections, 90 %
    gets, 100-byte values, 100k keys), with `-t 1`, `--tls-ca` for a TLS
    target and `--timeout` if given (connects under valgrind), and a
    deadline: a run that does not end is a hang to report, not to wait out.
    Its JSON report and the command."""
    cmd = [MEMSHARD, "bench", "-s", f"127.0.0.1:{port}", "-c", "50", "-P", str(pipeline), "-d", str(duration),
           "--get-ratio", "0.9", "-v", "100", "-k", str(KEYS), "--json", "-q", "--warmup", str(warmup), "-t", "1"]
    if not prefill:
        cmd.append("--no-prefill")
    if tls_ca:
        cmd += ["--tls-ca", tls_ca]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                             timeout=duration + warmup + 120 + 2 * (timeout or 0)).stdout
    except subprocess.TimeoutExpired as e:
        sys.exit(f"HANG: `{' '.join(cmd)}` did not end within {e.timeout:g} s")
    except subprocess.CalledProcessError as e:
        sys.exit(f"`{' '.join(cmd)}` failed ({e.returncode}): {e.stderr.strip()[-2000:]}")
    return json.loads(out), cmd


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# --- reporting helpers ----------------------------------------------------

def commit():
    """The tree's commit (read when a run starts: the binary is what was
    built before it) and the binary's build time."""
    built = datetime.datetime.fromtimestamp(os.path.getmtime(MEMSHARD), datetime.timezone.utc).strftime("%H:%M UTC")
    return f"{tree_commit()}, binary built {built}"


kops = lambda v: f"{v / 1000:.0f}k"
two = lambda v: f"{v:.2f}"


# --- wall clock: alternating rounds ---------------------------------------

def rounds(a, targets, label, ca):
    """Alternating rounds over `targets` (name → {port, tls, pid, counters,
    others: {role: [pids]}}) at each pipeline depth; every run as a dict."""
    runs = []
    names = list(targets)
    for pipeline in a.pipelines:
        for r in range(a.rounds):
            for k in (names if r % 2 == 0 else list(reversed(names))):
                t = targets[k]
                pids = {"main": [t["pid"]], **t.get("others", {})}
                n0 = served(t["counters"], ca)
                c0 = {role: sum(common.cpu_seconds(p) for p in ps) for role, ps in pids.items()}
                g0 = children_cpu()
                rep, cmd = bench(t["port"], pipeline, a.duration, warmup=a.warmup, prefill=False,
                                 tls_ca=ca if t["tls"] else None)
                g1 = children_cpu()
                c1 = {role: sum(common.cpu_seconds(p) for p in ps) for role, ps in pids.items()}
                n = max(served(t["counters"], ca) - n0, 1)
                t["load"] = cmd
                run = {"target": k, "pipeline": pipeline, "round": r + 1, "ops_per_sec": rep["ops_per_sec"],
                       "p50_us": rep["p50_us"], "p99_us": rep["p99_us"], "errors": rep["errors"], "requests": n,
                       "cpu_us_per_request": (c1["main"] - c0["main"]) * 1e6 / n,
                       "generator_cpu_us_per_request": (g1 - g0) * 1e6 / n}
                for role in pids:
                    if role != "main":
                        run[f"{role}_cpu_us_per_request"] = (c1[role] - c0[role]) * 1e6 / n
                runs.append(run)
                print(f"  {label} {k} P{pipeline} round {r + 1}: {rep['ops_per_sec']:.0f} ops/s, "
                      f"{run['cpu_us_per_request']:.2f} CPU-µs/req, p99 {rep['p99_us']:.0f}us, errors {rep['errors']}",
                      file=sys.stderr)
    return runs


def cell(runs, k, pipeline):
    rs = [x for x in runs if x["target"] == k and x["pipeline"] == pipeline]
    med = lambda f: statistics.median(x[f] for x in rs)
    out = {"ops_per_sec": med("ops_per_sec"), "ops": [x["ops_per_sec"] for x in rs],
           "cpu_us": med("cpu_us_per_request"), "cpu": [x["cpu_us_per_request"] for x in rs],
           "p99_us": med("p99_us"), "generator_cpu_us": med("generator_cpu_us_per_request"),
           "errors": sum(x["errors"] for x in rs)}
    for f in rs[0]:
        if f.endswith("_cpu_us_per_request") and f != "generator_cpu_us_per_request":
            out[f.replace("_per_request", "")] = med(f)
    return out


def ratio(runs, num, den, pipeline, a):
    """(ratio of the medians, median of each round's ratio) for ops/s and CPU per request."""
    A, B = cell(runs, num, pipeline), cell(runs, den, pipeline)
    pick = lambda k, r: [x for x in runs if x["target"] == k and x["pipeline"] == pipeline and x["round"] == r][0]
    pairs = [(pick(num, r), pick(den, r)) for r in range(1, a.rounds + 1)]
    return {"ops": A["ops_per_sec"] / B["ops_per_sec"],
            "ops_paired": statistics.median(x["ops_per_sec"] / y["ops_per_sec"] for x, y in pairs),
            "cpu": A["cpu_us"] / B["cpu_us"],
            "cpu_paired": statistics.median(x["cpu_us_per_request"] / y["cpu_us_per_request"] for x, y in pairs)}


def throughput(a, pki, tmp):
    ca = pki["ca"]
    procs, doc = [], {"commands": {}, "commit": commit()}
    try:
        # --- proxy: plaintext (P) vs TLS at both ends (T) ---
        shards = {"P": [start_server("memshard", 1, None) for _ in range(3)],
                  "T": [start_server("memshard", 1, pki) for _ in range(3)]}
        procs += [s[0] for ss in shards.values() for s in ss]
        ptargets = {}
        for k in ("P", "T"):
            cmd, port = proxy_cmd(tmp, f"proxy-{k}", shards[k], a.workers, pki if k == "T" else None)
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_listen(port)
            ptargets[k] = {"port": port, "tls": k == "T", "pid": p.pid, "cmd": cmd,
                           "counters": [(s[1], s[3]) for s in shards[k]], "others": {"shards": [s[0].pid for s in shards[k]]}}
            doc["commands"][f"shards {k}"] = rel(shards[k][0][2], tmp)
            doc["commands"][f"proxy {k}"] = rel(cmd, tmp)
        for k, t in ptargets.items():
            bench(t["port"], 16, 0.1, warmup=0, prefill=True, tls_ca=ca if t["tls"] else None)
        load0 = load_avg()
        t0 = datetime.datetime.now(datetime.timezone.utc)
        proxy_runs = rounds(a, ptargets, "proxy", ca)
        for k, t in ptargets.items():
            doc["commands"][f"load proxy {k}"] = rel(t["load"], tmp)
        for p in procs:
            stop(p)
        procs = []

        # --- servers: memshard -Z vs memcached -Z (and both in plaintext) ---
        kinds = [("memshard TLS", "memshard", True), ("memcached TLS", "memcached", True)]
        if not a.no_plain_servers:
            kinds += [("memshard", "memshard", False), ("memcached", "memcached", False)]
        stargets = {}
        for name, kind, tls in kinds:
            s = start_server(kind, a.threads, pki if tls else None)
            procs.append(s[0])
            stargets[name] = {"port": s[1], "tls": tls, "pid": s[0].pid, "cmd": s[2], "counters": [(s[1], tls)]}
            doc["commands"][name] = rel(s[2], tmp)
        for t in stargets.values():
            bench(t["port"], 16, 0.1, warmup=0, prefill=True, tls_ca=ca if t["tls"] else None)
        server_runs = rounds(a, stargets, "server", ca)
        for k, t in stargets.items():
            doc["commands"][f"load {k}"] = rel(t["load"], tmp)
        load1 = load_avg()
        t1 = datetime.datetime.now(datetime.timezone.utc)
    finally:
        for p in procs:
            stop(p)

    summary = {"proxy": {}, "server": {}}
    for pipeline in a.pipelines:
        summary["proxy"][str(pipeline)] = {"P": cell(proxy_runs, "P", pipeline), "T": cell(proxy_runs, "T", pipeline),
                                           "T/P": ratio(proxy_runs, "T", "P", pipeline, a)}
        sc = {k: cell(server_runs, k, pipeline) for k in stargets}
        sc["memshard TLS / memcached TLS"] = ratio(server_runs, "memshard TLS", "memcached TLS", pipeline, a)
        if not a.no_plain_servers:
            sc["memshard TLS / memshard"] = ratio(server_runs, "memshard TLS", "memshard", pipeline, a)
            sc["memcached TLS / memcached"] = ratio(server_runs, "memcached TLS", "memcached", pipeline, a)
            sc["memshard / memcached"] = ratio(server_runs, "memshard", "memcached", pipeline, a)
        summary["server"][str(pipeline)] = sc
    doc.update({"date": t0.strftime("%Y-%m-%d %H:%M UTC"), "end": t1.strftime("%H:%M UTC"),
                "machine": {"cpus": os.cpu_count(), "loadavg_before": load0, "loadavg_after": load1},
                "settings": {"rounds": a.rounds, "duration_s": a.duration, "warmup_s": a.warmup, "workers": a.workers,
                             "server_threads": a.threads, "pipelines": a.pipelines, "keys": KEYS, "connections": 50,
                             "get_ratio": 0.9, "value_bytes": 100, "generator_threads": 1},
                "summary": summary, "runs": {"proxy": proxy_runs, "server": server_runs}})
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)

    # --- Markdown ---
    P16 = summary["proxy"].get("16")
    print(f"### Proxy: TLS at both ends vs plaintext (3 × `memshard server -t 1` per proxy, `--workers {a.workers}`, "
          f"50 conns, 90% get / 10% set, 100-byte values, 100k keys all hits, {a.rounds} alternating rounds of "
          f"{a.duration:g} s, median)\n")
    print("| pipeline | ops/s plain | ops/s TLS | TLS/plain | per round | proxy CPU µs/req plain | TLS | TLS/plain | "
          "per round | p99 µs plain / TLS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for pipeline in a.pipelines:
        c = summary["proxy"][str(pipeline)]
        P, T, r = c["P"], c["T"], c["T/P"]
        print(f"| {pipeline} | {P['ops_per_sec']:,.0f} ({spread(P['ops'], kops)}) | {T['ops_per_sec']:,.0f} "
              f"({spread(T['ops'], kops)}) | {r['ops']:.3f} | {r['ops_paired']:.3f} | {P['cpu_us']:.2f} "
              f"({spread(P['cpu'], two)}) | {T['cpu_us']:.2f} ({spread(T['cpu'], two)}) | {r['cpu']:.3f} | "
              f"{r['cpu_paired']:.3f} | {P['p99_us']:.0f} / {T['p99_us']:.0f} |")
    print("\nCPU µs per request, every process (median of the rounds; warm-up included):\n")
    print("| pipeline | case | proxy | 3 shards | generator | total |")
    print("|---|---|---|---|---|---|")
    for pipeline in a.pipelines:
        for k, label in (("P", "plain"), ("T", "TLS")):
            x = summary["proxy"][str(pipeline)][k]
            print(f"| {pipeline} | {label} | {x['cpu_us']:.2f} | {x['shards_cpu_us']:.2f} | {x['generator_cpu_us']:.2f} | "
                  f"{x['cpu_us'] + x['shards_cpu_us'] + x['generator_cpu_us']:.2f} |")
    if P16:
        ok = P16["T/P"]["ops"] >= 0.65
        print(f"\nGoal (TLS costs the proxy at most 35 % of its plaintext ops/s at pipeline 16, i.e. TLS/plain ≥ 0.65): "
              f"{P16['T/P']['ops']:.3f} (per round {P16['T/P']['ops_paired']:.3f}) — {'met' if ok else 'NOT met'}.")

    print(f"\n### Servers: `-Z` (TLS) {'and plaintext ' if not a.no_plain_servers else ''}(-t {a.threads}, 50 conns, "
          f"90% get / 10% set, 100-byte values, 100k keys all hits, {a.rounds} alternating rounds of {a.duration:g} s, "
          "median)\n")
    print("| server | pipeline | ops/s (rounds) | server CPU µs/req (rounds) | generator CPU µs/req | p99 µs |")
    print("|---|---|---|---|---|---|")
    for pipeline in a.pipelines:
        for k in stargets:
            x = summary["server"][str(pipeline)][k]
            print(f"| {k} | {pipeline} | {x['ops_per_sec']:,.0f} ({spread(x['ops'], kops)}) | {x['cpu_us']:.2f} "
                  f"({spread(x['cpu'], two)}) | {x['generator_cpu_us']:.2f} | {x['p99_us']:.0f} |")
    print("\n| ratio | pipeline | ops/s | per round | server CPU µs/req | per round |")
    print("|---|---|---|---|---|---|")
    for pipeline in a.pipelines:
        for k, r in summary["server"][str(pipeline)].items():
            if "/" in k:
                print(f"| {k} | {pipeline} | {r['ops']:.3f} | {r['ops_paired']:.3f} | {r['cpu']:.3f} | "
                      f"{r['cpu_paired']:.3f} |")
    for pipeline in a.pipelines:
        r = summary["server"][str(pipeline)]["memshard TLS / memcached TLS"]
        print(f"\nGoal (memshard -Z at least level with memcached -Z), pipeline {pipeline}: ops/s {r['ops']:.3f}× "
              f"(per round {r['ops_paired']:.3f}×) — {'met' if r['ops'] >= 1.0 else 'NOT met'}; "
              f"CPU per request {r['cpu']:.3f}×.", end="")
    errors = sum(x["errors"] for x in proxy_runs + server_runs)
    print(f"\n\nRun of {doc['date']}–{doc['end']}, commit {doc['commit']}; load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} after; {errors} request errors.\n")
    print("Commands:\n")
    for k, v in doc["commands"].items():
        print(f"- {k}: `{v}`")
    print("\n(ports and paths per target; the load's -P per cell)\n")


# --- callgrind ------------------------------------------------------------

def callgrind(a, pki, tmp):
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found: apt-get install valgrind")
    ca = pki["ca"]
    rows, cmds, start_commit = [], {}, commit()
    # Proxies: P and T, each alone under valgrind, in front of its own shard set.
    shards = {}
    try:
        shards = {"P": [start_server("memshard", 1, None) for _ in range(3)],
                  "T": [start_server("memshard", 1, pki) for _ in range(3)]}
        for pipeline in a.pipelines:
            for k in ("P", "T"):
                cmd, port = proxy_cmd(tmp, f"cg-proxy-{k}-{pipeline}", shards[k], a.workers, pki if k == "T" else None)
                cmds[f"proxy {k}"] = rel(cmd, tmp)
                counters = [(s[1], s[3]) for s in shards[k]]
                tls = ca if k == "T" else None
                rows.append(count(cmd, port, counters, ca, tls, pipeline, a, tmp, f"proxy {k}"))
    finally:
        for ss in shards.values():
            for s in ss:
                stop(s[0])
    kinds = [("memshard TLS", "memshard", True), ("memcached TLS", "memcached", True)]
    if not a.no_plain_servers:
        kinds += [("memshard", "memshard", False), ("memcached", "memcached", False)]
    for pipeline in a.pipelines:
        for name, kind, tls in kinds:
            port = free_port()
            # memcached sets its open-file limit to exactly -c, and under
            # valgrind only valgrind's own limit is accepted: the hard limit
            # less the 12 descriptors it keeps (as bench/report.py does).
            conns = resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 12 if kind == "memcached" else 4096
            cmd = server_cmd(kind, port, a.threads, pki if tls else None, conns)
            cmds[name] = rel(cmd, tmp)
            rows.append(count(cmd, port, [(port, tls)], ca, ca if tls else None, pipeline, a, tmp, name))
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": start_commit,
           "settings": {"duration_s": a.duration, "workers": a.workers, "server_threads": a.threads, "keys": KEYS},
           "commands": cmds, "rows": rows}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)
    get = lambda k, p: [x for x in rows if x["target"] == k and x["pipeline"] == p][0]
    print(f"### Instructions per request under callgrind (50 conns, 90% get / 10% set, 100-byte values, 100k keys all "
          f"hits, proxy `--workers {a.workers}`, servers -t {a.threads}; per request: a {1 + a.duration:g} s load less a 1 s "
          "one)\n")
    print("| target | pipeline | requests | instructions / request | TLS − plain | TLS/plain | "
          "M instructions per connection opened |")
    print("|---|---|---|---|---|---|---|")
    pairs = [("proxy T", "proxy P", "proxy TLS", "proxy plain")]
    if not a.no_plain_servers:
        pairs += [("memshard TLS", "memshard", "memshard TLS", "memshard"),
                  ("memcached TLS", "memcached", "memcached TLS", "memcached")]
    for pipeline in a.pipelines:
        for tk, pk, tl, pl in pairs:
            t, p = get(tk, pipeline), get(pk, pipeline)
            print(f"| {pl} | {pipeline} | {p['requests']:,} | {p['per_request']:,.0f} | | | "
                  f"{p['per_connection'] / 1e6:.2f} |")
            print(f"| {tl} | {pipeline} | {t['requests']:,} | {t['per_request']:,.0f} | "
                  f"+{t['per_request'] - p['per_request']:,.0f} | {t['per_request'] / p['per_request']:.3f} | "
                  f"{t['per_connection'] / 1e6:.2f} |")
        if a.no_plain_servers:
            for k in ("memshard TLS", "memcached TLS"):
                x = get(k, pipeline)
                print(f"| {k} | {pipeline} | {x['requests']:,} | {x['per_request']:,.0f} | | | "
                      f"{x['per_connection'] / 1e6:.2f} |")
    print("\nmemshard TLS / memcached TLS, instructions per request: " + ", ".join(
        f"pipeline {p}: {get('memshard TLS', p)['per_request'] / get('memcached TLS', p)['per_request']:.3f}"
        for p in a.pipelines) + "\n")
    print(f"Run of {doc['date']}, commit {doc['commit']}; "
          f"{sum(x['errors'] for x in rows)} request errors.\n")
    print("Commands:\n")
    print("- each target: `valgrind --tool=callgrind <command>`, the keys set through it, then twice "
          "`callgrind_control -z PID`, a load (`-d 1`, then `-d " + f"{1 + a.duration:g}" + "`; 50 new connections "
          "each, `--warmup 0`), `callgrind_control -d PID`; per request: the difference of the two counts over the "
          "difference of the requests")
    for k, v in cmds.items():
        print(f"- {k}: `{v}`")
    print()


def callgrind_loads(cmd, port, out, prefill, requests, loads):
    """common.callgrind_instructions with several loads: `cmd` (listening on
    `port`) under callgrind, `prefill()`, then for each load the counters
    zeroed, the load run and the counters dumped, `requests()` read before
    the zeroing and after the dump (outside the counted window: reading a
    TLS server's stats is a handshake). [(instructions, requests, what the
    load returned)] in order."""
    import re, time
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        end = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if p.poll() is not None or time.time() > end:
                    raise RuntimeError(f"`{' '.join(cmd)}` under valgrind: not listening on {port} (exit {p.poll()})")
                time.sleep(0.1)
        prefill()
        for i, load in enumerate(loads, 1):
            n0 = requests()
            subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
            r = load()
            subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
            dump, end, total = f"{out}.{p.pid}.{i}", time.time() + 60, None
            while total is None and time.time() < end:
                try:
                    with open(dump) as f:
                        m = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
                    total = m and int(m.group(1))
                except FileNotFoundError:
                    pass
                if total is None:
                    time.sleep(0.2)
            if total is None:
                raise RuntimeError(f"no callgrind dump {dump}")
            results.append((total, requests() - n0, r))
    finally:
        stop(p)
    return results


def count(cmd, port, counters, ca, tls_ca, pipeline, a, tmp, name):
    """Instructions per request of `cmd` under callgrind, net of what
    opening the 50 connections costs (TLS handshakes, accept, buffers): two
    loads, 1 s and 1 s + `--duration`, each opening its connections; the
    difference of their instructions over the difference of their requests.
    What is left of the short load is the fixed cost, per connection."""
    out = os.path.join(tmp, f"cg.{name.replace(' ', '_')}.{pipeline}")

    def load(duration):
        return lambda: bench(port, pipeline, duration, warmup=0, prefill=False, tls_ca=tls_ca, timeout=60)[0]

    (ir1, n1, r1), (ir2, n2, r2) = callgrind_loads(
        cmd, port, out, lambda: bench(port, 16, 1, warmup=0, prefill=True, tls_ca=tls_ca, timeout=60),
        lambda: served(counters, ca), [load(1), load(1 + a.duration)])
    per = (ir2 - ir1) / max(n2 - n1, 1)
    row = {"target": name, "pipeline": pipeline, "requests": n2 - n1, "instructions": ir2 - ir1, "per_request": per,
           "short": {"requests": n1, "instructions": ir1}, "long": {"requests": n2, "instructions": ir2},
           "per_connection": (ir1 - n1 * per) / 50, "errors": r1["errors"] + r2["errors"]}
    print(f"  {name} P{pipeline}: {n2 - n1} requests more, {per:.0f} instructions/request, "
          f"{row['per_connection'] / 1e6:.2f} M instructions per connection opened", file=sys.stderr)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per pipeline depth (default 5)")
    ap.add_argument("--duration", type=float, default=6, help="measured seconds per run (default 6)")
    ap.add_argument("--warmup", type=float, default=1, help="warm-up seconds before each run (default 1)")
    ap.add_argument("--workers", type=int, default=1, help="--workers of both proxies (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="-t of the compared servers (default 1)")
    ap.add_argument("--pipelines", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--no-plain-servers", action="store_true", help="servers: the TLS ones only")
    ap.add_argument("--callgrind", action="store_true", help="count instructions per request instead")
    ap.add_argument("--out", help="write the runs and the summary here as JSON")
    a = ap.parse_args()
    if not os.path.exists(MEMSHARD):
        sys.exit(f"{MEMSHARD} not found: build first with `cargo build --release -p memshard`")
    for tool in ("memcached", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found in PATH")
    tmp = tempfile.mkdtemp(prefix="memshard-tls-")
    print(f"files (certificates, pool files, logs, callgrind dumps) in {tmp}", file=sys.stderr)
    pki = make_pki(tmp)
    if a.callgrind:
        callgrind(a, pki, tmp)
    else:
        throughput(a, pki, tmp)


if __name__ == "__main__":
    main()
