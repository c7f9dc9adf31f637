//! The Kubernetes deployment (`deploy/`) holds the invariants the system
//! relies on: the proxy's pool file lists exactly the StatefulSet's pod
//! names, every Service selects the pods it is meant for, ports agree from
//! the app's `--cache` down to the shards' `-p`, NetworkPolicies let exactly
//! web -> proxy -> shards through, and every container is probed, bounded
//! and locked down.
//!
//! The kustomize base is read from its files. The renders of the base, the
//! overlay and the Helm chart are made by the tests themselves with the
//! kubectl and helm that `bash deploy/validate.sh` installs
//! (target/deploy-tools); without them those tests say SKIPPED, and fail
//! under `MEMSHARD_REQUIRE_PEERS=1` (CI) or `MEMSHARD_REQUIRE_RENDERED=1`.

mod deploy;

use deploy::{Manifests, Workload, checks, kustomize_sources, repo_root, system};
use memshard_config::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn base_dir() -> PathBuf {
    repo_root().join("deploy/k8s/base")
}

fn problems(m: &Manifests) -> Vec<String> {
    let mut p = checks::generic(m);
    p.extend(system::system(m));
    p
}

fn assert_clean(m: &Manifests, what: &str) {
    let p = problems(m);
    assert!(p.is_empty(), "{what}:\n  {}", p.join("\n  "));
}

fn kinds(m: &Manifests) -> [usize; 6] {
    ["Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"]
        .map(|k| m.of_kind(k).count())
}

fn shards(m: &Manifests) -> Workload<'_> {
    *m.workloads().iter().find(|w| w.kind() == "StatefulSet").expect("a StatefulSet")
}

#[test]
fn base_holds_every_invariant() {
    let m = Manifests::from_kustomize(&kustomize_sources(&base_dir()));
    assert_clean(&m, "deploy/k8s/base");
    // Two Deployments, one StatefulSet, and a Service, a PDB and a policy for each; one ConfigMap.
    assert_eq!(kinds(&m), [2, 1, 3, 3, 3, 1]);
}

#[test]
fn base_pool_file_is_the_twemproxy_pool_over_the_three_shards() {
    let files = kustomize_sources(&base_dir());
    let config = Config::from_yaml(&files["nutcracker.yml"]).expect("nutcracker.yml loads as a twemproxy pool file");
    let pool = config.pool("memcached").expect("a pool named memcached");
    assert_eq!((pool.hash.name(), pool.distribution.name()), ("fnv1a_64", "ketama"));
    assert!(pool.auto_eject_hosts);
    assert_eq!(pool.timeout, Some(Duration::from_millis(400)));
    assert_eq!(pool.server_retry_timeout, Duration::from_millis(2000));
    assert_eq!(pool.server_failure_limit, 1);
    // Port 11211: the ring identity is the host alone, the pod's stable DNS name.
    let ring: Vec<&str> = pool.servers.iter().map(|s| s.ring_name()).collect();
    assert_eq!(ring, ["sharded-memcache-0.memcache", "sharded-memcache-1.memcache", "sharded-memcache-2.memcache"]);
    assert!(pool.servers.iter().all(|s| s.weight() == 1));
    let m = Manifests::from_kustomize(&files);
    assert_eq!(shards(&m).doc["spec"]["replicas"].as_i64(), Some(3));
}

/// (file, text, replacement, a problem the checker must then report)
const MUTATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "app.yaml",
        "type: LoadBalancer\n  selector:\n    app.kubernetes.io/name: memshard\n    app.kubernetes.io/instance: memshard\n    app.kubernetes.io/component: web",
        "type: LoadBalancer\n  selector:\n    app.kubernetes.io/name: memshard\n    app.kubernetes.io/instance: memshard\n    app.kubernetes.io/component: proxy",
        "no Service targets the app's listen port 3000",
    ),
    (
        "proxy.yaml",
        "type: ClusterIP\n  selector:\n    app.kubernetes.io/name: memshard",
        "type: ClusterIP\n  selector:\n    app.kubernetes.io/name: memshart",
        "Service/memcache-proxy: selects no pods",
    ),
    ("proxy.yaml", "targetPort: memcache", "targetPort: memcached", "Service/memcache-proxy: targetPort"),
    ("shards.yaml", "  replicas: 3", "  replicas: 4", "are not the StatefulSet's pods"),
    (
        "nutcracker.yml",
        "sharded-memcache-2.memcache:",
        "sharded-memcache-2.memcached:",
        "are not the StatefulSet's pods",
    ),
    ("nutcracker.yml", "hash: fnv1a_64", "hash: fnv1a_65", "does not load"),
    ("nutcracker.yml", "listen: 0.0.0.0:11211", "listen: 0.0.0.0:11212", "listens on 11212, not a container port"),
    (
        "shards.yaml",
        "- -p\n            - \"11211\"",
        "- -p\n            - \"11311\"",
        "-p 11311 is not a container port",
    ),
    ("app.yaml", "- memcache-proxy:11211", "- memcache-prox:11211", "is not the proxy Service"),
    ("app.yaml", "- memcache-proxy:11211", "- memcache-proxy:22222", "is not the proxy Service"),
    (
        "proxy.yaml",
        "ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: memshard\n              app.kubernetes.io/instance: memshard\n              app.kubernetes.io/component: web",
        "ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: memshard\n              app.kubernetes.io/instance: memshard\n              app.kubernetes.io/component: memcached",
        "app -> proxy port 11211/TCP is blocked",
    ),
    (
        "shards.yaml",
        "spec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: memshard",
        "spec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: memshar",
        "NetworkPolicy/sharded-memcache: podSelector selects no pods",
    ),
    (
        "shards.yaml",
        "spec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: memshard",
        "spec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: memshar",
        "anyone -> shards port 11211/TCP is allowed",
    ),
    (
        "app.yaml",
        "- protocol: UDP\n          port: 53",
        "- protocol: UDP\n          port: 54",
        "app -> DNS (UDP) port 53/UDP is blocked",
    ),
    (
        "shards.yaml",
        "- -m\n            - \"256\"",
        "- -m\n            - \"1024\"",
        "memory request below 1.2 x -m 1024 + 100Mi",
    ),
    (
        "proxy.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        "container proxy: securityContext.readOnlyRootFilesystem",
    ),
    (
        "app.yaml",
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 15",
        "terminationGracePeriodSeconds 15 <= preStop sleep 5 + drain 10",
    ),
    (
        "shards.yaml",
        "readinessProbe:\n            tcpSocket:\n              port: memcache",
        "readinessProbe:\n            tcpSocket:\n              port: mc",
        "readinessProbe port Some(\"mc\") is not a container port",
    ),
    (
        "app.yaml",
        "unhealthyPodEvictionPolicy: AlwaysAllow",
        "unhealthyPodEvictionPolicy: IfHealthyBudget",
        "unhealthyPodEvictionPolicy is not AlwaysAllow",
    ),
    ("shards.yaml", "clusterIP: None", "clusterIP: \"\"", "is not headless"),
    ("app.yaml", "cpu: \"1\"\n              memory: 128Mi", "memory: 128Mi", "container app: no resources.limits.cpu"),
];

#[test]
fn checker_reports_each_mutation_of_the_base() {
    let original = kustomize_sources(&base_dir());
    for (file, from, to, want) in MUTATIONS {
        let mut files = original.clone();
        let text = files.get_mut(*file).unwrap_or_else(|| panic!("the base has no {file}"));
        assert!(text.contains(from), "{file} no longer contains {from:?}: update the mutation table");
        *text = text.replacen(from, to, 1);
        let found = problems(&Manifests::from_kustomize(&files));
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{file}: {from:?} -> {to:?} should report {want:?}; reported:\n  {}",
            found.join("\n  ")
        );
    }
}

/// kubectl and helm where deploy/validate.sh installs them.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let dir = repo_root().join("target/deploy-tools");
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find_map(|p| {
        let layer = p.file_name()?.to_str()?.starts_with("kubectl-layer-");
        let (kubectl, helm) = (p.join("kubectl/kubectl"), p.join("helm/helm"));
        (layer && kubectl.is_file() && helm.is_file()).then_some((kubectl, helm))
    })
}

/// Renders `name` now, as deploy/validate.sh does: the kustomize base or
/// overlay, or the Helm chart with default values or 5 shards. None, said
/// loudly, when kubectl and helm are not installed — and a failure under
/// `MEMSHARD_REQUIRE_PEERS=1` or `MEMSHARD_REQUIRE_RENDERED=1`.
#[allow(clippy::print_stderr)]
fn rendered(name: &str) -> Option<(Manifests, String)> {
    let Some((kubectl, helm)) = tools() else {
        let required = ["MEMSHARD_REQUIRE_PEERS", "MEMSHARD_REQUIRE_RENDERED"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| v == "1"));
        assert!(!required, "kubectl and helm are not installed: `bash deploy/validate.sh` installs them");
        eprintln!("SKIPPED: {name}: kubectl and helm are not installed (`bash deploy/validate.sh` installs them)");
        return None;
    };
    let chart = "deploy/helm/memshard";
    let (bin, args): (&Path, Vec<&str>) = match name {
        "base.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/base"]),
        "official-memcached.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/official-memcached"]),
        "discovery.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/discovery"]),
        "helm-default.yaml" => (&helm, vec!["template", "memshard", chart]),
        "helm-5-shards.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "shards.replicas=5"]),
        "helm-static.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "proxy.shardDiscovery=static"]),
        "helm-static-5-shards.yaml" => {
            (&helm, vec!["template", "memshard", chart, "--set", "proxy.shardDiscovery=static,shards.replicas=5"])
        }
        "helm-key-replicas-2.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "proxy.pool.keyReplicas=2"]),
        other => panic!("no way to render {other}"),
    };
    let home = repo_root().join("target/deploy-tools/helm-home");
    let out = std::process::Command::new(bin)
        .args(&args)
        .current_dir(repo_root())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("{} {args:?}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{} {args:?}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    Some((Manifests::from_rendered(&text, name), text))
}

fn shard_container_argv(m: &Manifests) -> Vec<String> {
    Workload::argv(shards(m).containers().first().expect("a shard container"))
}

#[test]
fn kustomize_renders_hold_every_invariant() {
    let Some((base, _)) = rendered("base.yaml") else { return };
    assert_clean(&base, "target/deploy-rendered/base.yaml");
    assert_eq!(kinds(&base), [2, 1, 3, 3, 3, 1]);
    // A fixed ConfigMap name: an edited pool file is updated in place and
    // the proxies reload it, rather than a new name rolling them.
    let cm = base.of_kind("ConfigMap").next().and_then(|c| c["metadata"]["name"].as_str()).expect("ConfigMap name");
    assert_eq!(cm, "memcache-proxy-config");
    assert!(no_roll_on_pool_change(&base));
    assert_eq!(shard_container_argv(&base)[0], "server");

    // The discovery overlay: the same system, the pool file discovers the shards.
    let Some((discovery, text)) = rendered("discovery.yaml") else { return };
    assert_clean(&discovery, "target/deploy-rendered/discovery.yaml");
    assert!(text.contains("discovery: dnssrv+_memcache._tcp.memcache\n"), "{text}");
    assert!(!text.contains("sharded-memcache-0.memcache:11211:1"), "no static list beside discovery");
    // The checker sees an SRV name that is not the shards' Service.
    let wrong = text.replace("dnssrv+_memcache._tcp.memcache\n", "dnssrv+_memcache._tcp.elsewhere\n");
    let found = problems(&Manifests::from_rendered(&wrong, "discovery.yaml, another service"));
    assert!(found.iter().any(|p| p.contains("not the SRV records of Service memcache")), "reported: {found:?}");

    let Some((official, _)) = rendered("official-memcached.yaml") else { return };
    assert_clean(&official, "target/deploy-rendered/official-memcached.yaml");
    let shard = shards(&official);
    let c = shard.containers().first().expect("a shard container");
    assert!(c["image"].as_str().is_some_and(|i| i.starts_with("memcached:")), "overlay image: {:?}", c["image"]);
    assert_eq!(shard_container_argv(&official)[..3], ["memcached", "-p", "11211"]);
    assert_eq!(c["securityContext"]["runAsUser"].as_i64(), Some(11211));
}

/// Whether the proxy Deployment's pod template is free of anything derived
/// from the pool file (a checksum annotation), which would roll the proxies
/// on each change the hot reload applies in place.
fn no_roll_on_pool_change(m: &Manifests) -> bool {
    let proxy = m.get("Deployment", "memcache-proxy").expect("Deployment/memcache-proxy");
    proxy["spec"]["template"]["metadata"]["annotations"]["checksum/config"].is_badvalue()
}

#[test]
fn helm_renders_hold_every_invariant() {
    // Default: the proxies discover the shards, so the shard count is not in
    // the pool file and a scale-out changes nothing the proxies mount.
    let Some((three, text)) = rendered("helm-default.yaml") else { return };
    assert_clean(&three, "target/deploy-rendered/helm-default.yaml");
    assert_eq!(kinds(&three), [2, 1, 3, 3, 3, 1]);
    assert_eq!(shards(&three).doc["spec"]["replicas"].as_i64(), Some(3));
    let srv = "      discovery: dnssrv+_memcache._tcp.memcache.default.svc.cluster.local.\n";
    assert!(text.contains(srv), "helm-default.yaml discovers no {srv:?}");
    assert!(no_roll_on_pool_change(&three));
    let Some((five, five_text)) = rendered("helm-5-shards.yaml") else { return };
    assert_clean(&five, "target/deploy-rendered/helm-5-shards.yaml");
    assert_eq!(shards(&five).doc["spec"]["replicas"].as_i64(), Some(5));
    let pool_file =
        |t: &str| t.split("nutcracker.yml: |").nth(1).and_then(|r| r.split("---").next()).map(str::to_owned);
    assert_eq!(pool_file(&text), pool_file(&five_text), "scaling the shards leaves the pool file as it is");
    let one_copy = pool_file(&text).unwrap_or_default();

    // A static list follows shards.replicas, and the checker sees a mismatch.
    let Some((static3, text)) = rendered("helm-static.yaml") else { return };
    assert_clean(&static3, "target/deploy-rendered/helm-static.yaml");
    let line = "       - sharded-memcache-2.memcache:11211:1\n";
    assert!(text.contains(line), "helm-static.yaml lists no {line:?}");
    let found = problems(&Manifests::from_rendered(&text.replace(line, ""), "helm-static.yaml without shard 2"));
    assert!(found.iter().any(|p| p.contains("are not the StatefulSet's pods")), "reported: {found:?}");
    let Some((static5, text)) = rendered("helm-static-5-shards.yaml") else { return };
    assert_clean(&static5, "target/deploy-rendered/helm-static-5-shards.yaml");
    assert!(text.contains("       - sharded-memcache-4.memcache:11211:1\n"));
    assert!(no_roll_on_pool_change(&static5));

    // Two copies of each key: the pool file says so, and loads.
    let Some((copies, text)) = rendered("helm-key-replicas-2.yaml") else { return };
    assert_clean(&copies, "target/deploy-rendered/helm-key-replicas-2.yaml");
    let file = pool_file(&text).expect("a pool file");
    let yaml: String = file.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    let config = memshard_config::Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(config.pools[0].1.extensions.replicas, 2);
    assert!(!one_copy.contains("replicas:"), "one copy of each key: the file twemproxy reads, no extension key");
}
