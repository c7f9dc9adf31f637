//! The Kubernetes deployment (`deploy/`) holds the invariants the system
//! relies on: the proxy's pool file lists exactly the StatefulSet's pod
//! names, every Service selects the pods it is meant for, ports agree from
//! the app's `--cache` down to the shards' `-p`, NetworkPolicies let exactly
//! web -> proxy -> shards through, every container is probed, bounded
//! and locked down, and shards with a memory file (`-e`) restart warm: the
//! file on a claim of their own, time to save it, a readiness that waits
//! for its load and a rollout that waits for readiness. The proxies and
//! the shards serve their admin port (`--admin`): a named container port,
//! exposed by their Service, scraped by annotation or ServiceMonitor, probed
//! on /healthz and /readyz; the PrometheusRule's alerts and the Grafana
//! dashboard name only metrics the tier exports. With TLS on (the chart's
//! `tls.*`, the kustomize component `components/tls`), the shards' flags
//! (with `--tls-watch`: they reload renewed files by themselves),
//! the proxy's pool keys and the app's flags agree, every certificate file
//! is a key of a Secret mounted read-only, the probes stay on the plain
//! admin ports, and cert-manager Certificates name every shard.
//!
//! The kustomize base is read from its files. The renders of the base, the
//! overlay and the Helm chart are made by the tests themselves with the
//! kubectl and helm that `bash deploy/validate.sh` installs
//! (target/deploy-tools); without them those tests say SKIPPED, and fail
//! under `MEMSHARD_REQUIRE_PEERS=1` (CI) or `MEMSHARD_REQUIRE_RENDERED=1`.

mod deploy;

use deploy::{
    Manifests, Workload, bytes, checks, flag, kustomize_sources, labels, observability, repo_root, seq, strings,
    system, tls,
};
use memshard_config::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;
use yaml_rust2::Yaml;

fn base_dir() -> PathBuf {
    repo_root().join("deploy/k8s/base")
}

fn problems(m: &Manifests) -> Vec<String> {
    let mut p = checks::generic(m);
    p.extend(system::system(m));
    p.extend(observability::admin(m));
    p.extend(observability::monitoring(m));
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
        "livenessProbe:\n            httpGet:\n              path: /healthz\n              port: admin",
        "livenessProbe:\n            httpGet:\n              path: /healthz\n              port: adm",
        "livenessProbe port Some(\"adm\") is not a container port",
    ),
    // The admin port: the flag, the container port, the Service, the
    // annotations, the probes and the policy agree.
    (
        "proxy.yaml",
        "- --admin\n            - 0.0.0.0:9151",
        "- --admin\n            - 0.0.0.0:9152",
        "--admin port 9152 is not its container port named admin",
    ),
    (
        "shards.yaml",
        "- --admin\n            - 0.0.0.0:9150",
        "- --admin\n            - 127.0.0.1:9150",
        "does not listen on the pod's address",
    ),
    (
        "shards.yaml",
        "\n            - --admin\n            - 0.0.0.0:9150",
        "",
        "a container port named admin, but no --admin",
    ),
    (
        "proxy.yaml",
        "prometheus.io/port: \"9151\"",
        "prometheus.io/port: \"9150\"",
        "prometheus.io/port is Some(\"9150\"), want \"9151\"",
    ),
    (
        "shards.yaml",
        "prometheus.io/path: /metrics",
        "prometheus.io/path: /stats",
        "prometheus.io/path is Some(\"/stats\")",
    ),
    (
        "proxy.yaml",
        "readinessProbe:\n            httpGet:\n              path: /readyz",
        "readinessProbe:\n            httpGet:\n              path: /healthz",
        "container proxy: readinessProbe is not GET /readyz on the admin port 9151",
    ),
    (
        "proxy.yaml",
        "    - name: admin\n      port: 9151\n      targetPort: admin\n",
        "    - name: admin\n      port: 9151\n      targetPort: stats\n",
        "Deployment/memcache-proxy: no Service has a port named admin (9151)",
    ),
    (
        "shards.yaml",
        "    - name: admin\n      port: 9150\n      targetPort: admin\n      protocol: TCP\n",
        "",
        "StatefulSet/sharded-memcache: no Service has a port named admin (9150)",
    ),
    (
        "proxy.yaml",
        "    - ports:\n        - protocol: TCP\n          port: 9151",
        "    - ports:\n        - protocol: TCP\n          port: 9152",
        "anyone -> proxy admin port 9151/TCP is blocked",
    ),
    (
        "shards.yaml",
        "    - ports:\n        - protocol: TCP\n          port: 9150",
        "    - from:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/component: proxy\n      ports:\n        - protocol: TCP\n          port: 9150",
        "anyone -> shards admin port 9150/TCP is blocked",
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
        "readinessProbe:\n            httpGet:\n              path: /readyz\n              port: admin",
        "readinessProbe:\n            tcpSocket:\n              port: memcache",
        "readinessProbe needs no answer",
    ),
    (
        "shards.yaml",
        "          startupProbe:\n            httpGet:\n              path: /healthz\n              port: admin\n            \
         periodSeconds: 5\n            timeoutSeconds: 3\n            failureThreshold: 14\n",
        "",
        "livenessProbe needs an answer",
    ),
    ("shards.yaml", "failureThreshold: 14", "failureThreshold: 13", "startupProbe allows 65 s, below 70 s"),
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
        [
            "server",
            "-p",
            "11211",
            "-m",
            "256",
            "-c",
            "1024",
            "-t",
            "2",
            "-e",
            "/data/memory",
            "--admin",
            "0.0.0.0:9150"
        ]
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
    if flag(&argv, "--admin", "--admin").is_some() {
        // The admin port serves once the file is loaded: ready on /readyz,
        // alive on /healthz after a startup probe that waits for the load.
        assert_eq!(c["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
        assert_eq!(c["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
        let startup = &c["startupProbe"];
        assert_eq!(
            (startup["httpGet"]["path"].as_str(), startup["httpGet"]["port"].as_str()),
            (Some("/healthz"), Some("admin"))
        );
        let budget = startup["periodSeconds"].as_i64().unwrap_or(0) * startup["failureThreshold"].as_i64().unwrap_or(0);
        assert!(budget >= system::shard_startup_floor(memory_mb), "startup {budget} s for -m {memory_mb}");
    } else {
        // Ready only on an answer to `version`; alive as soon as the port is bound.
        let ready = seq(&c["readinessProbe"]["exec"]["command"]).iter().filter_map(|a| a.as_str()).collect::<Vec<_>>();
        assert_eq!(ready[..2], ["/bin/bash", "-c"]);
        assert!(ready[2].contains("/dev/tcp/127.0.0.1/11211") && ready[2].contains("VERSION"), "{ready:?}");
        assert_eq!(c["livenessProbe"]["tcpSocket"]["port"].as_str(), Some("memcache"));
    }
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
        "monitoring.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/monitoring"]),
        "tls.yaml" => (&kubectl, vec!["kustomize", "deploy/k8s/overlays/tls"]),
        "helm-tls-shards.yaml" => (&helm, vec!["template", "memshard", chart, "--set", TLS_SHARDS_SECRETS]),
        "helm-tls-proxy.yaml" => (&helm, vec!["template", "memshard", chart, "--set", TLS_PROXY_SECRETS]),
        "helm-tls-cert-manager-shards.yaml" => {
            (&helm, vec!["template", "memshard", chart, "--set", TLS_CERT_MANAGER_SHARDS])
        }
        "helm-tls-cert-manager-proxy.yaml" => {
            (&helm, vec!["template", "memshard", chart, "--set", TLS_CERT_MANAGER_PROXY])
        }
        "helm-tls-cert-manager.yaml" => (&helm, vec!["template", "memshard", chart, "--set", TLS_CERT_MANAGER_ALL]),
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
        "helm-no-admin.yaml" => (&helm, vec!["template", "memshard", chart, "--set", "admin.enabled=false"]),
        "helm-monitoring.yaml" => (&helm, vec!["template", "memshard", chart, "--set", MONITORING_ON]),
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
    assert_eq!(
        shard_container_argv(&ephemeral),
        ["server", "-p", "11211", "-m", "256", "-c", "1024", "-t", "2", "--admin", "0.0.0.0:9150"]
    );
    assert_eq!(shard_pod(&ephemeral).1["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(observability::admin_port(&ephemeral, "server"), Some(9150));

    // With the monitoring component: the same system, watched.
    let Some((watched, _)) = rendered("monitoring.yaml") else { return };
    assert_clean(&watched, "target/deploy-rendered/monitoring.yaml");
    assert_eq!(kinds(&watched), [2, 1, 3, 3, 3, 1]);
    assert_eq!((watched.of_kind("ServiceMonitor").count(), watched.of_kind("PrometheusRule").count()), (3, 1));

    // The official memcached has no admin port: memcached_exporter takes
    // its place on 9150, where the Service and the annotations look.
    let exporter =
        shards(&official).containers().iter().find(|c| c["name"].as_str() == Some("exporter")).expect("an exporter");
    assert!(exporter["image"].as_str().is_some_and(|i| i.contains("memcached-exporter:v")), "{:?}", exporter["image"]);
    assert_eq!(shards(&official).resolve_port(&Yaml::String("admin".to_owned())), Some(9150));
    assert_eq!(observability::admin_port(&official, "server"), None);
    assert_eq!(observability::admin_port(&official, "proxy"), Some(9151));
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
    assert_eq!(
        shard_container_argv(&off),
        ["server", "-p", "11211", "-m", "256", "-c", "1024", "-t", "2", "--admin", "0.0.0.0:9150"]
    );
    // Nothing to load: the startup probe's minute is enough.
    assert_eq!(shard_pod(&off).1["startupProbe"]["failureThreshold"].as_i64(), Some(12));
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
    let cases: [(&str, Option<&str>); 9] = [
        ("shards.memoryMB=4096", Some("persistence.size 1Gi is below 5184Mi")),
        ("shards.memoryMB=4096,persistence.size=5Gi", Some("persistence.size 5Gi is below 5184Mi")),
        ("shards.memoryMB=4096,persistence.size=5184Mi", None),
        ("shards.terminationGracePeriodSeconds=39", Some("shards.terminationGracePeriodSeconds (39) is below 40")),
        ("shards.terminationGracePeriodSeconds=40", None),
        ("persistence.enabled=false,shards.memoryMB=4096,shards.terminationGracePeriodSeconds=20", None),
        // An admin port on a port the pod already listens on.
        ("proxy.admin.port=22222", Some("proxy.admin.port 22222 is the proxy's memcache or stats port")),
        ("shards.admin.port=11211", Some("shards.admin.port 11211 is the shards' memcache port")),
        ("admin.enabled=false,shards.admin.port=11211", None),
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

/// `helm template --set` turning on every monitoring object.
const MONITORING_ON: &str = "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.grafanaDashboard.enabled=true";

/// The dashboard the chart ships (dashboards/memshard.json).
fn chart_dashboard() -> String {
    let path = repo_root().join("deploy/helm/memshard/dashboards/memshard.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn promql_names_are_read_as_prometheus_reads_them() {
    let names = |e: &str| observability::metric_names(e).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        names(
            "sum by (pool, server) (rate(a_total{x=\"y\", le=~\"(b|c)\"}[5m] offset 1h)) / on (pool) group_left (kind) sum(b) > bool 0.5 and c or vector(0)"
        ),
        ["a_total", "b", "c"]
    );
    assert_eq!(names("histogram_quantile(0.99, sum by (server, le) (rate(h_bucket[$__rate_interval])))"), ["h_bucket"]);
    assert_eq!(names("label_values(m{namespace=~\"$namespace\"}, pool)"), ["m"]);
    assert_eq!(names("label_values(pool)"), Vec::<String>::new());
    assert_eq!(names("count(x == 1) or vector(0)"), ["x"]);
    assert_eq!(names("-sum(rate(y[1m:10s])) * 1e-3 + max without (pod) (z)"), ["y", "z"]);
    assert_eq!(names("up{pod=~\"sharded-memcache-[0-9]+\"} == 0 unless ignoring(job) w"), ["up", "w"]);
    assert_eq!(names("sum(rate(q[5m])) by (namespace)"), ["q"]);
    assert!(observability::metric_names("{__name__=\"x\"}").is_err());
    assert!(observability::metric_names("rate(x{a=\"b}[5m])").is_err());
    // The allow-list: the names the tier exports, nothing near them.
    assert!(observability::known_metric("memshard_proxy_server_latency_seconds_bucket"));
    assert!(observability::known_metric("memcached_items_evicted_total"));
    assert!(!observability::known_metric("memshard_proxy_server_latency_seconds"));
    assert!(!observability::known_metric("memshard_proxy_server_ejected_total"));
    let p = observability::expr_problems("x", "sum(rate(memcached_get_hits_total[5m]))");
    assert!(p.iter().any(|p| p.contains("unknown metric memcached_get_hits_total")), "{p:?}");
    assert!(!observability::expr_problems("x", "vector(1)").is_empty(), "an expression over no metric");
}

/// The Grafana dashboard: one file (the chart's, and deploy/grafana's
/// copy), a dashboard model over the tier's metrics only, with the panels
/// the tier is read by.
#[test]
fn grafana_dashboard_is_one_model_over_known_metrics() {
    let text = chart_dashboard();
    let copy = repo_root().join("deploy/grafana/memshard.json");
    assert!(
        std::fs::read_to_string(&copy).is_ok_and(|c| c == text),
        "{} differs from deploy/helm/memshard/dashboards/memshard.json: edit the chart's and copy it over",
        copy.display()
    );
    let d: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let problems = observability::dashboard(&d);
    assert!(problems.is_empty(), "memshard.json:\n  {}", problems.join("\n  "));
    let exprs = observability::dashboard_exprs(&d).join("\n");
    for want in [
        "sum by (server) (rate(memshard_proxy_server_requests_total{",
        "sum by (server) (rate(memshard_proxy_server_get_hits_total{",
        "sum by (server) (rate(memshard_proxy_server_get_misses_total{",
        "histogram_quantile(0.99, sum by (server, le) (rate(memshard_proxy_server_latency_seconds_bucket{",
        "max by (server) (memshard_proxy_server_ejected{",
        "sum by (kind) (rate(memshard_proxy_server_errors_total{",
        "memshard_proxy_server_ring_share{",
        "memshard_proxy_config_generation{",
        "memshard_proxy_config_reloads_total{",
        "memshard_proxy_hot_key_requests{",
        "memcached_current_items{",
        "memcached_current_bytes{",
        "memcached_limit_bytes{",
        "rate(memcached_items_evicted_total{",
    ] {
        assert!(exprs.contains(want), "no panel queries {want:?}");
    }
    let hot =
        d["panels"].as_array().and_then(|p| p.iter().find(|p| p["title"] == "Hot keys")).expect("a Hot keys panel");
    assert_eq!((hot["type"].as_str(), hot["targets"][0]["format"].as_str()), (Some("table"), Some("table")));
    // The checker sees an unknown metric, another datasource and overlapping panels.
    let unknown = text.replacen("memshard_proxy_server_ring_share{", "memshard_proxy_ring_share{", 1);
    let p = observability::dashboard(&serde_json::from_str(&unknown).expect("JSON"));
    assert!(p.iter().any(|p| p.contains("unknown metric memshard_proxy_ring_share")), "{p:?}");
    let mut other = d.clone();
    other["panels"][1]["datasource"]["uid"] = "prometheus".into();
    other["panels"][2]["gridPos"] = other["panels"][1]["gridPos"].clone();
    let p = observability::dashboard(&other);
    assert!(p.iter().any(|p| p.contains("datasource is not ${DS_PROMETHEUS}")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("overlaps panel")), "{p:?}");
}

/// The kustomize component's ServiceMonitors scrape the base's Services on
/// ports that reach the admin ports (and the app's), and its alerts are
/// checked like the chart's.
#[test]
fn kustomize_monitoring_component_watches_the_base() {
    let dir = repo_root().join("deploy/k8s/components/monitoring");
    let files = kustomize_sources(&dir);
    let mut m = Manifests::from_kustomize(&kustomize_sources(&base_dir()));
    m.docs.extend(Manifests::from_kustomize(&files).docs);
    assert_clean(&m, "deploy/k8s/base + deploy/k8s/components/monitoring");
    let monitors: Vec<(&str, &str)> = m
        .of_kind("ServiceMonitor")
        .filter_map(|s| Some((s["metadata"]["name"].as_str()?, s["spec"]["endpoints"][0]["port"].as_str()?)))
        .collect();
    assert_eq!(monitors, [("memcache-proxy", "admin"), ("memcache", "admin"), ("memshard-app", "http")]);
    let rule = m.get("PrometheusRule", "memshard").expect("PrometheusRule/memshard");
    assert_eq!(observability::alerts(rule).keys().collect::<Vec<_>>(), ALERTS);
    // The checker sees a port the Service lacks and a metric the tier lacks.
    let mut bad = files.clone();
    let sm = bad.get_mut("servicemonitors.yaml").expect("servicemonitors.yaml");
    *sm = sm.replacen("- port: admin", "- port: metrics", 1);
    let rules = bad.get_mut("prometheusrule.yaml").expect("prometheusrule.yaml");
    *rules = rules.replacen("memshard_proxy_forward_errors_total", "memshard_proxy_forward_error_total", 1);
    let mut m = Manifests::from_kustomize(&kustomize_sources(&base_dir()));
    m.docs.extend(Manifests::from_kustomize(&bad).docs);
    let found = problems(&m);
    for want in [
        "ServiceMonitor/memcache-proxy: endpoint port \"metrics\" is not a port of Service/memcache-proxy",
        "alert MemshardProxyForwardErrors: unknown metric memshard_proxy_forward_error_total",
    ] {
        assert!(found.iter().any(|p| p.contains(want)), "want {want:?}; reported:\n  {}", found.join("\n  "));
    }
}

/// The alerts, in the order the rule lists them.
const ALERTS: [&str; 7] = [
    "MemshardHitRatioDropped",
    "MemshardHitRatioLow",
    "MemshardProxyConfigReloadFailed",
    "MemshardProxyForwardErrors",
    "MemshardProxyServerErrors",
    "MemshardShardDown",
    "MemshardShardEjected",
];

/// The ports named admin of a rendered set: (Service, port).
fn admin_service_ports(m: &Manifests) -> Vec<(String, i64)> {
    m.of_kind("Service")
        .flat_map(|s| {
            let name = s["metadata"]["name"].as_str().unwrap_or("?").to_owned();
            seq(&s["spec"]["ports"])
                .iter()
                .filter(|p| p["name"].as_str() == Some("admin"))
                .filter_map(move |p| Some((name.clone(), p["port"].as_i64()?)))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn helm_admin_surface_on_and_off() {
    // On by default: both roles get --admin, a named port, a Service port,
    // scrape annotations and probes there; no monitoring object is made.
    let Some((on, text)) = rendered("helm-default.yaml") else { return };
    assert_eq!(
        (observability::admin_port(&on, "proxy"), observability::admin_port(&on, "server")),
        (Some(9151), Some(9150))
    );
    assert_eq!(admin_service_ports(&on), [("memcache-proxy".to_owned(), 9151), ("memcache".to_owned(), 9150)]);
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert_eq!(on.of_kind(kind).count(), 0, "{kind} without monitoring.*.enabled");
    }
    assert!(!text.contains("grafana_dashboard"), "no dashboard ConfigMap by default");
    let proxy = on.get("Deployment", "memcache-proxy").expect("the proxy Deployment");
    let c = &proxy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));

    // Off: the seed's probes, no admin port, no annotation on the proxies and shards.
    let Some((off, text)) = rendered("helm-no-admin.yaml") else { return };
    assert_clean(&off, "target/deploy-rendered/helm-no-admin.yaml");
    assert_eq!(kinds(&off), [2, 1, 3, 3, 3, 1]);
    assert!(!text.contains("--admin") && !text.contains("9150") && !text.contains("9151"), "{text}");
    assert!(admin_service_ports(&off).is_empty());
    let proxy = off.get("Deployment", "memcache-proxy").expect("the proxy Deployment");
    assert!(proxy["spec"]["template"]["metadata"]["annotations"].is_badvalue(), "no scrape annotation without admin");
    let c = &proxy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"].as_str(), Some("memcache"));
    assert_eq!(c["livenessProbe"]["tcpSocket"]["port"].as_str(), Some("memcache"));
    assert!(shard_pod(&off).1["startupProbe"].is_badvalue());
    assert!(shards(&off).doc["spec"]["template"]["metadata"]["annotations"].is_badvalue());
    assert_warm(&off, 256, 40);
    // The app keeps its own metrics annotations.
    let app = off.get("Deployment", "memshard-app").expect("the app Deployment");
    assert_eq!(
        labels(&app["spec"]["template"]["metadata"]["annotations"]).get("prometheus.io/port").map(String::as_str),
        Some("3000")
    );
    // The checker reads the exec probe's port.
    let wrong = text.replace("/dev/tcp/127.0.0.1/11211 ", "/dev/tcp/127.0.0.1/11311 ");
    let found = problems(&Manifests::from_rendered(&wrong, "helm-no-admin.yaml, another port"));
    assert!(found.iter().any(|p| p.contains("readinessProbe exec port 11311 is not a container port")), "{found:?}");

    // Restricted admin ports: the policy names its peers.
    let Some((_, helm)) = required_tools("helm adminFrom") else { return };
    let set = "networkPolicy.adminFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring";
    let out = run(&helm, &["template", "memshard", "deploy/helm/memshard", "--set", set]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = Manifests::from_rendered(&String::from_utf8_lossy(&out.stdout), "adminFrom");
    for (policy, port) in [("memcache-proxy", 9151), ("sharded-memcache", 9150)] {
        let np = m.get("NetworkPolicy", policy).expect("a NetworkPolicy");
        let rule = seq(&np["spec"]["ingress"])
            .iter()
            .find(|r| r["ports"][0]["port"].as_i64() == Some(port))
            .expect("an admin rule");
        let ns = &rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"];
        assert_eq!(ns.as_str(), Some("monitoring"), "{policy}");
    }
    // (The policy model counts a namespaceSelector peer as anyone outside
    // the release, so the flows still hold.)
    assert_clean(&m, "networkPolicy.adminFrom");
}

#[test]
fn helm_monitoring_objects_when_enabled() {
    let Some((m, _)) = rendered("helm-monitoring.yaml") else { return };
    assert_clean(&m, "target/deploy-rendered/helm-monitoring.yaml");
    assert_eq!(kinds(&m), [2, 1, 3, 3, 3, 2]);
    let monitors: Vec<(&str, &str, &str)> = m
        .of_kind("ServiceMonitor")
        .filter_map(|s| {
            let e = &s["spec"]["endpoints"][0];
            Some((s["metadata"]["name"].as_str()?, e["port"].as_str()?, e["interval"].as_str()?))
        })
        .collect();
    assert_eq!(
        monitors,
        [("memcache-proxy", "admin", "30s"), ("memcache", "admin", "30s"), ("memshard-app", "http", "30s")]
    );
    let rule = m.get("PrometheusRule", "memshard").expect("PrometheusRule/memshard");
    let alerts = observability::alerts(rule);
    assert_eq!(alerts.keys().collect::<Vec<_>>(), ALERTS);
    let ejected = &alerts["MemshardShardEjected"];
    assert!(ejected.contains("memshard_proxy_server_ejected{namespace=\"default\"}) == 1"), "{ejected}");
    assert!(alerts["MemshardProxyConfigReloadFailed"].contains("memshard_proxy_config_last_reload_success{"));
    assert!(alerts["MemshardShardDown"].contains("memcached_up{") && alerts["MemshardShardDown"].contains("up{"));
    assert!(alerts["MemshardHitRatioLow"].contains(") < 0.5\n"), "{}", alerts["MemshardHitRatioLow"]);
    assert!(alerts["MemshardHitRatioDropped"].contains("offset 1h"));
    let ejected_for = seq(&rule["spec"]["groups"][0]["rules"])
        .iter()
        .find(|r| r["alert"].as_str() == Some("MemshardShardEjected"))
        .and_then(|r| r["for"].as_str());
    assert_eq!(ejected_for, Some("1m"));
    // The kustomize component's rule is this one, without the namespace matchers.
    let component =
        Manifests::from_kustomize(&kustomize_sources(&repo_root().join("deploy/k8s/components/monitoring")));
    let theirs = observability::alerts(component.get("PrometheusRule", "memshard").expect("the component's rule"));
    let ours: std::collections::BTreeMap<String, String> = alerts
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("{namespace=\"default\"}", "").replace("namespace=\"default\", ", "")))
        .collect();
    assert_eq!(ours, theirs, "deploy/k8s/components/monitoring/prometheusrule.yaml has drifted from the chart's");
    // The dashboard ConfigMap holds the file as it is.
    let cm = m.get("ConfigMap", "memshard-grafana-dashboard").expect("the dashboard ConfigMap");
    assert_eq!(labels(&cm["metadata"]["labels"]).get("grafana_dashboard").map(String::as_str), Some("1"));
    assert_eq!(cm["data"]["memshard.json"].as_str().map(str::trim_end), Some(chart_dashboard().trim_end()));

    // Other values: labels and interval as given, a hit-ratio alert off,
    // and without the admin port only the app is scraped.
    let Some((_, helm)) = required_tools("helm monitoring values") else { return };
    let set = "monitoring.serviceMonitor.enabled=true,monitoring.serviceMonitor.interval=15s,\
               monitoring.serviceMonitor.labels.release=kps,monitoring.prometheusRule.enabled=true,\
               monitoring.prometheusRule.labels.release=kps,monitoring.prometheusRule.hitRatioMin=0,\
               monitoring.prometheusRule.alertLabels.team=cache,admin.enabled=false";
    let out = run(&helm, &["template", "memshard", "deploy/helm/memshard", "--set", set]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = Manifests::from_rendered(&String::from_utf8_lossy(&out.stdout), "monitoring values");
    assert_clean(&m, "monitoring values");
    let monitors: Vec<&Yaml> = m.of_kind("ServiceMonitor").collect();
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0]["metadata"]["name"].as_str(), Some("memshard-app"));
    assert_eq!(monitors[0]["spec"]["endpoints"][0]["interval"].as_str(), Some("15s"));
    assert_eq!(monitors[0]["metadata"]["labels"]["release"].as_str(), Some("kps"));
    let rule = m.get("PrometheusRule", "memshard").expect("PrometheusRule/memshard");
    assert_eq!(rule["metadata"]["labels"]["release"].as_str(), Some("kps"));
    assert!(!observability::alerts(rule).contains_key("MemshardHitRatioLow"));
    let teams = seq(&rule["spec"]["groups"][0]["rules"])
        .iter()
        .filter(|r| r["labels"]["team"].as_str() == Some("cache"))
        .count();
    assert_eq!(teams, ALERTS.len() - 1);
}

/// The selector names the real PromQL parser (deploy/validate.sh, PyPI
/// promql-parser) found in the dashboard and the rules are the ones this
/// test's reader finds, and all known. validate.sh writes them before it
/// runs these tests; without that file the test says SKIPPED.
#[test]
#[allow(clippy::print_stderr)]
fn promql_names_agree_with_a_parser() {
    let path = repo_root().join("target/deploy-rendered/promql-names.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        let required = std::env::var("MEMSHARD_REQUIRE_RENDERED").is_ok_and(|v| v == "1");
        assert!(!required, "{} is missing: `bash deploy/validate.sh` writes it", path.display());
        eprintln!("SKIPPED: {} is missing (`bash deploy/validate.sh` writes it)", path.display());
        return;
    };
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("promql-names.json is JSON");
    let entries = parsed.as_object().expect("an object: expression -> names");
    assert!(entries.len() > 30, "{} expressions only", entries.len());
    for (expr, names) in entries {
        let theirs: Vec<&str> = names.as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
        let ours = observability::metric_names(expr).unwrap_or_else(|e| panic!("{e}"));
        let (mut a, mut b) = (theirs.clone(), ours.iter().map(String::as_str).collect::<Vec<_>>());
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        assert_eq!(a, b, "{expr}");
        assert!(theirs.iter().all(|n| observability::known_metric(n)), "{expr}: {theirs:?}");
    }
}

// --- TLS on every hop -----------------------------------------------------

/// `helm template --set` for TLS, as deploy/validate.sh renders them: the
/// shards' hop (mutual) and the proxies' from named Secrets, each hop alone
/// from cert-manager, and every hop mutual from cert-manager with 5 shards
/// and a static list.
const TLS_SHARDS_SECRETS: &str = "tls.shards.enabled=true,tls.shards.secretName=shards-cert,\
     tls.shards.clientAuth.enabled=true,tls.shards.clientAuth.secretName=proxy-client-cert";
const TLS_PROXY_SECRETS: &str = "tls.proxy.enabled=true,tls.proxy.secretName=proxy-cert";
const TLS_CERT_MANAGER_SHARDS: &str = "tls.shards.enabled=true,tls.shards.serverName=memcache.default.svc,\
     tls.certManager.enabled=true,tls.certManager.issuerRef.name=memshard-ca,\
     tls.certManager.privateKey.algorithm=RSA,tls.certManager.privateKey.size=2048";
const TLS_CERT_MANAGER_PROXY: &str = "tls.proxy.enabled=true,tls.proxy.clientAuth.enabled=true,\
     tls.certManager.enabled=true,tls.certManager.issuerRef.name=memshard-ca,\
     tls.certManager.privateKey.algorithm=Ed25519";
const TLS_CERT_MANAGER_ALL: &str = "tls.proxy.enabled=true,tls.proxy.clientAuth.enabled=true,\
     tls.shards.enabled=true,tls.shards.clientAuth.enabled=true,\
     tls.certManager.enabled=true,tls.certManager.issuerRef.name=memshard-ca,\
     tls.certManager.issuerRef.kind=ClusterIssuer,shards.replicas=5,proxy.shardDiscovery=static";

/// The namespace and cluster domain `helm template` renders for.
const NAMESPACE: &str = "default";
const DOMAIN: &str = "cluster.local";

/// Every invariant (the pool file, TLS keys included, loaded by
/// memshard-config) and every TLS problem of a rendered stream.
fn tls_problems(text: &str, what: &str) -> Vec<String> {
    let m = Manifests::from_rendered(text, what);
    let mut p = problems(&m);
    p.extend(tls::problems(&m, NAMESPACE, DOMAIN));
    p
}

fn assert_tls_clean(text: &str, what: &str) -> Manifests {
    let p = tls_problems(text, what);
    assert!(p.is_empty(), "{what}:\n  {}", p.join("\n  "));
    Manifests::from_rendered(text, what)
}

/// The workload running `memshard <role>` and that container.
fn role<'a>(m: &'a Manifests, role: &str) -> (Workload<'a>, &'a Yaml) {
    m.workloads()
        .into_iter()
        .find_map(|w| Some((w, w.role_container(role)?)))
        .unwrap_or_else(|| panic!("no workload runs memshard {role}"))
}

/// The Secret key behind a file of a role's container.
fn secret_key(m: &Manifests, r: &str, path: &str) -> (String, String) {
    let (w, c) = role(m, r);
    let f = tls::secret_file(&w, c, path).unwrap_or_else(|e| panic!("{r}: {e}"));
    (f.secret, f.key)
}

fn pool_tls_keys(m: &Manifests) -> std::collections::BTreeMap<String, String> {
    let (w, c) = role(m, "proxy");
    let keys = tls::pool_keys(m, &w, c).expect("the proxy's pool file");
    keys.into_iter().filter(|(k, _)| tls::POOL_KEYS.contains(&k.as_str())).collect()
}

fn owned(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The probes of the proxies and the shards stay HTTP on their plain admin ports.
fn assert_probes_on_admin(m: &Manifests) {
    for (r, port) in [("proxy", 9151), ("server", 9150)] {
        let (w, c) = role(m, r);
        for probe in ["readinessProbe", "livenessProbe"] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["port"].as_str(), Some("admin"), "{r} {probe}");
            assert_eq!(w.resolve_port(&get["port"]), Some(port), "{r} {probe}");
        }
    }
    assert_eq!(role(m, "server").1["startupProbe"]["httpGet"]["port"].as_str(), Some("admin"));
    assert_eq!(role(m, "app").1["readinessProbe"]["httpGet"]["port"].as_str(), Some("http"));
}

/// Where the chart and the kustomize component put the files.
const SERVER_OPTIONS: &str = "ssl_chain_cert=/etc/memshard-tls/server/tls.crt,ssl_key=/etc/memshard-tls/server/tls.key";
const SERVER_MTLS_OPTIONS: &str = "ssl_chain_cert=/etc/memshard-tls/server/tls.crt,ssl_key=/etc/memshard-tls/server/tls.key,\
     ssl_ca_cert=/etc/memshard-tls/client-ca/ca.crt,ssl_verify_mode=2";

/// TLS is off unless asked for: no flag, no pool key, no mount, no
/// Certificate, in any render of the chart's defaults or of the overlays
/// without the TLS component; and the TLS checks find nothing there.
#[test]
fn tls_is_off_by_default() {
    for name in [
        "helm-default.yaml",
        "helm-no-admin.yaml",
        "helm-static.yaml",
        "helm-monitoring.yaml",
        "base.yaml",
        "official-memcached.yaml",
        "ephemeral.yaml",
    ] {
        let Some((m, text)) = rendered(name) else { return };
        for needle in ["memshard-tls", "- -Z", "ssl_", "tls_", "cache-tls", "cert-manager.io", "--tls-watch"] {
            assert!(!text.contains(needle), "{name} contains {needle:?}");
        }
        let p = tls::problems(&m, NAMESPACE, DOMAIN);
        assert!(p.is_empty(), "{name}:\n  {}", p.join("\n  "));
    }
}

/// Every render whose shards serve TLS runs `memshard server` with
/// `--tls-watch` right after `-Z -o ssl_*=...`, so the shards serve a
/// renewed Secret by themselves (no SIGHUP); no other render has the flag
/// (`memshard server` refuses `--tls-watch` without `-Z`, and memcached
/// has no such flag).
#[test]
fn shards_watch_their_certificates_exactly_when_they_serve_tls() {
    let with_tls =
        ["tls.yaml", "helm-tls-shards.yaml", "helm-tls-cert-manager-shards.yaml", "helm-tls-cert-manager.yaml"];
    let without = [
        "base.yaml",
        "official-memcached.yaml",
        "discovery.yaml",
        "ephemeral.yaml",
        "monitoring.yaml",
        "helm-default.yaml",
        "helm-5-shards.yaml",
        "helm-static.yaml",
        "helm-static-5-shards.yaml",
        "helm-key-replicas-2.yaml",
        "helm-no-persistence.yaml",
        "helm-persistence-4gib.yaml",
        "helm-no-admin.yaml",
        "helm-monitoring.yaml",
        "helm-tls-proxy.yaml",
        "helm-tls-cert-manager-proxy.yaml",
    ];
    for name in with_tls {
        let Some((m, _)) = rendered(name) else { return };
        let argv = shard_container_argv(&m);
        assert_eq!(argv.first().map(String::as_str), Some("server"), "{name}: {argv:?}");
        let z = argv.iter().position(|a| a == "-Z").unwrap_or_else(|| panic!("{name}: no -Z in {argv:?}"));
        assert_eq!(argv.get(z + 1).map(String::as_str), Some("-o"), "{name}: {argv:?}");
        assert!(argv.get(z + 2).is_some_and(|o| o.starts_with("ssl_chain_cert=")), "{name}: {argv:?}");
        assert_eq!(argv.get(z + 3).map(String::as_str), Some("--tls-watch"), "{name}: {argv:?}");
        assert_eq!(argv.iter().filter(|a| *a == "--tls-watch").count(), 1, "{name}: {argv:?}");
    }
    for name in without {
        let Some((m, _)) = rendered(name) else { return };
        let argv = shard_container_argv(&m);
        let shard = tls::shard_tls(&argv);
        assert!(!shard.enabled && !shard.watch, "{name}: the shards' argv {argv:?}");
        assert!(!argv.iter().any(|a| a == "--tls-watch"), "{name}: {argv:?}");
    }
}

/// Each hop from named Secrets: the flags, the pool keys and the mounts of
/// that hop only, each side verifying its peer with the ca.crt of the
/// peer's Secret, the probes unchanged, the shards still warm.
#[test]
fn helm_tls_each_hop_from_secrets() {
    // proxy -> shards, mutual.
    let Some((_, text)) = rendered("helm-tls-shards.yaml") else { return };
    let m = assert_tls_clean(&text, "helm-tls-shards.yaml");
    assert_eq!(m.of_kind("Certificate").count(), 0, "no cert-manager without tls.certManager.enabled");
    let argv = shard_container_argv(&m);
    assert_eq!(argv[..13], shard_container_argv(&rendered("helm-default.yaml").expect("rendered").0)[..]);
    assert_eq!(argv[13..], ["-Z", "-o", SERVER_MTLS_OPTIONS, "--tls-watch"]);
    let file = |r: &str, path: &str| secret_key(&m, r, path);
    let pair = |s: &str, k: &str| (s.to_owned(), k.to_owned());
    assert_eq!(file("server", "/etc/memshard-tls/server/tls.crt"), pair("shards-cert", "tls.crt"));
    assert_eq!(file("server", "/etc/memshard-tls/server/tls.key"), pair("shards-cert", "tls.key"));
    assert_eq!(file("server", "/etc/memshard-tls/client-ca/ca.crt"), pair("proxy-client-cert", "ca.crt"));
    assert_eq!(file("proxy", "/etc/memshard-tls/upstream-ca/ca.crt"), pair("shards-cert", "ca.crt"));
    assert_eq!(file("proxy", "/etc/memshard-tls/client/tls.key"), pair("proxy-client-cert", "tls.key"));
    // A pod never mounts a key that is not its own.
    let (_, shard) = role(&m, "server");
    assert!(tls::secret_file(&shards(&m), shard, "/etc/memshard-tls/client-ca/tls.key").is_err());
    assert_eq!(
        pool_tls_keys(&m),
        owned(&[
            ("server_tls", "true"),
            ("server_tls_ca_file", "/etc/memshard-tls/upstream-ca/ca.crt"),
            ("server_tls_cert_file", "/etc/memshard-tls/client/tls.crt"),
            ("server_tls_key_file", "/etc/memshard-tls/client/tls.key"),
        ])
    );
    assert_eq!(
        Workload::argv(role(&m, "app").1),
        ["app", "--listen", "0.0.0.0:3000", "--cache", "memcache-proxy:11211"]
    );
    assert_probes_on_admin(&m);
    // Still warm: the memory file on its claim, beside the certificates.
    assert_eq!(flag(&argv, "-e", "--memory-file").as_deref(), Some("/data/memory"));
    let mounts: Vec<_> = seq(&shard["volumeMounts"]).iter().filter_map(|v| v["mountPath"].as_str()).collect();
    assert_eq!(mounts, ["/data", "/etc/memshard-tls/server", "/etc/memshard-tls/client-ca"]);

    // app -> proxy, server-side only.
    let Some((_, text)) = rendered("helm-tls-proxy.yaml") else { return };
    let m = assert_tls_clean(&text, "helm-tls-proxy.yaml");
    assert_eq!(
        pool_tls_keys(&m),
        owned(&[
            ("tls_cert_file", "/etc/memshard-tls/server/tls.crt"),
            ("tls_key_file", "/etc/memshard-tls/server/tls.key")
        ])
    );
    assert_eq!(Workload::argv(role(&m, "app").1)[5..], ["--cache-tls-ca", "/etc/memshard-tls/upstream-ca/ca.crt"]);
    assert_eq!(
        secret_key(&m, "app", "/etc/memshard-tls/upstream-ca/ca.crt"),
        ("proxy-cert".to_owned(), "ca.crt".to_owned())
    );
    assert!(tls::secret_file(&role(&m, "app").0, role(&m, "app").1, "/etc/memshard-tls/upstream-ca/tls.key").is_err());
    assert!(!shard_container_argv(&m).contains(&"-Z".to_owned()));
    assert_probes_on_admin(&m);
    assert_warm(&m, 256, 40);
}

/// Every hop, mutual, from cert-manager: one Certificate per certificate,
/// each Secret mounted where it is used, the shards' certificate naming
/// every shard in every form a client may dial, the clients' for client
/// auth; the shards reload their files by themselves (`--tls-watch`).
#[test]
fn helm_tls_every_hop_from_cert_manager() {
    let Some((_, text)) = rendered("helm-tls-cert-manager.yaml") else { return };
    let m = assert_tls_clean(&text, "helm-tls-cert-manager.yaml");
    assert_eq!(kinds(&m), [2, 1, 3, 3, 3, 1]);
    let certs: Vec<(&str, &str)> = m
        .of_kind("Certificate")
        .filter_map(|c| Some((c["metadata"]["name"].as_str()?, c["spec"]["secretName"].as_str()?)))
        .collect();
    assert_eq!(
        certs,
        [
            ("memcache-proxy", "memcache-proxy-tls"),
            ("memshard-app-client", "memshard-app-client-tls"),
            ("sharded-memcache", "sharded-memcache-tls"),
            ("memcache-proxy-client", "memcache-proxy-client-tls"),
        ]
    );
    let cert = |name: &str| m.get("Certificate", name).unwrap_or_else(|| panic!("Certificate/{name}"));
    let shard_names: Vec<String> = (0..5)
        .flat_map(|i| {
            let pod = format!("sharded-memcache-{i}.memcache");
            [
                pod.clone(),
                format!("{pod}.default"),
                format!("{pod}.default.svc"),
                format!("{pod}.default.svc.cluster.local"),
            ]
        })
        .collect();
    assert_eq!(strings(&cert("sharded-memcache")["spec"]["dnsNames"]), shard_names);
    assert_eq!(
        strings(&cert("memcache-proxy")["spec"]["dnsNames"]),
        [
            "memcache-proxy",
            "memcache-proxy.default",
            "memcache-proxy.default.svc",
            "memcache-proxy.default.svc.cluster.local"
        ]
    );
    for (name, usage, common) in [
        ("memcache-proxy", "server auth", None),
        ("sharded-memcache", "server auth", None),
        ("memshard-app-client", "client auth", Some("memshard-app")),
        ("memcache-proxy-client", "client auth", Some("memcache-proxy")),
    ] {
        let spec = &cert(name)["spec"];
        assert!(strings(&spec["usages"]).contains(&usage), "{name}: {:?}", spec["usages"]);
        assert_eq!(spec["commonName"].as_str(), common, "{name}");
        let issuer = &spec["issuerRef"];
        assert_eq!(
            (issuer["name"].as_str(), issuer["kind"].as_str(), issuer["group"].as_str()),
            (Some("memshard-ca"), Some("ClusterIssuer"), Some("cert-manager.io")),
            "{name}"
        );
        assert_eq!(spec["privateKey"]["rotationPolicy"].as_str(), Some("Always"), "{name}");
        assert_eq!(
            (spec["privateKey"]["algorithm"].as_str(), spec["privateKey"]["size"].as_i64()),
            (Some("ECDSA"), Some(256))
        );
    }
    // The pool file as the proxy loads it: the static list, the five shards
    // the Certificate names, and TLS at both ends.
    let config = pool_config(&text);
    let pool = &config.pools[0].1;
    let ring: Vec<&str> = pool.servers.iter().map(|s| s.ring_name()).collect();
    assert_eq!(ring.len(), 5);
    assert!(ring.iter().all(|r| shard_names.iter().any(|n| n == r)), "{ring:?}");
    let path = |p: &str| Some(std::path::PathBuf::from(p));
    let listen = pool.extensions.tls.as_ref().expect("TLS towards the clients");
    assert_eq!(
        (Some(listen.cert_file.clone()), listen.key_file.clone(), listen.client_ca_file.clone()),
        (
            path("/etc/memshard-tls/server/tls.crt"),
            path("/etc/memshard-tls/server/tls.key"),
            path("/etc/memshard-tls/client-ca/ca.crt")
        )
    );
    let to_shards = pool.extensions.server_tls.as_ref().expect("TLS towards the shards");
    assert_eq!(
        (
            Some(to_shards.ca_file.clone()),
            to_shards.name.clone(),
            to_shards.cert_file.clone(),
            to_shards.key_file.clone()
        ),
        (
            path("/etc/memshard-tls/upstream-ca/ca.crt"),
            None,
            path("/etc/memshard-tls/client/tls.crt"),
            path("/etc/memshard-tls/client/tls.key")
        )
    );
    assert_eq!(shard_container_argv(&m)[13..], ["-Z", "-o", SERVER_MTLS_OPTIONS, "--tls-watch"]);
    assert_eq!(
        Workload::argv(role(&m, "app").1)[5..],
        [
            "--cache-tls-ca",
            "/etc/memshard-tls/upstream-ca/ca.crt",
            "--cache-tls-cert",
            "/etc/memshard-tls/client/tls.crt",
            "--cache-tls-key",
            "/etc/memshard-tls/client/tls.key"
        ]
    );
    assert_eq!(pool_tls_keys(&m).len(), 7, "every key but server_tls_name");
    assert_probes_on_admin(&m);
}

/// Each hop alone from cert-manager: the shards' certificate also names
/// `tls.shards.serverName`, which the proxies then verify (no new
/// certificate on a scale-out); an RSA key has a size, an Ed25519 none.
#[test]
fn helm_tls_each_hop_from_cert_manager() {
    let Some((_, text)) = rendered("helm-tls-cert-manager-shards.yaml") else { return };
    let m = assert_tls_clean(&text, "helm-tls-cert-manager-shards.yaml");
    assert_eq!(m.of_kind("Certificate").count(), 1);
    let spec = &m.get("Certificate", "sharded-memcache").expect("the shards' Certificate")["spec"];
    let names = strings(&spec["dnsNames"]);
    assert_eq!(names.len(), 3 * 4 + 1);
    assert_eq!(names.last(), Some(&"memcache.default.svc"));
    assert_eq!(
        (spec["privateKey"]["algorithm"].as_str(), spec["privateKey"]["size"].as_i64()),
        (Some("RSA"), Some(2048))
    );
    assert_eq!(pool_tls_keys(&m).get("server_tls_name").map(String::as_str), Some("memcache.default.svc"));
    let to_shards = pool_config(&text).pools[0].1.extensions.server_tls.clone().expect("TLS towards the shards");
    assert_eq!((to_shards.name.as_deref(), to_shards.cert_file), (Some("memcache.default.svc"), None));
    assert_eq!(shard_container_argv(&m)[13..], ["-Z", "-o", SERVER_OPTIONS, "--tls-watch"]);
    assert!(!pool_tls_keys(&m).contains_key("server_tls_cert_file"), "no client certificate");
    let mounts: Vec<_> = seq(&role(&m, "server").1["volumeMounts"]).iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(mounts, ["data", "tls-server"]);

    let Some((_, text)) = rendered("helm-tls-cert-manager-proxy.yaml") else { return };
    let m = assert_tls_clean(&text, "helm-tls-cert-manager-proxy.yaml");
    let certs: Vec<&str> = m.of_kind("Certificate").filter_map(|c| c["metadata"]["name"].as_str()).collect();
    assert_eq!(certs, ["memcache-proxy", "memshard-app-client"]);
    for c in m.of_kind("Certificate") {
        assert_eq!(c["spec"]["privateKey"]["algorithm"].as_str(), Some("Ed25519"));
        assert!(c["spec"]["privateKey"]["size"].is_badvalue(), "an Ed25519 key has no size");
    }
    assert_eq!(
        pool_tls_keys(&m).get("tls_client_ca_file").map(String::as_str),
        Some("/etc/memshard-tls/client-ca/ca.crt")
    );
    assert_eq!(
        secret_key(&m, "proxy", "/etc/memshard-tls/client-ca/ca.crt"),
        ("memshard-app-client-tls".to_owned(), "ca.crt".to_owned())
    );
    assert!(!shard_container_argv(&m).contains(&"-Z".to_owned()));
}

/// The chart refuses TLS values that cannot work, and says why.
#[test]
fn helm_tls_refusals() {
    let Some((_, helm)) = required_tools("helm TLS refusals") else { return };
    let cases: [(&str, Option<&str>); 9] = [
        ("tls.shards.enabled=true", Some("tls.shards.secretName is empty")),
        ("tls.proxy.enabled=true", Some("tls.proxy.secretName is empty")),
        (
            "tls.proxy.enabled=true,tls.proxy.secretName=p,tls.proxy.clientAuth.enabled=true",
            Some("tls.proxy.clientAuth.secretName is empty"),
        ),
        ("tls.proxy.clientAuth.enabled=true,tls.proxy.clientAuth.secretName=a", Some("needs tls.proxy.enabled")),
        ("tls.shards.clientAuth.enabled=true,tls.shards.clientAuth.secretName=c", Some("needs tls.shards.enabled")),
        // Removed: the shards reload by themselves (--tls-watch); the schema
        // refuses the old value rather than ignoring it.
        (
            "tls.shards.enabled=true,tls.shards.secretName=s,tls.shards.reloadOnChange.enabled=true",
            Some("reloadOnChange"),
        ),
        ("tls.shards.enabled=true,tls.shards.secretName=s,admin.enabled=false", Some("needs admin.enabled")),
        ("tls.shards.enabled=true,tls.certManager.enabled=true", Some("tls.certManager.issuerRef.name is empty")),
        // The proxy's hop needs no admin port: its probes are TCP connects then.
        ("tls.proxy.enabled=true,tls.proxy.secretName=p,admin.enabled=false", None),
    ];
    for (values, refusal) in cases {
        let out = run(&helm, &["template", "memshard", "deploy/helm/memshard", "--set", values]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match refusal {
            Some(why) => {
                assert!(!out.status.success() && stderr.contains(why), "--set {values}: want {why:?}, got {stderr}")
            }
            None => {
                assert!(out.status.success(), "--set {values}: {stderr}");
                assert_tls_clean(&String::from_utf8_lossy(&out.stdout), values);
            }
        }
    }
}

/// The kustomize component (through overlays/tls): the base's flags with
/// the TLS flags appended, the four Secrets the chart's cert-manager would
/// make, and the base's pool file with the TLS keys and nothing else changed.
#[test]
fn kustomize_tls_overlay_is_the_base_with_tls() {
    let Some((_, text)) = rendered("tls.yaml") else { return };
    let m = assert_tls_clean(&text, "target/deploy-rendered/tls.yaml");
    let Some((base, _)) = rendered("base.yaml") else { return };
    assert_eq!(kinds(&m), kinds(&base));
    assert_eq!(m.of_kind("Certificate").count(), 0, "the Secrets are the user's");
    let base_argv = shard_container_argv(&base);
    assert_eq!(shard_container_argv(&m)[..base_argv.len()], base_argv[..]);
    assert_eq!(shard_container_argv(&m)[base_argv.len()..], ["-Z", "-o", SERVER_MTLS_OPTIONS, "--tls-watch"]);
    assert_eq!(Workload::argv(role(&m, "app").1).len(), Workload::argv(role(&base, "app").1).len() + 6);
    assert_probes_on_admin(&m);
    // The Secrets: the names the chart's Certificates write.
    let mut secrets: Vec<String> = m
        .workloads()
        .iter()
        .flat_map(|w| seq(&w.pod_spec()["volumes"]))
        .filter_map(|v| v["secret"]["secretName"].as_str().map(str::to_owned))
        .collect();
    secrets.sort();
    secrets.dedup();
    let Some((cm, _)) = rendered("helm-tls-cert-manager.yaml") else { return };
    let mut written: Vec<String> =
        cm.of_kind("Certificate").filter_map(|c| c["spec"]["secretName"].as_str().map(str::to_owned)).collect();
    written.sort();
    assert_eq!(secrets, written);
    // The pool file: the base's, plus the TLS keys and their comments.
    let read = |p: &str| std::fs::read_to_string(repo_root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let (overlay, base_file) = (read("deploy/k8s/overlays/tls/nutcracker.yml"), read("deploy/k8s/base/nutcracker.yml"));
    let tls_line = |l: &&str| {
        let t = l.trim_start();
        tls::POOL_KEYS.iter().any(|k| t.starts_with(&format!("{k}:")))
    };
    let settings =
        |t: &str| t.lines().filter(|l| !l.trim_start().starts_with('#')).map(str::to_owned).collect::<Vec<_>>();
    let without: Vec<String> = settings(&overlay).into_iter().filter(|l| !tls_line(&l.as_str())).collect();
    assert_eq!(without, settings(&base_file), "overlays/tls/nutcracker.yml has drifted from the base's");
    assert_eq!(overlay.lines().filter(tls_line).count(), 7);
}

/// The TLS checks see each way the hops can disagree.
#[test]
fn tls_checker_reports_each_mutation() {
    let Some((_, text)) = rendered("helm-tls-cert-manager.yaml") else { return };
    let mutations: &[(&str, &str, &str)] = &[
        (",ssl_verify_mode=2\"", "\"", "ssl_verify_mode=0"),
        ("            - -Z\n", "", "the shards serve plain text (no -Z)"),
        ("            - --tls-watch\n", "", "the shards serve TLS (-Z) without --tls-watch"),
        ("      server_tls: true\n", "", "the shards serve TLS (-Z) but the pool has no server_tls"),
        (
            "    - sharded-memcache-4.memcache.default.svc\n",
            "",
            "Certificate/sharded-memcache: dnsNames do not name sharded-memcache-4.memcache.default.svc",
        ),
        (
            "    - memcache-proxy.default.svc.cluster.local\n",
            "",
            "do not name memcache-proxy.default.svc.cluster.local",
        ),
        (
            "    - client auth\n  commonName: memshard-app",
            "    - server auth\n  commonName: memshard-app",
            "lack \"client auth\"",
        ),
        (
            "  secretName: memcache-proxy-client-tls\n",
            "  secretName: memcache-proxy-client-tl\n",
            "mounted as no pod's certificate",
        ),
        (
            "mountPath: /etc/memshard-tls/upstream-ca\n              readOnly: true",
            "mountPath: /etc/memshard-tls/upstream-ca",
            "is not mounted readOnly",
        ),
        (
            "tls_client_ca_file: /etc/memshard-tls/client-ca/",
            "tls_client_ca_file: /etc/memshard-tls/client_ca/",
            "is on no volume",
        ),
        ("            - --cache-tls-ca\n", "            - --cache-tls-c\n", "the app has no --cache-tls-ca"),
        (
            "- name: tls-upstream-ca\n          secret:\n            secretName: sharded-memcache-tls",
            "- name: tls-upstream-ca\n          secret:\n            secretName: memcache-proxy-tls",
            "each side verifies its peer with the ca.crt of the peer's Secret",
        ),
        (
            "- key: tls.key\n                path: tls.key",
            "- key: tls.crt\n                path: tls.key",
            "not tls.crt and tls.key of one Secret",
        ),
        (
            "- key: tls.key\n                path: tls.key",
            "- key: tls.key\n                path: key.pem",
            "projects no tls.key",
        ),
        (
            "readinessProbe:\n            httpGet:\n              path: /readyz\n              port: admin\n            periodSeconds: 5\n            timeoutSeconds: 3",
            "readinessProbe:\n            httpGet:\n              path: /readyz\n              port: memcache\n            periodSeconds: 5\n            timeoutSeconds: 3",
            "readinessProbe is HTTP on the TLS memcache port",
        ),
    ];
    for (from, to, want) in mutations {
        assert!(text.contains(from), "helm-tls-cert-manager.yaml no longer contains {from:?}: update the table");
        let found = tls_problems(&text.replacen(from, to, 1), "a mutated helm-tls-cert-manager.yaml");
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{from:?} -> {to:?} should report {want:?}; reported:\n  {}",
            found.join("\n  ")
        );
    }
}
