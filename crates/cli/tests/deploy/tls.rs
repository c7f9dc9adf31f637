//! TLS on every hop: the shards' `-Z -o ssl_*=...` (memshard's with
//! `--tls-watch`, so a renewed Secret is served without a SIGHUP), the proxy's pool keys
//! (`tls_*` towards its clients, `server_tls*` towards the shards) and the
//! app's `--cache-tls-*` agree with each other; every certificate file is a
//! key of a Secret mounted read-only (never by subPath, which the kubelet
//! does not update on a renewal); each side verifies its peer with the CA
//! (ca.crt) of the peer's own Secret; the probes do not speak plain text to
//! a TLS port; and cert-manager Certificates name what the clients dial.

use super::{Manifests, Workload, env, flag, seq, strings};
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// The proxy's per-pool TLS keys (memshard extensions).
pub(crate) const POOL_KEYS: [&str; 8] = [
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "server_tls",
    "server_tls_ca_file",
    "server_tls_name",
    "server_tls_cert_file",
    "server_tls_key_file",
];

/// A certificate file as the pod sees it: a key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretFile {
    pub(crate) secret: String,
    pub(crate) key: String,
}

/// The Secret key behind `path` in container `c` of `w`, mounted read-only
/// as a whole volume (a subPath mount is never updated by the kubelet, so a
/// renewal would not reach it).
pub(crate) fn secret_file(w: &Workload<'_>, c: &Yaml, path: &str) -> Result<SecretFile, String> {
    let file = Path::new(path);
    let mount = seq(&c["volumeMounts"])
        .iter()
        .filter(|m| m["mountPath"].as_str().is_some_and(|dir| file.starts_with(dir) && file != Path::new(dir)))
        .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))
        .ok_or_else(|| format!("{path} is on no volume"))?;
    let (name, dir) = (mount["name"].as_str().unwrap_or("?"), mount["mountPath"].as_str().unwrap_or("?"));
    if mount["readOnly"].as_bool() != Some(true) {
        return Err(format!("{path}: volume {name} is not mounted readOnly"));
    }
    if !mount["subPath"].is_badvalue() {
        return Err(format!("{path}: volume {name} is mounted by subPath, which a renewal never updates"));
    }
    let volume = seq(&w.pod_spec()["volumes"])
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .ok_or_else(|| format!("{path}: volume {name} is not a volume of the pod"))?;
    let secret = volume["secret"]["secretName"]
        .as_str()
        .ok_or_else(|| format!("{path}: volume {name} is not a Secret"))?
        .to_owned();
    let rel = file.strip_prefix(dir).map(|r| r.to_string_lossy().into_owned()).unwrap_or_default();
    let items = seq(&volume["secret"]["items"]);
    let key = if items.is_empty() {
        rel
    } else {
        items
            .iter()
            .find(|i| i["path"].as_str() == Some(rel.as_str()))
            .and_then(|i| i["key"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{path}: Secret {secret} (volume {name}) projects no {rel}"))?
    };
    if !["tls.crt", "tls.key", "ca.crt"].contains(&key.as_str()) {
        return Err(format!("{path}: key {key} of Secret {secret} is not a kubernetes.io/tls key"));
    }
    Ok(SecretFile { secret, key })
}

/// The shards' TLS settings: `-o` options after `-Z` (or `--enable-ssl`),
/// and memshard's `--tls-watch` (reload the files when they change).
#[derive(Debug, Default)]
pub(crate) struct ShardTls {
    pub(crate) enabled: bool,
    pub(crate) watch: bool,
    pub(crate) options: BTreeMap<String, String>,
}

pub(crate) fn shard_tls(argv: &[String]) -> ShardTls {
    let enabled = argv.iter().any(|a| a == "-Z" || a == "--enable-ssl");
    let watch = argv.iter().any(|a| a == "--tls-watch");
    let mut options = BTreeMap::new();
    for (i, a) in argv.iter().enumerate() {
        let value = if a == "-o" || a == "--extended" {
            argv.get(i + 1).cloned()
        } else {
            a.strip_prefix("--extended=").map(str::to_owned)
        };
        for option in value.iter().flat_map(|v| v.split(',')) {
            let (k, v) = option.split_once('=').unwrap_or((option, ""));
            if k.starts_with("ssl_") {
                options.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    ShardTls { enabled, watch, options }
}

/// The first pool's keys of the pool file the proxy mounts (`-c`), as
/// written (system::system loads the file with memshard-config).
pub(crate) fn pool_keys(m: &Manifests, proxy: &Workload<'_>, c: &Yaml) -> Option<BTreeMap<String, String>> {
    let path = flag(&Workload::argv(c), "-c", "--conf-file")?;
    let text = seq(&c["volumeMounts"]).iter().find_map(|mount| {
        let key = Path::new(&path).strip_prefix(mount["mountPath"].as_str()?).ok()?.to_str()?.to_owned();
        let volume = seq(&proxy.pod_spec()["volumes"]).iter().find(|v| v["name"] == mount["name"])?;
        let cm = m.get("ConfigMap", volume["configMap"]["name"].as_str()?)?;
        cm["data"][key.as_str()].as_str().map(str::to_owned)
    })?;
    let docs = YamlLoader::load_from_str(&text).ok()?;
    let (_, pool) = docs.first()?.as_hash()?.iter().next()?;
    Some(pool.as_hash()?.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), super::scalar(v)?))).collect())
}

/// The app's setting `--flag` or its environment variable.
fn app_setting(c: &Yaml, flag_name: &str, var: &str) -> Option<String> {
    env(c, var).or_else(|| flag(&Workload::argv(c), flag_name, flag_name))
}

/// Where the hops stand: the parties and their TLS files.
struct Hops<'a> {
    app: Option<(Workload<'a>, &'a Yaml)>,
    proxy: Option<(Workload<'a>, &'a Yaml)>,
    shards: Option<(Workload<'a>, &'a Yaml)>,
}

fn hops(m: &Manifests) -> Hops<'_> {
    let role = |kind: &str, role: &str| {
        m.workloads().into_iter().filter(|w| w.kind() == kind).find_map(|w| Some((w, w.role_container(role)?)))
    };
    let shards =
        m.workloads().into_iter().find(|w| w.kind() == "StatefulSet").and_then(|w| Some((w, w.containers().first()?)));
    Hops { app: role("Deployment", "app"), proxy: role("Deployment", "proxy"), shards }
}

/// Every TLS problem of a manifest set, one line each. `namespace` and
/// `domain` are those the Certificates' fully qualified names must use.
pub(crate) fn problems(m: &Manifests, namespace: &str, domain: &str) -> Vec<String> {
    let mut p = Vec::new();
    let h = hops(m);
    // A file the pod must have: its Secret key, or a problem.
    let file = |p: &mut Vec<String>, party: Option<(Workload<'_>, &Yaml)>, what: &str, path: &str| {
        let (w, c) = party?;
        match secret_file(&w, c, path) {
            Ok(f) => Some(f),
            Err(e) => {
                p.push(format!("{} {what}: {e}", w.id()));
                None
            }
        }
    };

    // The shards.
    let mut shard = ShardTls::default();
    let (mut shard_cert, mut shard_client_ca) = (None, None);
    if let Some((w, c)) = h.shards {
        let id = w.id();
        let argv = Workload::argv(c);
        shard = shard_tls(&argv);
        let o = &shard.options;
        // `memshard server` (not memcached, whose flags end at -Z -o): it
        // reads renewed files by itself only with --tls-watch, which needs -Z.
        let memshard = argv.first().is_some_and(|a| a == "server");
        if memshard && shard.enabled && !shard.watch {
            p.push(format!(
                "{id}: the shards serve TLS (-Z) without --tls-watch: a renewed Secret would wait for a SIGHUP"
            ));
        }
        if shard.watch && !shard.enabled {
            p.push(format!("{id}: --tls-watch without -Z: memshard server refuses to start"));
        }
        if shard.enabled {
            for key in ["ssl_chain_cert", "ssl_key"] {
                if !o.contains_key(key) {
                    p.push(format!("{id}: -Z without -o {key}=FILE"));
                }
            }
            let chain = o.get("ssl_chain_cert").and_then(|f| file(&mut p, h.shards, "ssl_chain_cert", f));
            let key = o.get("ssl_key").and_then(|f| file(&mut p, h.shards, "ssl_key", f));
            pair(&mut p, &id, "ssl_chain_cert/ssl_key", chain.as_ref(), key.as_ref());
            shard_cert = chain;
            let mode = o.get("ssl_verify_mode").map_or("0", String::as_str);
            if !["0", "1", "2", "3"].contains(&mode) {
                p.push(format!("{id}: ssl_verify_mode={mode} is not 0 (none), 1, 2 (require) or 3 (once)"));
            }
            if mode != "0" {
                match o.get("ssl_ca_cert") {
                    None => {
                        p.push(format!("{id}: ssl_verify_mode={mode} without ssl_ca_cert: no CA to verify clients"))
                    }
                    Some(f) => {
                        shard_client_ca = file(&mut p, h.shards, "ssl_ca_cert", f);
                        is_key(&mut p, &id, "ssl_ca_cert", shard_client_ca.as_ref(), "ca.crt");
                    }
                }
            }
            // Probes: never plain text to the memcache port.
            let memcache = w.resolve_port(&Yaml::String("memcache".to_owned()));
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let pr = &c[probe];
                if !pr["exec"].is_badvalue() {
                    p.push(format!("{id}: {probe} is an exec probe, which speaks plain text to the TLS memcache port"));
                }
                if !pr["httpGet"].is_badvalue() && w.resolve_port(&pr["httpGet"]["port"]) == memcache {
                    p.push(format!("{id}: {probe} is HTTP on the TLS memcache port"));
                }
            }
        } else if !o.is_empty() {
            p.push(format!("{id}: ssl options {:?} without -Z: the shards serve plain text", o.keys()));
        }
    }

    // The proxy's pool file.
    let pool = h.proxy.and_then(|(w, c)| pool_keys(m, &w, c)).unwrap_or_default();
    let pid = h.proxy.map_or("the proxy".to_owned(), |(w, _)| w.id());
    let pool_file = |p: &mut Vec<String>, key: &str| pool.get(key).and_then(|f| file(p, h.proxy, key, f));
    let listener = pool_file(&mut p, "tls_cert_file");
    let listener_key = pool_file(&mut p, "tls_key_file");
    let proxy_tls = pool.contains_key("tls_cert_file") || pool.contains_key("tls_key_file");
    if proxy_tls {
        pair(&mut p, &pid, "tls_cert_file/tls_key_file", listener.as_ref(), listener_key.as_ref());
        if !(pool.contains_key("tls_cert_file") && pool.contains_key("tls_key_file")) {
            p.push(format!("{pid}: tls_cert_file and tls_key_file go together"));
        }
    }
    let client_ca = pool_file(&mut p, "tls_client_ca_file");
    is_key(&mut p, &pid, "tls_client_ca_file", client_ca.as_ref(), "ca.crt");
    if pool.contains_key("tls_client_ca_file") && !proxy_tls {
        p.push(format!("{pid}: tls_client_ca_file without tls_cert_file: client certificates need a TLS listener"));
    }
    let server_tls = pool.get("server_tls").is_some_and(|v| v == "true");
    let upstream_ca = pool_file(&mut p, "server_tls_ca_file");
    is_key(&mut p, &pid, "server_tls_ca_file", upstream_ca.as_ref(), "ca.crt");
    let proxy_client = pool_file(&mut p, "server_tls_cert_file");
    let proxy_client_key = pool_file(&mut p, "server_tls_key_file");
    let presents = pool.contains_key("server_tls_cert_file") || pool.contains_key("server_tls_key_file");
    if presents {
        pair(
            &mut p,
            &pid,
            "server_tls_cert_file/server_tls_key_file",
            proxy_client.as_ref(),
            proxy_client_key.as_ref(),
        );
    }
    for key in ["server_tls_ca_file", "server_tls_name", "server_tls_cert_file", "server_tls_key_file"] {
        if pool.contains_key(key) && !server_tls {
            p.push(format!("{pid}: {key} without server_tls: true"));
        }
    }
    if server_tls && !pool.contains_key("server_tls_ca_file") {
        p.push(format!("{pid}: server_tls without server_tls_ca_file: the shards' certificates go unverified"));
    }
    if proxy_tls {
        if let Some((w, c)) = h.proxy {
            let memcache = w.resolve_port(&Yaml::String("memcache".to_owned()));
            for probe in ["readinessProbe", "livenessProbe"] {
                if !c[probe]["httpGet"].is_badvalue() && w.resolve_port(&c[probe]["httpGet"]["port"]) == memcache {
                    p.push(format!("{pid}: {probe} is HTTP on the TLS memcache port"));
                }
            }
        }
    }

    // proxy -> shards: both sides agree, and each trusts the other's issuer.
    if h.shards.is_some() && h.proxy.is_some() {
        if shard.enabled && !server_tls {
            p.push(format!("{pid}: the shards serve TLS (-Z) but the pool has no server_tls: true"));
        }
        if server_tls && !shard.enabled {
            p.push(format!("{pid}: server_tls: true but the shards serve plain text (no -Z)"));
        }
        let mode = shard.options.get("ssl_verify_mode").map_or("0", String::as_str);
        if shard.enabled && mode == "2" && !presents {
            p.push(format!("{pid}: the shards require a client certificate (ssl_verify_mode=2), the pool has no server_tls_cert_file"));
        }
        if shard.enabled && mode == "0" && presents {
            p.push(format!(
                "{pid}: server_tls_cert_file, a client certificate the shards never ask for (ssl_verify_mode=0)"
            ));
        }
        trusts(
            &mut p,
            &pid,
            "server_tls_ca_file",
            upstream_ca.as_ref(),
            "the shards' ssl_chain_cert",
            shard_cert.as_ref(),
        );
        if let Some(shard_id) = h.shards.map(|(w, _)| w.id()) {
            trusts(
                &mut p,
                &shard_id,
                "ssl_ca_cert",
                shard_client_ca.as_ref(),
                "the proxies' server_tls_cert_file",
                proxy_client.as_ref(),
            );
        }
    }

    // app -> proxy.
    if let (Some((app, c)), Some(_)) = (h.app, h.proxy) {
        let id = app.id();
        let setting = |f: &str, v: &str| app_setting(c, f, v);
        let ca_path = setting("--cache-tls-ca", "MEMSHARD_CACHE_TLS_CA");
        let cert_path = setting("--cache-tls-cert", "MEMSHARD_CACHE_TLS_CERT");
        let key_path = setting("--cache-tls-key", "MEMSHARD_CACHE_TLS_KEY");
        if proxy_tls && ca_path.is_none() {
            p.push(format!("{id}: the proxies serve TLS (tls_cert_file) but the app has no --cache-tls-ca"));
        }
        if !proxy_tls && (ca_path.is_some() || cert_path.is_some()) {
            p.push(format!("{id}: --cache-tls-* but the proxies serve plain text (no tls_cert_file)"));
        }
        let ca = ca_path.and_then(|f| file(&mut p, h.app, "--cache-tls-ca", &f));
        is_key(&mut p, &id, "--cache-tls-ca", ca.as_ref(), "ca.crt");
        let cert = cert_path.as_ref().and_then(|f| file(&mut p, h.app, "--cache-tls-cert", f));
        let key = key_path.as_ref().and_then(|f| file(&mut p, h.app, "--cache-tls-key", f));
        if cert_path.is_some() != key_path.is_some() {
            p.push(format!("{id}: --cache-tls-cert and --cache-tls-key go together"));
        }
        pair(&mut p, &id, "--cache-tls-cert/--cache-tls-key", cert.as_ref(), key.as_ref());
        if pool.contains_key("tls_client_ca_file") && cert_path.is_none() {
            p.push(format!(
                "{id}: the proxies require a client certificate (tls_client_ca_file), the app has no --cache-tls-cert"
            ));
        }
        if cert_path.is_some() && proxy_tls && !pool.contains_key("tls_client_ca_file") {
            p.push(format!(
                "{id}: --cache-tls-cert, a client certificate the proxies never ask for (no tls_client_ca_file)"
            ));
        }
        trusts(&mut p, &id, "--cache-tls-ca", ca.as_ref(), "the proxies' tls_cert_file", listener.as_ref());
        trusts(&mut p, &pid, "tls_client_ca_file", client_ca.as_ref(), "the app's --cache-tls-cert", cert.as_ref());
    }

    p.extend(certificates(m, &h, namespace, domain, &pool));
    p
}

/// A certificate and its key: tls.crt and tls.key of one Secret.
fn pair(p: &mut Vec<String>, id: &str, what: &str, cert: Option<&SecretFile>, key: Option<&SecretFile>) {
    if let (Some(c), Some(k)) = (cert, key) {
        if c.secret != k.secret || c.key != "tls.crt" || k.key != "tls.key" {
            p.push(format!(
                "{id}: {what} are {}/{} and {}/{}, not tls.crt and tls.key of one Secret",
                c.secret, c.key, k.secret, k.key
            ));
        }
    }
}

fn is_key(p: &mut Vec<String>, id: &str, what: &str, f: Option<&SecretFile>, want: &str) {
    if let Some(f) = f.filter(|f| f.key != want) {
        p.push(format!("{id}: {what} is {}/{}, not a {want}", f.secret, f.key));
    }
}

/// A verifier trusts the CA of its peer's Secret (ca.crt beside the peer's tls.crt).
fn trusts(p: &mut Vec<String>, id: &str, what: &str, ca: Option<&SecretFile>, peer: &str, cert: Option<&SecretFile>) {
    if let (Some(ca), Some(cert)) = (ca, cert) {
        if ca.secret != cert.secret {
            p.push(format!(
                "{id}: {what} is the CA of Secret {}, but {peer} is Secret {}: each side verifies its peer with the ca.crt of the peer's Secret",
                ca.secret, cert.secret
            ));
        }
    }
}

/// cert-manager Certificates: the Secret each writes is mounted where a
/// certificate of that kind is used, with the usage and the names it needs.
fn certificates(
    m: &Manifests,
    h: &Hops<'_>,
    namespace: &str,
    domain: &str,
    pool: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut p = Vec::new();
    // (Secret, what it is used as, the names it must carry)
    let mut uses: Vec<(String, &str, Vec<String>)> = Vec::new();
    let forms = |name: &str| {
        vec![format!("{name}.{namespace}.svc"), format!("{name}.{namespace}.svc.{domain}"), name.to_owned()]
    };
    if let Some((w, c)) = h.shards {
        let o = shard_tls(&Workload::argv(c)).options;
        if let Some(f) = o.get("ssl_chain_cert").and_then(|f| secret_file(&w, c, f).ok()) {
            let service = w.doc["spec"]["serviceName"].as_str().unwrap_or("?");
            let replicas = w.doc["spec"]["replicas"].as_i64().unwrap_or(1);
            let mut names: Vec<String> =
                (0..replicas).flat_map(|i| forms(&format!("{}-{i}.{service}", w.name()))).collect();
            names.extend(pool.get("server_tls_name").cloned());
            uses.push((f.secret, "server auth", names));
        }
    }
    if let Some((w, c)) = h.proxy {
        if let Some(f) = pool.get("tls_cert_file").and_then(|f| secret_file(&w, c, f).ok()) {
            // The name the app verifies: --cache-tls-name, or the host of --cache.
            let name = h.app.and_then(|(_, c)| {
                app_setting(c, "--cache-tls-name", "MEMSHARD_CACHE_TLS_NAME").or_else(|| {
                    let cache = app_setting(c, "--cache", "MEMSHARD_CACHE")?;
                    Some(cache.rsplit_once(':').map_or(cache.clone(), |(host, _)| host.to_owned()))
                })
            });
            uses.push((f.secret, "server auth", name.map(|n| forms(&n)).unwrap_or_default()));
        }
        if let Some(f) = pool.get("server_tls_cert_file").and_then(|f| secret_file(&w, c, f).ok()) {
            uses.push((f.secret, "client auth", Vec::new()));
        }
    }
    if let Some((w, c)) = h.app {
        if let Some(f) =
            app_setting(c, "--cache-tls-cert", "MEMSHARD_CACHE_TLS_CERT").and_then(|f| secret_file(&w, c, &f).ok())
        {
            uses.push((f.secret, "client auth", Vec::new()));
        }
    }
    for cert in m.of_kind("Certificate") {
        let id = format!("Certificate/{}", cert["metadata"]["name"].as_str().unwrap_or("?"));
        let spec = &cert["spec"];
        if cert["apiVersion"].as_str() != Some("cert-manager.io/v1") {
            p.push(format!("{id}: apiVersion is not cert-manager.io/v1"));
        }
        if spec["issuerRef"]["name"].as_str().is_none_or(str::is_empty) {
            p.push(format!("{id}: no issuerRef.name"));
        }
        let secret = spec["secretName"].as_str().unwrap_or("");
        let used: Vec<_> = uses.iter().filter(|(s, _, _)| s == secret).collect();
        if used.is_empty() {
            p.push(format!("{id}: its Secret {secret:?} is mounted as no pod's certificate"));
        }
        let usages = strings(&spec["usages"]);
        let names = strings(&spec["dnsNames"]);
        if names.is_empty() && spec["commonName"].as_str().is_none_or(str::is_empty) {
            p.push(format!("{id}: names nothing (no dnsNames, no commonName)"));
        }
        for (_, usage, want) in used {
            if !usages.contains(usage) {
                p.push(format!("{id}: usages {usages:?} lack {usage:?}"));
            }
            for name in want {
                if !names.contains(&name.as_str()) {
                    p.push(format!("{id}: dnsNames do not name {name}"));
                }
            }
        }
    }
    // A Secret a Certificate writes for one role is not another role's.
    for (i, (secret, usage, _)) in uses.iter().enumerate() {
        if uses[..i].iter().any(|(s, u, _)| s == secret && u != usage) {
            p.push(format!("Secret {secret} is used both as a server and as a client certificate"));
        }
    }
    p
}
