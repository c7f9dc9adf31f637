//! Invariants any of our manifest sets must hold, whatever it deploys:
//! selectors, Service ports, probes, resources, security, disruption
//! budgets, spreading and graceful shutdown.

use super::{Manifests, SELECTOR_KEYS, Workload, bytes, labels, scalar, selects, seq};
use yaml_rust2::Yaml;

/// How long a role drains connections after SIGTERM (memshard-net's
/// `drain_timeout`, 10 s): the grace period must outlast preStop + drain.
pub(crate) const DRAIN_SECONDS: i64 = 10;

/// Every generic problem found, one line each.
pub(crate) fn generic(m: &Manifests) -> Vec<String> {
    let mut problems = Vec::new();
    for doc in &m.docs {
        let id = format!("{}/{}", doc["kind"].as_str().unwrap_or("?"), doc["metadata"]["name"].as_str().unwrap_or("?"));
        let l = labels(&doc["metadata"]["labels"]);
        for key in ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"] {
            if !l.contains_key(key) {
                problems.push(format!("{id}: no label {key}"));
            }
        }
    }
    for w in m.workloads() {
        workload(&w, &mut problems);
    }
    for svc in m.of_kind("Service") {
        service(m, svc, &mut problems);
    }
    pdbs(m, &mut problems);
    problems
}

fn workload(w: &Workload<'_>, problems: &mut Vec<String>) {
    let id = w.id();
    let selector = labels(&w.doc["spec"]["selector"]["matchLabels"]);
    let keys: Vec<&str> = selector.keys().map(String::as_str).collect();
    if keys != SELECTOR_KEYS {
        problems.push(format!("{id}: selector keys {keys:?}, want {SELECTOR_KEYS:?}"));
    }
    if !selects(&selector, &w.pod_labels()) {
        problems.push(format!("{id}: selector {selector:?} does not select its own pod template"));
    }
    let pod = w.pod_spec();
    if pod["automountServiceAccountToken"].as_bool() != Some(false) {
        problems.push(format!("{id}: automountServiceAccountToken is not false"));
    }
    let spread = seq(&pod["topologySpreadConstraints"]);
    if spread.is_empty() {
        problems.push(format!("{id}: no topologySpreadConstraints"));
    }
    for c in spread {
        if !selects(&labels(&c["labelSelector"]["matchLabels"]), &w.pod_labels()) {
            problems.push(format!("{id}: a topologySpreadConstraint does not select the workload's pods"));
        }
    }
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    if w.containers().is_empty() {
        problems.push(format!("{id}: no containers"));
    }
    for c in w.containers() {
        let cid = format!("{id} container {}", c["name"].as_str().unwrap_or("?"));
        container(w, c, &cid, problems);
        if let Some(sleep) = c["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64() {
            if grace <= sleep + DRAIN_SECONDS {
                problems.push(format!(
                    "{cid}: terminationGracePeriodSeconds {grace} <= preStop sleep {sleep} + drain {DRAIN_SECONDS}"
                ));
            }
        }
    }
}

fn container(w: &Workload<'_>, c: &Yaml, cid: &str, problems: &mut Vec<String>) {
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let p = &c[probe];
        if p.is_badvalue() && probe == "startupProbe" {
            continue;
        }
        if p.is_badvalue() {
            problems.push(format!("{cid}: no {probe}"));
        } else if !p["exec"].is_badvalue() {
            // An exec probe talks to the server through bash's /dev/tcp/HOST/PORT.
            match exec_probe_port(p) {
                None => problems.push(format!("{cid}: {probe} exec command names no /dev/tcp/HOST/PORT")),
                Some(port) if w.resolve_port(&Yaml::Integer(port)).is_none() => {
                    problems.push(format!("{cid}: {probe} exec port {port} is not a container port"));
                }
                Some(_) => {}
            }
        } else {
            // The container's own port: a probe of a sidecar's port would
            // restart this container for the sidecar's sake.
            let port = if !p["tcpSocket"].is_badvalue() { &p["tcpSocket"]["port"] } else { &p["httpGet"]["port"] };
            if w.resolve_port(port).is_none() {
                problems.push(format!("{cid}: {probe} port {:?} is not a container port", scalar(port)));
            } else if !own_port(c, port) {
                problems.push(format!("{cid}: {probe} port {:?} is another container's", scalar(port)));
            }
        }
    }
    for section in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if scalar(&c["resources"][section][resource]).is_none() {
                problems.push(format!("{cid}: no resources.{section}.{resource}"));
            }
        }
    }
    if let (Some(req), Some(lim)) =
        (bytes(&c["resources"]["requests"]["memory"]), bytes(&c["resources"]["limits"]["memory"]))
    {
        if lim < req {
            problems.push(format!("{cid}: memory limit below request"));
        }
    }
    let sc = &c["securityContext"];
    let want = [
        ("runAsNonRoot", sc["runAsNonRoot"].as_bool() == Some(true)),
        ("runAsUser", sc["runAsUser"].as_i64().is_some_and(|u| u > 0)),
        ("readOnlyRootFilesystem", sc["readOnlyRootFilesystem"].as_bool() == Some(true)),
        ("allowPrivilegeEscalation", sc["allowPrivilegeEscalation"].as_bool() == Some(false)),
        ("capabilities.drop", seq(&sc["capabilities"]["drop"]).iter().any(|d| d.as_str() == Some("ALL"))),
        ("seccompProfile", sc["seccompProfile"]["type"].as_str() == Some("RuntimeDefault")),
    ];
    for (field, ok) in want {
        if !ok {
            problems.push(format!("{cid}: securityContext.{field} is not the restricted setting"));
        }
    }
    let image = c["image"].as_str().unwrap_or("");
    if image.is_empty() || image.ends_with(":latest") || !image.contains(':') {
        problems.push(format!("{cid}: image {image:?} has no pinned tag"));
    }
}

fn service(m: &Manifests, svc: &Yaml, problems: &mut Vec<String>) {
    let id = format!("Service/{}", svc["metadata"]["name"].as_str().unwrap_or("?"));
    let selector = labels(&svc["spec"]["selector"]);
    let keys: Vec<&str> = selector.keys().map(String::as_str).collect();
    if keys != SELECTOR_KEYS {
        problems.push(format!("{id}: selector keys {keys:?}, want {SELECTOR_KEYS:?}"));
    }
    let w = match m.selected(&selector) {
        Ok(w) => w,
        Err(e) => return problems.push(format!("{id}: {e}")),
    };
    for port in seq(&svc["spec"]["ports"]) {
        let target = if port["targetPort"].is_badvalue() { &port["port"] } else { &port["targetPort"] };
        if w.resolve_port(target).is_none() {
            problems.push(format!("{id}: targetPort {:?} is not a container port of {}", scalar(target), w.id()));
        }
        if port["name"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{id}: port {:?} has no name", scalar(&port["port"])));
        }
    }
}

fn pdbs(m: &Manifests, problems: &mut Vec<String>) {
    let mut covered = Vec::new();
    for pdb in m.of_kind("PodDisruptionBudget") {
        let id = format!("PodDisruptionBudget/{}", pdb["metadata"]["name"].as_str().unwrap_or("?"));
        if pdb["apiVersion"].as_str() != Some("policy/v1") {
            problems.push(format!("{id}: apiVersion is not policy/v1"));
        }
        if pdb["spec"]["maxUnavailable"].as_i64() != Some(1) {
            problems.push(format!("{id}: maxUnavailable is not 1"));
        }
        if pdb["spec"]["unhealthyPodEvictionPolicy"].as_str() != Some("AlwaysAllow") {
            problems.push(format!("{id}: unhealthyPodEvictionPolicy is not AlwaysAllow"));
        }
        match m.selected(&labels(&pdb["spec"]["selector"]["matchLabels"])) {
            Ok(w) => covered.push(w.id()),
            Err(e) => problems.push(format!("{id}: {e}")),
        }
    }
    for w in m.workloads() {
        if !covered.contains(&w.id()) {
            problems.push(format!("{}: no PodDisruptionBudget", w.id()));
        }
    }
}

/// Whether `port` (a number or a name) is one of container `c`'s ports.
fn own_port(c: &Yaml, port: &Yaml) -> bool {
    seq(&c["ports"]).iter().any(|p| match port {
        Yaml::Integer(n) => p["containerPort"].as_i64() == Some(*n),
        Yaml::String(name) => p["name"].as_str() == Some(name),
        _ => false,
    })
}

/// The port of `/dev/tcp/HOST/PORT` in an exec probe's command.
pub(crate) fn exec_probe_port(probe: &Yaml) -> Option<i64> {
    seq(&probe["exec"]["command"]).iter().filter_map(Yaml::as_str).find_map(|arg| {
        let rest = &arg[arg.find("/dev/tcp/")? + "/dev/tcp/".len()..];
        let (_host, port) = rest.split_once('/')?;
        port.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
    })
}
