//! The Kubernetes deployment (`deploy/`) holds the invariants the system
//! relies on: the proxy's pool file lists exactly the StatefulSet's pod
//! names, every Service selects the pods it is meant for, ports agree from
//! the app's `--cache` down to the shards' `-p`, NetworkPolicies let exactly
//! web -> proxy -> shards through, every container is probed, bounded
//! and locked down, and shards with a memory file (`-e`) restart warm: the
//! file on a claim of their own, time to save it, a readiness that waits
//! for its load and a rollout that waits for readiness.
//!
//! The kustomize base is read from its files. The renders of the base, the
//! overlay and the Helm chart are made by the tests themselves with the
//! kubectl and helm that `bash deploy/validate.sh` installs
//! (target/deploy-tools); without them those tests say SKIPPED, and fail
//! under `MEMSHARD_REQUIRE_PEERS=1` (CI) or `MEMSHARD_REQUIRE_RENDERED=1`.

mod deploy;

use deploy::{Manifests, Workload, bytes, checks, flag, kustomize_sources, repo_root, seq, system};
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
        "livenessProbe:\n            tcpSocket:\n              port: memcache",
        "livenessProbe:\n            tcpSocket:\n              port: mc",
        "livenessProbe port Some(\"mc\") is not a container port",
    ),
    (
        "shards.yaml",
        "/dev/tcp/127.0.0.1/11211 ",
        "/dev/tcp/127.0.0.1/11311 ",
        "readinessProbe exec port 11311 is not a container port",
    ),
    // Warm restarts: the memory file, its claim, the time to save it, and
    // a rollout that waits for the load.
    (
        "shards.yaml",
        "- -e\n            - /data/memory",
        "- -e\n            - /tmp/memory",
        "memory file /tmp/memory is on no volume",
    ),
    ("shards.yaml", "\n            - -e\n            - /data/memory", "", "volumeClaimTemplates without -e"),
    (
        "shards.yaml",
        "  volumeClaimTemplates:\n    - metadata:\n        name: data",
        "  volumeClaimTemplates:\n    - metadata:\n        name: cache",
        "memory file /data/memory is on volume data, not a PersistentVolumeClaim",
    ),
    ("shards.yaml", "mountPath: /data", "mountPath: /data\n              readOnly: true", "mounted read-only"),
    ("shards.yaml", "storage: 1Gi", "storage: 256Mi", "below 1.25 x -m 256 + 64Mi"),
    (
        "shards.yaml",
        "terminationGracePeriodSeconds: 40",
        "terminationGracePeriodSeconds: 35",
        "terminationGracePeriodSeconds 35 < 40",
    ),
    ("shards.yaml", "minReadySeconds: 10", "minReadySeconds: 0", "minReadySeconds 0 < 10"),
    ("shards.yaml", "whenScaled: Delete", "whenScaled: Retain", "whenScaled is not Delete"),
    ("shards.yaml", "whenDeleted: Delete", "whenDeleted: Retain", "whenDeleted is not Delete"),
    ("shards.yaml", "        fsGroup: 10001\n", "", "no fsGroup"),
    (
        "shards.yaml",
        "updateStrategy:\n    type: RollingUpdate",
        "updateStrategy:\n    type: OnDelete",
        "not a RollingUpdate",
    ),
    (
        "shards.yaml",
        "readinessProbe:\n            exec:\n              command:\n                - /bin/bash\n                - -c\n                \
         - exec 3<>/dev/tcp/127.0.0.1/11211 && printf 'version\\r\\n' >&3 && IFS= read -r -t 2 line <&3 && [[ $line == VERSION* ]]",
        "readinessProbe:\n            tcpSocket:\n              port: memcache",
        "readinessProbe needs no answer",
    ),
    (
        "shards.yaml",
        "livenessProbe:\n            tcpSocket:\n              port: memcache",
        "livenessProbe:\n            exec:\n              command: [/bin/bash, -c, exec 3<>/dev/tcp/127.0.0.1/11211]",
        "livenessProbe needs an answer",
    ),
    (
        "shards.yaml",
        "spec:\n  maxUnavailable: 1",
        "spec:\n  maxUnavailable: 2",
        "PodDisruptionBudget/sharded-memcache: maxUnavailable is not 1",
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

/// The shards' pod spec and first container.
fn shard_pod(m: &Manifests) -> (&yaml_rust2::Yaml, &yaml_rust2::Yaml) {
    let set = shards(m);
    (set.pod_spec(), set.containers().first().expect("a shard container"))
}

/// Every shard flag of the seed, then the memory file on the claim `data`.
#[test]
fn base_shards_restart_warm() {
    let files = kustomize_sources(&base_dir());
    let m = Manifests::from_kustomize(&files);
    let set = shards(&m);
    assert_eq!(
        shard_container_argv(&m),
        ["server", "-p", "11211", "-m", "256", "-c", "1024", "-t", "2", "-e", "/data/memory"]
    );
    assert_warm(&m, 256, 40);
    assert_eq!(
        set.doc["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"].as_str(),
        Some("1Gi")
    );
    assert!(set.doc["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"].is_badvalue(), "the default class");
    // The pool file says how long the proxies wait for a restarting shard.
    let pool_file = &files["nutcracker.yml"];
    assert!(pool_file.contains("\n  server_restart_timeout: 30000\n"), "{pool_file}");
    let config = Config::from_yaml(pool_file).expect("nutcracker.yml loads");
    let pool = config.pool("memcached").expect("a pool named memcached");
    assert_eq!(pool.extensions.server_restart_timeout, Duration::from_secs(30));
    assert_eq!(pool.extensions.replicas, 1, "a replicated pool would ignore the goodbye");
}

/// A warm-restarting shard set as rendered: `-e` on the claim `data` at
/// /data, the grace period `grace` (at least the drain and the save of
/// `memory_mb`), minReadySeconds 10, one shard down at a time, ready only
/// once it answers, and claims deleted with their shard.
fn assert_warm(m: &Manifests, memory_mb: u64, grace: i64) {
    let set = shards(m);
    let spec = &set.doc["spec"];
    let (pod, c) = shard_pod(m);
    let argv = shard_container_argv(m);
    assert_eq!(flag(&argv, "-e", "--memory-file").as_deref(), Some("/data/memory"), "{argv:?}");
    assert_eq!(flag(&argv, "-m", "--memory-limit"), Some(memory_mb.to_string()), "{argv:?}");
    let claims = seq(&spec["volumeClaimTemplates"]);
    assert_eq!(claims.len(), 1, "one claim per shard");
    assert_eq!(claims[0]["metadata"]["name"].as_str(), Some("data"));
    assert_eq!(claims[0]["spec"]["accessModes"][0].as_str(), Some("ReadWriteOnce"));
    let size = bytes(&claims[0]["spec"]["resources"]["requests"]["storage"]).expect("a storage request");
    assert!(size >= system::shard_volume_floor(memory_mb), "{size} bytes for -m {memory_mb}");
    let mounts = seq(&c["volumeMounts"]);
    assert_eq!(
        (mounts.len(), mounts[0]["name"].as_str(), mounts[0]["mountPath"].as_str()),
        (1, Some("data"), Some("/data"))
    );
    assert!(seq(&pod["volumes"]).is_empty(), "no pod volume shadows the claim");
    assert_eq!(pod["securityContext"]["fsGroup"].as_i64(), Some(10001));
    assert_eq!(pod["terminationGracePeriodSeconds"].as_i64(), Some(grace));
    assert!(grace >= system::shard_grace_floor(memory_mb), "grace {grace} s for -m {memory_mb}");
    assert!(grace > checks::DRAIN_SECONDS, "the save comes after the drain");
    assert_eq!(spec["minReadySeconds"].as_i64(), Some(10));
    assert_eq!(spec["updateStrategy"]["type"].as_str(), Some("RollingUpdate"));
    assert_eq!(spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"].as_str(), Some("Delete"));
    assert_eq!(spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"].as_str(), Some("Delete"));
    let pdb = m.get("PodDisruptionBudget", "sharded-memcache").expect("PodDisruptionBudget/sharded-memcache");
    assert_eq!(pdb["spec"]["maxUnavailable"].as_i64(), Some(1));
    // Ready only on an answer to `version`; alive as soon as the port is bound.
    let ready = seq(&c["readinessProbe"]["exec"]["command"]).iter().filter_map(|a| a.as_str()).collect::<Vec<_>>();
    assert_eq!(ready[..2], ["/bin/bash", "-c"]);
    assert!(ready[2].contains("/dev/tcp/127.0.0.1/11211") && ready[2].contains("VERSION"), "{ready:?}");
    assert_eq!(c["livenessProbe"]["tcpSocket"]["port"].as_str(), Some("memcache"));
}

/// Shards without a memory file: no claim, no mount, no -e, the grace
/// period of a drain.
fn assert_volatile(m: &Manifests, what: &str) {
    let set = shards(m);
    let (pod, c) = shard_pod(m);
    let argv = shard_container_argv(m);
    assert_eq!(flag(&argv, "-e", "--memory-file"), None, "{what}: {argv:?}");
    assert!(set.doc["spec"]["volumeClaimTemplates"].is_badvalue(), "{what}: no claim");
    assert!(set.doc["spec"]["persistentVolumeClaimRetentionPolicy"].is_badvalue(), "{what}");
    assert!(c["volumeMounts"].is_badvalue() && pod["volumes"].is_badvalue(), "{what}: no volume");
    assert!(pod["securityContext"].is_badvalue(), "{what}: no fsGroup");
    assert_eq!(pod["terminationGracePeriodSeconds"].as_i64(), Some(30), "{what}");
}

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

/// kubectl and helm, or None, said loudly, when they are not installed —
/// and a failure under `MEMSHARD_REQUIRE_PEERS=1` or `MEMSHARD_REQUIRE_RENDERED=1`.
#[allow(clippy::print_stderr)]
fn required_tools(what: &str) -> Option<(PathBuf, PathBuf)> {
    let found = tools();
    if found.is_none() {
        let required = ["MEMSHARD_REQUIRE_PEERS", "MEMSHARD_REQUIRE_RENDERED"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| v == "1"));
        assert!(!required, "kubectl and helm are not installed: `bash deploy/validate.sh` installs them");
        eprintln!("SKIPPED: {what}: kubectl and helm are not installed (`bash deploy/validate.sh` installs them)");
    }
    found
}

/// Runs `bin args` at the repository root, helm's state kept under target/deploy-tools.
fn run(bin: &Path, args: &[&str]) -> std::process::Output {
    let home = repo_root().join("target/deploy-tools/helm-home");
    std::process::Command::new(bin)
        .args(args)
        .current_dir(repo_root())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("{} {args:?}: {e}", bin.display()))
}

/// Renders `name` now, as deploy/validate.sh does: the kustomize base or
/// an overlay, or the Helm chart with default or other values. None when
/// kubectl and helm are not installed (see [`required_tools`]).
fn rendered(name: &str) -> Option<(Manifests, String)> {
    let (kubectl, helm) = required_tools(name)?;
    let chart = "deploy/helm/memshard";
    let (bin, args): (&Path, Vec<&str>) = match name {
        "base.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/base"]),
        "official-memcached.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/official-memcached"]),
        "discovery.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/discovery"]),
        "ephemeral.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/ephemeral"]),
        "helm-default.yaml" => (&helm, vec!["template", "memshard", chart]),
        "helm-5-shards.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "shards.replicas=5"]),
        "helm-static.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "proxy.shardDiscovery=static"]),
        "helm-static-5-shards.yaml" => {
            (&helm, vec!["template", "memshard", chart, "--set", "proxy.shardDiscovery=static,shards.replicas=5"])
        }
        "helm-key-replicas-2.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "proxy.pool.keyReplicas=2"]),
        "helm-no-persistence.yaml" => {
            (&helm, vec!["template", "memshard", chart, "--set", "persistence.enabled=false"])
        }
        "helm-persistence-4gib.yaml" => (
            &helm,
            vec![
                "template",
                "memshard",
                chart,
                "--set",
                "shards.memoryMB=4096,persistence.size=6Gi,persistence.storageClass=fast-ssd",
            ],
        ),
        other => panic!("no way to render {other}"),
    };
    let out = run(bin, &args);
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
    assert_warm(&base, 256, 40);

    // The discovery overlay: the same system, the pool file discovers the shards.
    let Some((discovery, text)) = rendered("discovery.yaml") else { return };
    assert_clean(&discovery, "target/deploy-rendered/discovery.yaml");
    assert!(text.contains("discovery: dnssrv+_memcache._tcp.memcache\n"), "{text}");
    assert!(!text.contains("sharded-memcache-0.memcache:11211:1"), "no static list beside discovery");
    assert!(text.contains("\n      server_restart_timeout: 30000\n"), "{text}");
    assert_warm(&discovery, 256, 40);
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
    // memcached keeps no memory file here, and its image has no bash.
    assert_volatile(&official, "official-memcached.yaml");
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"].as_str(), Some("memcache"));
    assert!(c["readinessProbe"]["exec"].is_badvalue());

    // Without volumes: the seed's flags without -e, still ready only on an answer.
    let Some((ephemeral, _)) = rendered("ephemeral.yaml") else { return };
    assert_clean(&ephemeral, "target/deploy-rendered/ephemeral.yaml");
    assert_eq!(kinds(&ephemeral), [2, 1, 3, 3, 3, 1]);
    assert_volatile(&ephemeral, "ephemeral.yaml");
    assert_eq!(shard_container_argv(&ephemeral), ["server", "-p", "11211", "-m", "256", "-c", "1024", "-t", "2"]);
    assert!(!shard_pod(&ephemeral).1["readinessProbe"]["exec"].is_badvalue());
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
    // Persistence is on by default: warm restarts, and the proxies told to wait.
    assert_warm(&three, 256, 40);
    assert_eq!(shard_container_argv(&three)[..9], ["server", "-p", "11211", "-m", "256", "-c", "1024", "-t", "2"]);
    let restart = pool_config(&text).pools[0].1.extensions.server_restart_timeout;
    assert!(text.contains("      server_restart_timeout: 30000\n"), "the pool file shows the wait");
    assert_eq!(restart, Duration::from_secs(30));
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
    let config = pool_config(&text);
    assert_eq!(config.pools[0].1.extensions.replicas, 2);
    assert!(!one_copy.contains(" replicas:"), "one copy of each key: no replicas key");
    // A replicated pool ignores goodbyes: the file does not pretend otherwise.
    assert!(!text.contains("server_restart_timeout"), "{text}");
    assert_warm(&copies, 256, 40);
}

/// The pool file of a rendered chart, loaded.
fn pool_config(text: &str) -> Config {
    let file = text.split("nutcracker.yml: |").nth(1).and_then(|r| r.split("---").next()).expect("a pool file");
    let yaml: String = file.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[test]
fn helm_persistence_on_off_and_sized_from_memory() {
    // Off: no claim, no -e, no wait in the pool file; every other flag kept.
    let Some((off, text)) = rendered("helm-no-persistence.yaml") else { return };
    assert_clean(&off, "target/deploy-rendered/helm-no-persistence.yaml");
    assert_eq!(kinds(&off), [2, 1, 3, 3, 3, 1]);
    assert_volatile(&off, "helm-no-persistence.yaml");
    assert_eq!(shard_container_argv(&off), ["server", "-p", "11211", "-m", "256", "-c", "1024", "-t", "2"]);
    assert!(!text.contains("server_restart_timeout"), "no shard says goodbye without -e");
    assert_eq!(pool_config(&text).pools[0].1.extensions.server_restart_timeout, Duration::from_secs(30));

    // 4 GiB shards: the grace period grows with -m (30 s + 10 s per GiB),
    // the claim is the size and class asked for.
    let Some((big, _)) = rendered("helm-persistence-4gib.yaml") else { return };
    assert_clean(&big, "target/deploy-rendered/helm-persistence-4gib.yaml");
    assert_eq!(system::shard_grace_floor(4096), 70);
    assert_warm(&big, 4096, 70);
    let claim = &shards(&big).doc["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["storageClassName"].as_str(), Some("fast-ssd"));
    assert_eq!(claim["resources"]["requests"]["storage"].as_str(), Some("6Gi"));
    let (_, c) = shard_pod(&big);
    assert_eq!(bytes(&c["resources"]["requests"]["memory"]), Some(((4096 * 6_u64).div_ceil(5) + 100) << 20));
}

/// The chart refuses a volume too small for the memory file and a grace
/// period shorter than its save, and says why; the same values with room
/// for the file, or without persistence, render.
#[test]
fn helm_refuses_a_volume_or_grace_period_too_small() {
    let Some((_, helm)) = required_tools("helm refusals") else { return };
    let chart = "deploy/helm/memshard";
    let cases: [(&str, Option<&str>); 6] = [
        ("shards.memoryMB=4096", Some("persistence.size 1Gi is below 5184Mi")),
        ("shards.memoryMB=4096,persistence.size=5Gi", Some("persistence.size 5Gi is below 5184Mi")),
        ("shards.memoryMB=4096,persistence.size=5184Mi", None),
        ("shards.terminationGracePeriodSeconds=39", Some("shards.terminationGracePeriodSeconds (39) is below 40")),
        ("shards.terminationGracePeriodSeconds=40", None),
        ("persistence.enabled=false,shards.memoryMB=4096,shards.terminationGracePeriodSeconds=20", None),
    ];
    for (values, refusal) in cases {
        let out = run(&helm, &["template", "memshard", chart, "--set", values]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match refusal {
            Some(why) => {
                assert!(!out.status.success() && stderr.contains(why), "--set {values}: want {why:?}, got {stderr}")
            }
            None => assert!(out.status.success(), "--set {values}: {stderr}"),
        }
    }
    // The explicit grace period is used as given.
    let out = run(&helm, &["template", "memshard", chart, "--set", "shards.terminationGracePeriodSeconds=90"]);
    let m = Manifests::from_rendered(&String::from_utf8_lossy(&out.stdout), "grace 90");
    assert_eq!(shard_pod(&m).0["terminationGracePeriodSeconds"].as_i64(), Some(90));
}
