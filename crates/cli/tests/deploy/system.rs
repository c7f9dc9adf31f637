//! The memshard topology: web app -> proxy Service -> proxy pods -> the
//! shard names of the pool file -> StatefulSet pods behind the headless
//! Service; and the NetworkPolicies that let exactly that traffic through.

use super::{Labels, Manifests, Workload, bytes, env, flag, labels, scalar, seq};
use memshard_config::{Config, Listen, ServerAddr};
use yaml_rust2::Yaml;

const MIB: u64 = 1 << 20;

/// A shard's grace period with a memory file: 30 s (the 10 s drain, and
/// slack) plus 10 s per GiB of `-m`, rounded up (the file written at
/// 100 MiB/s, a slow network disk).
pub(crate) fn shard_grace_floor(memory_mb: u64) -> i64 {
    30 + 10 * i64::try_from(memory_mb.div_ceil(1024)).unwrap_or(i64::MAX / 20)
}

/// The smallest volume for a memory file of `-m` MB: 1.25 x -m + 64 MiB
/// (the file holds at most the item memory; the rest is filesystem overhead).
pub(crate) fn shard_volume_floor(memory_mb: u64) -> u64 {
    ((memory_mb * 5).div_ceil(4) + 64) * MIB
}

/// The time a shard's startup probe must allow before the liveness probe
/// takes over, when the liveness probe needs an answer (the admin port
/// serves only once the memory file is loaded): 60 s plus 10 s per GiB of
/// `-m`, rounded up (a load reads the file at 100 MiB/s or faster).
pub(crate) fn shard_startup_floor(memory_mb: u64) -> i64 {
    60 + 10 * i64::try_from(memory_mb.div_ceil(1024)).unwrap_or(i64::MAX / 20)
}

/// Seconds a restarted shard must be ready before a rollout stops the next.
pub(crate) const MIN_READY_SECONDS: i64 = 10;

/// Every topology problem found, one line each.
pub(crate) fn system(m: &Manifests) -> Vec<String> {
    let mut problems = Vec::new();
    let deployment = |role: &str, problems: &mut Vec<String>| {
        let hits: Vec<_> = m
            .workloads()
            .into_iter()
            .filter(|w| w.kind() == "Deployment" && w.role_container(role).is_some())
            .collect();
        if hits.len() != 1 {
            problems.push(format!("want one Deployment running `memshard {role}`, found {}", hits.len()));
        }
        hits.first().copied()
    };
    let app = deployment("app", &mut problems);
    let proxy = deployment("proxy", &mut problems);
    let sets: Vec<_> = m.workloads().into_iter().filter(|w| w.kind() == "StatefulSet").collect();
    if sets.len() != 1 {
        problems.push(format!("want one StatefulSet (the shards), found {}", sets.len()));
    }
    let (Some(app), Some(proxy), Some(shards)) = (app, proxy, sets.first().copied()) else {
        return problems;
    };
    let shard_port = shards_ok(m, &shards, &mut problems);
    let proxy_port = proxy_ok(m, &proxy, &shards, shard_port, &mut problems);
    let app_port = app_ok(m, &app, &proxy, proxy_port, &mut problems);
    network(m, &mut problems);
    // The admin ports (a memshard role's, or an exporter's in its place).
    let admin = Yaml::String("admin".to_owned());
    let (proxy_admin, shard_admin) = (proxy.resolve_port(&admin), shards.resolve_port(&admin));
    let (app_l, proxy_l, shard_l) = (app.pod_labels(), proxy.pod_labels(), shards.pod_labels());
    let flows = [
        ("anyone -> app", None, Some(&app), app_port, "TCP", true),
        ("app -> proxy", Some(&app_l), Some(&proxy), proxy_port, "TCP", true),
        ("proxy -> shards", Some(&proxy_l), Some(&shards), shard_port, "TCP", true),
        ("app -> DNS (UDP)", Some(&app_l), None, Some(53), "UDP", true),
        ("app -> DNS (TCP)", Some(&app_l), None, Some(53), "TCP", true),
        ("proxy -> DNS (UDP)", Some(&proxy_l), None, Some(53), "UDP", true),
        ("anyone -> proxy admin", None, Some(&proxy), proxy_admin, "TCP", true),
        ("anyone -> shards admin", None, Some(&shards), shard_admin, "TCP", true),
        ("app -> shards", Some(&app_l), Some(&shards), shard_port, "TCP", false),
        ("anyone -> proxy", None, Some(&proxy), proxy_port, "TCP", false),
        ("anyone -> shards", None, Some(&shards), shard_port, "TCP", false),
        ("shards -> proxy", Some(&shard_l), Some(&proxy), proxy_port, "TCP", false),
    ];
    for (what, src, dst, port, proto, want) in flows {
        let Some(port) = port else { continue };
        if allowed(m, src, dst, port, proto) != want {
            let verb = if want { "blocked" } else { "allowed" };
            problems.push(format!("NetworkPolicy: {what} port {port}/{proto} is {verb}"));
        }
    }
    problems
}

/// The shards: `-p` = container port = headless Service port; memory from `-m`.
fn shards_ok(m: &Manifests, shards: &Workload<'_>, problems: &mut Vec<String>) -> Option<i64> {
    let id = shards.id();
    let c = shards.containers().first()?;
    let argv = Workload::argv(c);
    let Some(port) = flag(&argv, "-p", "--port").and_then(|p| p.parse::<i64>().ok()) else {
        problems.push(format!("{id}: no -p PORT in {argv:?}"));
        return None;
    };
    if shards.resolve_port(&Yaml::Integer(port)).is_none() {
        problems.push(format!("{id}: -p {port} is not a container port"));
    }
    let service = shards.doc["spec"]["serviceName"].as_str().unwrap_or("");
    match m.get("Service", service) {
        None => problems.push(format!("{id}: serviceName {service:?} names no Service")),
        Some(svc) => {
            if svc["spec"]["clusterIP"].as_str() != Some("None") {
                problems.push(format!("Service/{service}: governs {id} but is not headless (clusterIP: None)"));
            }
            if svc["spec"]["publishNotReadyAddresses"].as_bool() != Some(true) {
                problems.push(format!("Service/{service}: publishNotReadyAddresses is not true"));
            }
            if m.selected(&labels(&svc["spec"]["selector"])).map(|w| w.id()).ok() != Some(id.clone()) {
                problems.push(format!("Service/{service}: does not select the pods of {id}"));
            }
            let ports = seq(&svc["spec"]["ports"]);
            let same = ports.iter().any(|p| {
                let target = if p["targetPort"].is_badvalue() { &p["port"] } else { &p["targetPort"] };
                p["port"].as_i64() == Some(port) && shards.resolve_port(target) == Some(port)
            });
            if !same {
                problems.push(format!("Service/{service}: no port {port} targeting container port {port} (-p)"));
            }
        }
    }
    let memory_mb = flag(&argv, "-m", "--memory-limit").and_then(|v| v.parse::<u64>().ok());
    memory_file_ok(shards, c, &argv, memory_mb.unwrap_or(64), problems);
    if let Some(mb) = memory_mb {
        let request = bytes(&c["resources"]["requests"]["memory"]).unwrap_or(0);
        let limit = bytes(&c["resources"]["limits"]["memory"]).unwrap_or(0);
        if request * 5 < mb * MIB * 6 + 500 * MIB {
            problems.push(format!("{id}: memory request below 1.2 x -m {mb} + 100Mi"));
        }
        if limit * 2 < mb * MIB * 3 {
            problems.push(format!("{id}: memory limit below 1.5 x -m {mb}"));
        }
    }
    Some(port)
}

/// Warm restarts: a shard started with `-e PATH` keeps PATH on a
/// PersistentVolumeClaim of its own, large enough, writable, deleted with
/// the shard; it has the time to save before SIGKILL; it is ready only once
/// it answers (the port is bound before the load); and a rollout waits for
/// it. A claim template without `-e` is a volume nothing uses.
fn memory_file_ok(shards: &Workload<'_>, c: &Yaml, argv: &[String], memory_mb: u64, problems: &mut Vec<String>) {
    let id = shards.id();
    let spec = &shards.doc["spec"];
    let templates = seq(&spec["volumeClaimTemplates"]);
    let Some(path) = flag(argv, "-e", "--memory-file") else {
        if !templates.is_empty() {
            problems.push(format!("{id}: volumeClaimTemplates without -e: a volume per shard that nothing uses"));
        }
        return;
    };
    let file = std::path::Path::new(&path);
    let mount = seq(&c["volumeMounts"])
        .iter()
        .filter(|m| {
            m["mountPath"].as_str().is_some_and(|dir| file.starts_with(dir) && file != std::path::Path::new(dir))
        })
        .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len));
    let Some(mount) = mount else {
        problems.push(format!("{id}: memory file {path} is on no volume: it goes with the container"));
        return;
    };
    let volume = mount["name"].as_str().unwrap_or("?");
    let claim = templates.iter().find(|t| t["metadata"]["name"].as_str() == Some(volume));
    match claim {
        Some(claim) => {
            let size = bytes(&claim["spec"]["resources"]["requests"]["storage"]).unwrap_or(0);
            let need = shard_volume_floor(memory_mb);
            if size < need {
                problems.push(format!(
                    "{id}: volume {volume} requests {size} bytes, below 1.25 x -m {memory_mb} + 64Mi ({need} bytes)"
                ));
            }
        }
        None => problems.push(format!(
            "{id}: memory file {path} is on volume {volume}, not a PersistentVolumeClaim of the StatefulSet: it does not outlive the pod"
        )),
    }
    if mount["readOnly"].as_bool() == Some(true) {
        problems.push(format!("{id}: volume {volume} of the memory file is mounted read-only"));
    }
    if shards.pod_spec()["securityContext"]["fsGroup"].as_i64().is_none() {
        problems.push(format!("{id}: no fsGroup: the non-root server cannot write the memory file on a fresh volume"));
    }
    let retention = &spec["persistentVolumeClaimRetentionPolicy"];
    for (when, what) in [("whenScaled", "a shard scaled in and out again"), ("whenDeleted", "a StatefulSet recreated")]
    {
        if retention[when].as_str() != Some("Delete") {
            problems.push(format!(
                "{id}: persistentVolumeClaimRetentionPolicy.{when} is not Delete: {what} would load a memory file from before"
            ));
        }
    }
    let grace = shards.pod_spec()["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    let floor = shard_grace_floor(memory_mb);
    if grace < floor {
        problems.push(format!(
            "{id}: terminationGracePeriodSeconds {grace} < {floor}, the drain and the save of -m {memory_mb} (30 s + 10 s per GiB)"
        ));
    }
    let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
    if min_ready < MIN_READY_SECONDS {
        problems.push(format!(
            "{id}: minReadySeconds {min_ready} < {MIN_READY_SECONDS}: a rollout would not wait for a restarted shard"
        ));
    }
    let strategy = &spec["updateStrategy"];
    if strategy["type"].as_str().unwrap_or("RollingUpdate") != "RollingUpdate"
        || strategy["rollingUpdate"]["maxUnavailable"].as_i64().unwrap_or(1) != 1
    {
        problems.push(format!("{id}: updateStrategy is not a RollingUpdate of one shard at a time"));
    }
    // An answer: `version` through an exec probe, or the admin port's
    // /readyz (served only once the server accepts).
    if c["readinessProbe"]["exec"].is_badvalue() && c["readinessProbe"]["httpGet"].is_badvalue() {
        problems.push(format!(
            "{id}: readinessProbe needs no answer: it passes while the memory file loads (the port is bound before)"
        ));
    }
    if c["livenessProbe"]["tcpSocket"].is_badvalue() {
        let startup = &c["startupProbe"];
        let budget =
            startup["periodSeconds"].as_i64().unwrap_or(10) * startup["failureThreshold"].as_i64().unwrap_or(3);
        let floor = shard_startup_floor(memory_mb);
        if startup.is_badvalue() {
            problems
                .push(format!("{id}: livenessProbe needs an answer: a long load of the memory file would be killed"));
        } else if budget < floor {
            problems.push(format!(
                "{id}: startupProbe allows {budget} s, below {floor} s for loading the memory file of -m {memory_mb} (60 s + 10 s per GiB)"
            ));
        }
    }
}

/// The proxy: its pool file loads, lists exactly the StatefulSet's pod
/// names (or discovers them from the shards' headless Service's SRV
/// records), and listens on the port its Service targets.
fn proxy_ok(
    m: &Manifests,
    proxy: &Workload<'_>,
    shards: &Workload<'_>,
    shard_port: Option<i64>,
    problems: &mut Vec<String>,
) -> Option<i64> {
    let id = proxy.id();
    let c = proxy.role_container("proxy")?;
    let argv = Workload::argv(c);
    let Some(path) = flag(&argv, "-c", "--conf-file") else {
        problems.push(format!("{id}: no -c FILE"));
        return None;
    };
    if let Some(stats) = flag(&argv, "-s", "--stats-port").and_then(|p| p.parse::<i64>().ok()) {
        if proxy.resolve_port(&Yaml::Integer(stats)).is_none() {
            problems.push(format!("{id}: stats port {stats} (-s) is not a container port"));
        }
    }
    let Some(text) = mounted_config(m, proxy, c, &path) else {
        problems.push(format!("{id}: -c {path} is not a key of a mounted ConfigMap"));
        return None;
    };
    let config = match Config::from_yaml(&text) {
        Ok(config) => config,
        Err(e) => {
            problems.push(format!("{id}: pool file {path} does not load: {e}"));
            return None;
        }
    };
    let [(name, pool)] = config.pools.as_slice() else {
        problems.push(format!("{id}: want one pool in {path}, found {}", config.pools.len()));
        return None;
    };
    let service = shards.doc["spec"]["serviceName"].as_str().unwrap_or("?");
    if let Some(d) = &pool.extensions.discovery {
        // SRV records of the shards' headless Service, by its port named
        // `memcache`: `_memcache._tcp.<service>`, relative (the pod's search
        // list adds the namespace) or followed by `.<namespace>.svc.<domain>.`.
        let want = format!("_memcache._tcp.{service}");
        let srv = d.srv.as_str();
        let absolute = srv.strip_prefix(&want).and_then(|rest| rest.strip_prefix('.')).is_some_and(|rest| {
            let labels: Vec<&str> = rest.trim_end_matches('.').split('.').collect();
            rest.ends_with('.') && labels.len() >= 3 && labels[1] == "svc"
        });
        if srv != want && !absolute {
            problems.push(format!("{id}: pool {name} discovers {srv:?}, not the SRV records of Service {service}"));
        }
        let named = m.get("Service", service).is_some_and(|svc| {
            seq(&svc["spec"]["ports"])
                .iter()
                .any(|p| p["name"].as_str() == Some("memcache") && p["protocol"].as_str().unwrap_or("TCP") == "TCP")
        });
        if !named {
            problems.push(format!("{id}: Service {service} has no TCP port named memcache for {srv:?}"));
        }
    } else {
        let mut servers: Vec<String> = pool.servers.iter().map(|s| s.addr().to_string()).collect();
        servers.sort();
        if pool.servers.iter().any(|s| !matches!(s.addr(), ServerAddr::Tcp { .. })) {
            problems.push(format!("{id}: pool {name} lists a unix socket"));
        }
        let set = shards.name();
        let replicas = shards.doc["spec"]["replicas"].as_i64().unwrap_or(1);
        let port = shard_port.map_or("?".to_owned(), |p| p.to_string());
        let mut want: Vec<String> = (0..replicas).map(|i| format!("{set}-{i}.{service}:{port}")).collect();
        want.sort();
        if servers != want {
            problems.push(format!("{id}: pool {name} servers {servers:?} are not the StatefulSet's pods {want:?}"));
        }
    }
    let Listen::Tcp { port: listen, .. } = &pool.listen else {
        problems.push(format!("{id}: pool {name} does not listen on TCP"));
        return None;
    };
    let listen = i64::from(*listen);
    if proxy.resolve_port(&Yaml::Integer(listen)).is_none() {
        problems.push(format!("{id}: pool {name} listens on {listen}, not a container port"));
    }
    if service_port_to(m, proxy, listen).is_none() {
        problems.push(format!("{id}: no Service targets the proxy's listen port {listen}"));
    }
    Some(listen)
}

/// The text at `path` in the container: a ConfigMap key under a mount.
fn mounted_config(m: &Manifests, w: &Workload<'_>, c: &Yaml, path: &str) -> Option<String> {
    seq(&c["volumeMounts"]).iter().find_map(|mount| {
        let dir = mount["mountPath"].as_str()?;
        let key = match mount["subPath"].as_str() {
            Some(sub) if path == dir => sub.to_owned(),
            None => path.strip_prefix(dir)?.strip_prefix('/')?.to_owned(),
            Some(_) => return None,
        };
        let volume = seq(&w.pod_spec()["volumes"]).iter().find(|v| v["name"] == mount["name"])?;
        let cm = m.get("ConfigMap", volume["configMap"]["name"].as_str()?)?;
        cm["data"][key.as_str()].as_str().map(str::to_owned)
    })
}

/// The port of a Service selecting `w` whose target is container port `port`.
fn service_port_to(m: &Manifests, w: &Workload<'_>, port: i64) -> Option<(String, i64)> {
    m.of_kind("Service").find_map(|svc| {
        let selected = m.selected(&labels(&svc["spec"]["selector"])).ok()?;
        if selected.id() != w.id() {
            return None;
        }
        seq(&svc["spec"]["ports"]).iter().find_map(|p| {
            let target = if p["targetPort"].is_badvalue() { &p["port"] } else { &p["targetPort"] };
            if w.resolve_port(target) != Some(port) {
                return None;
            }
            Some((svc["metadata"]["name"].as_str()?.to_owned(), p["port"].as_i64()?))
        })
    })
}

/// The app: `--cache` (or MEMSHARD_CACHE) is the proxy Service's name and
/// port; `--listen` (or MEMSHARD_LISTEN) is the port its Service targets.
fn app_ok(
    m: &Manifests,
    app: &Workload<'_>,
    proxy: &Workload<'_>,
    proxy_port: Option<i64>,
    problems: &mut Vec<String>,
) -> Option<i64> {
    let id = app.id();
    let c = app.role_container("app")?;
    let argv = Workload::argv(c);
    let setting = |flag_name: &str, var: &str, problems: &mut Vec<String>| {
        let (f, e) = (flag(&argv, flag_name, flag_name), env(c, var));
        if let (Some(f), Some(e)) = (&f, &e) {
            if f != e {
                problems.push(format!("{id}: {flag_name} {f} and {var}={e} disagree"));
            }
        }
        let value = e.or(f);
        if value.is_none() {
            problems.push(format!("{id}: neither {flag_name} nor {var} is set"));
        }
        value
    };
    if let Some(cache) = setting("--cache", "MEMSHARD_CACHE", problems) {
        let (host, port) = cache.rsplit_once(':').unwrap_or((&cache, ""));
        let service = host.split('.').next().unwrap_or("");
        let target = proxy_port.and_then(|p| service_port_to(m, proxy, p));
        match target {
            Some((name, p)) if name == service && port == p.to_string() => {}
            _ => problems.push(format!("{id}: cache {cache} is not the proxy Service ({target:?})")),
        }
    }
    let listen = setting("--listen", "MEMSHARD_LISTEN", problems)?;
    let Some(port) = listen.rsplit_once(':').and_then(|(_, p)| p.parse::<i64>().ok()) else {
        problems.push(format!("{id}: listen address {listen} has no port"));
        return None;
    };
    if service_port_to(m, app, port).is_none() {
        problems.push(format!("{id}: no Service targets the app's listen port {port}"));
    }
    Some(port)
}

/// Each NetworkPolicy selects real pods, names real peers, and opens ports
/// those pods listen on.
fn network(m: &Manifests, problems: &mut Vec<String>) {
    for np in m.of_kind("NetworkPolicy") {
        let id = format!("NetworkPolicy/{}", np["metadata"]["name"].as_str().unwrap_or("?"));
        let own = match m.selected(&labels(&np["spec"]["podSelector"]["matchLabels"])) {
            Ok(w) => w,
            Err(e) => {
                problems.push(format!("{id}: podSelector {e}"));
                continue;
            }
        };
        for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
            for rule in seq(&np["spec"][rules]) {
                let mut targets = Vec::new();
                for peer in seq(&rule[peers]) {
                    if peer["podSelector"].is_badvalue() || !peer["namespaceSelector"].is_badvalue() {
                        continue;
                    }
                    match m.selected(&labels(&peer["podSelector"]["matchLabels"])) {
                        Ok(w) => targets.push(w),
                        Err(e) => problems.push(format!("{id}: {rules} peer {e}")),
                    }
                }
                if rules == "ingress" {
                    targets = vec![own];
                }
                for p in seq(&rule["ports"]) {
                    for t in &targets {
                        if t.resolve_port(&p["port"]).is_none() {
                            let port = scalar(&p["port"]);
                            problems.push(format!("{id}: {rules} port {port:?} is not a container port of {}", t.id()));
                        }
                    }
                }
            }
        }
    }
}

/// Whether traffic from `src` (None: outside our pods) to `dst` (None:
/// outside, e.g. cluster DNS) on `port`/`proto` passes every policy.
pub(crate) fn allowed(m: &Manifests, src: Option<&Labels>, dst: Option<&Workload<'_>>, port: i64, proto: &str) -> bool {
    let dst_labels = dst.map(|w| w.pod_labels());
    let egress = src.is_none_or(|s| side(m, s, "Egress", dst_labels.as_ref(), port, proto, dst));
    let ingress = dst_labels.as_ref().is_none_or(|d| side(m, d, "Ingress", src, port, proto, dst));
    egress && ingress
}

fn side(
    m: &Manifests,
    pod: &Labels,
    dir: &str,
    peer: Option<&Labels>,
    port: i64,
    proto: &str,
    dst: Option<&Workload<'_>>,
) -> bool {
    let (rules, peers) = if dir == "Ingress" { ("ingress", "from") } else { ("egress", "to") };
    let policies: Vec<&Yaml> = m
        .of_kind("NetworkPolicy")
        .filter(|np| np_selects(&labels(&np["spec"]["podSelector"]["matchLabels"]), pod))
        .filter(|np| match np["spec"]["policyTypes"].as_vec() {
            Some(types) => types.iter().any(|t| t.as_str() == Some(dir)),
            None => dir == "Ingress" || !np["spec"]["egress"].is_badvalue(),
        })
        .collect();
    policies.is_empty()
        || policies.iter().any(|np| {
            seq(&np["spec"][rules])
                .iter()
                .any(|rule| peer_ok(seq(&rule[peers]), peer) && port_ok(seq(&rule["ports"]), port, proto, dst))
        })
}

fn np_selects(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn peer_ok(peers: &[Yaml], peer: Option<&Labels>) -> bool {
    peers.is_empty()
        || peers.iter().any(|p| {
            let pods = labels(&p["podSelector"]["matchLabels"]);
            if !p["ipBlock"].is_badvalue() {
                peer.is_none()
            } else if !p["namespaceSelector"].is_badvalue() {
                p["podSelector"].is_badvalue() || peer.is_some_and(|l| np_selects(&pods, l))
            } else {
                peer.is_some_and(|l| np_selects(&pods, l))
            }
        })
}

fn port_ok(ports: &[Yaml], port: i64, proto: &str, dst: Option<&Workload<'_>>) -> bool {
    ports.is_empty()
        || ports.iter().any(|p| {
            let same_proto = p["protocol"].as_str().unwrap_or("TCP") == proto;
            same_proto
                && match &p["port"] {
                    Yaml::BadValue => true,
                    Yaml::Integer(n) => {
                        *n == port || p["endPort"].as_i64().is_some_and(|end| *n <= port && port <= end)
                    }
                    named @ Yaml::String(_) => dst.is_some_and(|w| w.resolve_port(named) == Some(port)),
                    _ => false,
                }
        })
}
