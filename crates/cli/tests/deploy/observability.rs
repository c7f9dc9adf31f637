//! The admin surface and what watches it: each proxy and shard started
//! with `--admin ADDR` has that port as a container port named `admin`,
//! exposed by its Service, announced by prometheus.io/* annotations and
//! probed there (/healthz, /readyz); the ServiceMonitors scrape ports that
//! exist; and every PromQL expression of the PrometheusRule and the Grafana
//! dashboard names only metrics the tier exports.

use super::{Labels, Manifests, Workload, flag, labels, scalar, selects, seq};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::Yaml;

/// The proxies' metrics (`memshard proxy --admin`), as Prometheus stores
/// them: counters with `_total`, the histogram as its three series.
pub(crate) const PROXY_METRICS: &[&str] = &[
    "memshard_proxy_build_info",
    "memshard_proxy_uptime_seconds",
    "memshard_proxy_workers",
    "memshard_proxy_workers_active",
    "memshard_proxy_config_generation",
    "memshard_proxy_config_reloads_total",
    "memshard_proxy_config_last_reload_success",
    "memshard_proxy_config_loaded_timestamp_seconds",
    "memshard_proxy_client_connections",
    // A counter beside the gauge above cannot share its family name.
    "memshard_proxy_client_connections_accepted_total",
    "memshard_proxy_client_errors_total",
    "memshard_proxy_forward_errors_total",
    "memshard_proxy_ejections_total",
    "memshard_proxy_replica_failovers_total",
    "memshard_proxy_replica_fills_total",
    "memshard_proxy_replica_syncs_total",
    "memshard_proxy_fragments_total",
    "memshard_proxy_server_requests_total",
    "memshard_proxy_server_responses_total",
    "memshard_proxy_server_ejections_total",
    "memshard_proxy_server_in_queue",
    "memshard_proxy_server_errors_total",
    "memshard_proxy_server_ejected",
    "memshard_proxy_server_state",
    "memshard_proxy_server_get_hits_total",
    "memshard_proxy_server_get_misses_total",
    "memshard_proxy_server_request_bytes_total",
    "memshard_proxy_server_response_bytes_total",
    "memshard_proxy_server_connections",
    "memshard_proxy_server_latency_seconds_bucket",
    "memshard_proxy_server_latency_seconds_sum",
    "memshard_proxy_server_latency_seconds_count",
    "memshard_proxy_server_ring_share",
    "memshard_proxy_hot_key_requests",
];

/// memcached_exporter's metrics (v0.16.0), which the shards' admin port
/// (`memshard server --admin`) and the exporter beside the official
/// memcached image both export.
pub(crate) const MEMCACHED_EXPORTER_METRICS: &[&str] = &[
    "memcached_up",
    "memcached_uptime_seconds",
    "memcached_time_seconds",
    "memcached_version",
    "memcached_accepting_connections",
    "memcached_commands_total",
    "memcached_connections_total",
    "memcached_connections_rejected_total",
    "memcached_connections_yielded_total",
    "memcached_connections_listener_disabled_total",
    "memcached_current_bytes",
    "memcached_current_connections",
    "memcached_current_items",
    "memcached_items_total",
    "memcached_items_evicted_total",
    "memcached_items_reclaimed_total",
    "memcached_item_no_memory_total",
    "memcached_item_too_large_total",
    "memcached_direct_reclaims_total",
    "memcached_limit_bytes",
    "memcached_malloced_bytes",
    "memcached_max_connections",
    "memcached_read_bytes_total",
    "memcached_written_bytes_total",
    "memcached_process_user_cpu_seconds_total",
    "memcached_process_system_cpu_seconds_total",
    "memcached_slab_current_items",
    "memcached_slab_current_chunks",
    "memcached_slab_current_pages",
    "memcached_slab_chunk_size_bytes",
    "memcached_slab_chunks_per_page",
    "memcached_slab_chunks_used",
    "memcached_slab_chunks_free",
    "memcached_slab_chunks_free_end",
    "memcached_slab_mem_requested_bytes",
    "memcached_slab_commands_total",
    "memcached_slab_items_age_seconds",
    "memcached_slab_items_evicted_total",
    "memcached_slab_items_evicted_nonzero_total",
    "memcached_slab_items_evicted_unfetched_total",
    "memcached_slab_items_expired_unfetched_total",
    "memcached_slab_items_outofmemory_total",
    "memcached_slab_items_reclaimed_total",
    "memcached_slab_items_tailrepairs_total",
    "memcached_slab_items_crawler_reclaimed_total",
    "memcached_lru_crawler_enabled",
    "memcached_lru_crawler_starts_total",
    "memcached_lru_crawler_items_checked_total",
    "memcached_lru_crawler_reclaimed_total",
];

/// The app's (`memshard app`, /metrics on its HTTP port).
pub(crate) const APP_METRICS: &[&str] = &[
    "memshard_app_http_requests_total",
    "memshard_app_http_request_duration_seconds_bucket",
    "memshard_app_http_request_duration_seconds_sum",
    "memshard_app_http_request_duration_seconds_count",
    "memshard_app_cache_hits_total",
    "memshard_app_cache_misses_total",
];

/// Whether a dashboard or an alert may name `metric`: one of the tier's,
/// or Prometheus' own `up`.
pub(crate) fn known_metric(metric: &str) -> bool {
    metric == "up" || [PROXY_METRICS, MEMCACHED_EXPORTER_METRICS, APP_METRICS].iter().any(|l| l.contains(&metric))
}

/// PromQL's keywords that are not metric names where an identifier stands.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
];

/// The keywords a parenthesised list of label names follows.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names a PromQL expression selects, in order. Grafana's
/// `label_values(QUERY, LABEL)` is read as its QUERY. A selector by
/// `__name__` is refused: its name could not be checked.
pub(crate) fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    let expr = expr.trim();
    let expr = match expr.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
        Some(inner) => match last_top_level_comma(inner) {
            Some(at) => &inner[..at],
            None => return Ok(Vec::new()),
        },
        None => expr,
    };
    let c: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '"' | '\'' | '`' => i = skip_string(&c, i)?,
            '{' => {
                let end = skip_to(&c, i, '{', '}')?;
                let body: String = c[i..end].iter().collect();
                if body.contains("__name__") {
                    return Err(format!("a selector by __name__ in {expr:?}: name the metric"));
                }
                i = end;
            }
            '[' => i = skip_to(&c, i, '[', ']')?,
            ch if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' => {
                let start = i;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let mut next = i;
                while next < c.len() && c[next].is_whitespace() {
                    next += 1;
                }
                let paren = c.get(next) == Some(&'(');
                // `sum by (x) (...)`: an aggregation before its grouping.
                let rest: String = c[next..].iter().take(8).collect();
                let grouped = ["by", "without"].iter().any(|k| {
                    rest.strip_prefix(k).is_some_and(|r| r.starts_with(|ch: char| ch == '(' || ch.is_whitespace()))
                });
                if LABEL_LISTS.contains(&word.as_str()) {
                    if paren {
                        i = skip_to(&c, next, '(', ')')?;
                    }
                } else if KEYWORDS.contains(&word.as_str()) || paren || grouped {
                    // A keyword, or a function or aggregation (its
                    // arguments are read as the loop goes on).
                } else {
                    names.push(word);
                }
            }
            ch if ch.is_ascii_digit() || ch == '.' => {
                // A number or a duration (1h, 0.99, 1e-3): never a name.
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(names)
}

fn last_top_level_comma(s: &str) -> Option<usize> {
    let (mut depth, mut quoted, mut at) = (0_i32, false, None);
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '(' | '{' | '[' if !quoted => depth += 1,
            ')' | '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => at = Some(i),
            _ => {}
        }
    }
    at
}

/// The index after the string literal opening at `i`.
fn skip_string(c: &[char], i: usize) -> Result<usize, String> {
    let quote = c[i];
    let mut j = i + 1;
    while j < c.len() {
        if c[j] == '\\' && quote != '`' {
            j += 2;
            continue;
        }
        if c[j] == quote {
            return Ok(j + 1);
        }
        j += 1;
    }
    Err(format!("an unterminated string in {:?}", c.iter().collect::<String>()))
}

/// The index after the `close` matching the `open` at `i` (strings skipped).
fn skip_to(c: &[char], i: usize, open: char, close: char) -> Result<usize, String> {
    let mut depth = 0;
    let mut j = i;
    while j < c.len() {
        match c[j] {
            '"' | '\'' | '`' => {
                j = skip_string(c, j)?;
                continue;
            }
            ch if ch == open => depth += 1,
            ch if ch == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Err(format!("an unclosed {open:?} in {:?}", c.iter().collect::<String>()))
}

/// The problems of one expression: it does not read, or names a metric the
/// tier does not export.
pub(crate) fn expr_problems(what: &str, expr: &str) -> Vec<String> {
    match metric_names(expr) {
        Err(e) => vec![format!("{what}: {e}")],
        Ok(names) if names.is_empty() && !expr.trim_start().starts_with("label_values(") => {
            vec![format!("{what}: selects no metric: {expr:?}")]
        }
        Ok(names) => names
            .into_iter()
            .filter(|n| !known_metric(n))
            .map(|n| format!("{what}: unknown metric {n} (not the proxy's, memcached_exporter's or the app's)"))
            .collect(),
    }
}

/// The memshard containers started with `--admin`: (workload, container, port).
fn admin_containers<'a>(m: &'a Manifests) -> Vec<(Workload<'a>, &'a Yaml, Option<i64>)> {
    let mut found = Vec::new();
    for w in m.workloads() {
        for c in w.containers() {
            let argv = Workload::argv(c);
            if !matches!(argv.first().map(String::as_str), Some("proxy" | "server")) {
                continue;
            }
            if let Some(addr) = flag(&argv, "--admin", "--admin") {
                let port = addr.rsplit_once(':').and_then(|(_, p)| p.parse::<i64>().ok());
                found.push((w, c, port));
            }
        }
    }
    found
}

/// The port number a probe's or a Service's `port` names in container `c`.
fn container_port(c: &Yaml, port: &Yaml) -> Option<i64> {
    seq(&c["ports"]).iter().find_map(|p| {
        let number = p["containerPort"].as_i64()?;
        let hit = match port {
            Yaml::Integer(n) => *n == number,
            Yaml::String(name) => p["name"].as_str() == Some(name),
            _ => false,
        };
        hit.then_some(number)
    })
}

/// Whether `probe` is an HTTP GET of `path` on container port `port`.
fn http_probe(c: &Yaml, probe: &str, path: &str, port: i64) -> bool {
    let get = &c[probe]["httpGet"];
    get["path"].as_str() == Some(path) && container_port(c, &get["port"]) == Some(port)
}

/// Every problem of the admin surface, one line each.
pub(crate) fn admin(m: &Manifests) -> Vec<String> {
    let mut problems = Vec::new();
    let admins = admin_containers(m);
    for (w, c, port) in &admins {
        let cid = format!("{} container {}", w.id(), c["name"].as_str().unwrap_or("?"));
        let argv = Workload::argv(c);
        let addr = flag(&argv, "--admin", "--admin").unwrap_or_default();
        let Some(port) = *port else {
            problems.push(format!("{cid}: --admin {addr} has no port"));
            continue;
        };
        if !addr.starts_with("0.0.0.0:") && !addr.starts_with("[::]:") {
            problems.push(format!("{cid}: --admin {addr} does not listen on the pod's address (0.0.0.0)"));
        }
        if container_port(c, &Yaml::String("admin".to_owned())) != Some(port) {
            problems.push(format!("{cid}: --admin port {port} is not its container port named admin"));
        }
        let annotations = labels(&w.doc["spec"]["template"]["metadata"]["annotations"]);
        let want = [
            ("prometheus.io/scrape", "true".to_owned()),
            ("prometheus.io/port", port.to_string()),
            ("prometheus.io/path", "/metrics".to_owned()),
        ];
        for (key, value) in want {
            if annotations.get(key) != Some(&value) {
                problems.push(format!(
                    "{}: pod annotation {key} is {:?}, want {value:?}",
                    w.id(),
                    annotations.get(key)
                ));
            }
        }
        if !http_probe(c, "livenessProbe", "/healthz", port) {
            problems.push(format!("{cid}: livenessProbe is not GET /healthz on the admin port {port}"));
        }
        if !http_probe(c, "readinessProbe", "/readyz", port) {
            problems.push(format!("{cid}: readinessProbe is not GET /readyz on the admin port {port}"));
        }
        if !c["startupProbe"].is_badvalue() && !http_probe(c, "startupProbe", "/healthz", port) {
            problems.push(format!("{cid}: startupProbe is not GET /healthz on the admin port {port}"));
        }
    }
    // Every port named admin (a memshard role's, or an exporter's in its
    // place) is exposed by a Service of its pods, under that name.
    for w in m.workloads() {
        let Some(port) = w.resolve_port(&Yaml::String("admin".to_owned())) else { continue };
        let exposed = m.of_kind("Service").any(|svc| {
            m.selected(&labels(&svc["spec"]["selector"])).is_ok_and(|s| s.id() == w.id())
                && seq(&svc["spec"]["ports"]).iter().any(|p| {
                    p["name"].as_str() == Some("admin")
                        && p["port"].as_i64() == Some(port)
                        && w.resolve_port(&p["targetPort"]) == Some(port)
                })
        });
        if !exposed {
            problems.push(format!("{}: no Service has a port named admin ({port}) targeting its admin port", w.id()));
        }
        let role_has_admin = admins.iter().any(|(a, _, _)| a.id() == w.id());
        let role = w
            .containers()
            .iter()
            .find(|c| matches!(Workload::argv(c).first().map(String::as_str), Some("proxy" | "server")));
        if let Some(c) = role {
            if !role_has_admin && container_port(c, &Yaml::String("admin".to_owned())).is_some() {
                problems
                    .push(format!("{}: a container port named admin, but no --admin: nothing listens there", w.id()));
            }
        }
    }
    // Scrape annotations point at a port some container of the pod has.
    for w in m.workloads() {
        let annotations = labels(&w.doc["spec"]["template"]["metadata"]["annotations"]);
        if annotations.get("prometheus.io/scrape").map(String::as_str) != Some("true") {
            continue;
        }
        let port = annotations.get("prometheus.io/port").and_then(|p| p.parse::<i64>().ok());
        if port.is_none_or(|p| w.resolve_port(&Yaml::Integer(p)).is_none()) {
            problems.push(format!("{}: prometheus.io/port {port:?} is not a container port", w.id()));
        }
    }
    problems
}

/// The admin port of the workload running `memshard <role>`, if it has one.
pub(crate) fn admin_port(m: &Manifests, role: &str) -> Option<i64> {
    admin_containers(m).into_iter().find(|(_, c, _)| Workload::argv(c).first().map(String::as_str) == Some(role))?.2
}

/// The Prometheus Operator objects and the dashboard ConfigMap.
pub(crate) fn monitoring(m: &Manifests) -> Vec<String> {
    let mut problems = Vec::new();
    for sm in m.of_kind("ServiceMonitor") {
        let id = format!("ServiceMonitor/{}", sm["metadata"]["name"].as_str().unwrap_or("?"));
        if sm["apiVersion"].as_str() != Some("monitoring.coreos.com/v1") {
            problems.push(format!("{id}: apiVersion is not monitoring.coreos.com/v1"));
        }
        let selector: Labels = labels(&sm["spec"]["selector"]["matchLabels"]);
        let services: Vec<&Yaml> =
            m.of_kind("Service").filter(|s| selects(&selector, &labels(&s["metadata"]["labels"]))).collect();
        let [svc] = services.as_slice() else {
            problems.push(format!("{id}: selects {} Services, want one", services.len()));
            continue;
        };
        let endpoints = seq(&sm["spec"]["endpoints"]);
        if endpoints.is_empty() {
            problems.push(format!("{id}: no endpoints"));
        }
        for e in endpoints {
            let name = e["port"].as_str().unwrap_or("");
            let port = seq(&svc["spec"]["ports"]).iter().find(|p| p["name"].as_str() == Some(name));
            let target = port.and_then(|p| {
                let w = m.selected(&labels(&svc["spec"]["selector"])).ok()?;
                w.resolve_port(if p["targetPort"].is_badvalue() { &p["port"] } else { &p["targetPort"] })
            });
            if target.is_none() {
                problems.push(format!(
                    "{id}: endpoint port {name:?} is not a port of Service/{} reaching a container",
                    svc["metadata"]["name"].as_str().unwrap_or("?")
                ));
            }
            if e["path"].as_str().unwrap_or("/metrics") != "/metrics" {
                problems.push(format!("{id}: endpoint path {:?} is not /metrics", e["path"].as_str()));
            }
            if e["interval"].as_str().is_none() {
                problems.push(format!("{id}: endpoint {name:?} has no interval"));
            }
        }
    }
    for rule in m.of_kind("PrometheusRule") {
        problems.extend(rule_problems(rule));
    }
    for cm in m.of_kind("ConfigMap") {
        if labels(&cm["metadata"]["labels"]).get("grafana_dashboard").map(String::as_str) != Some("1") {
            continue;
        }
        let id = format!("ConfigMap/{}", cm["metadata"]["name"].as_str().unwrap_or("?"));
        let Some(data) = cm["data"].as_hash() else {
            problems.push(format!("{id}: no data"));
            continue;
        };
        for (key, text) in data {
            match serde_json::from_str::<Value>(text.as_str().unwrap_or("")) {
                Ok(json) => problems.extend(
                    dashboard(&json).into_iter().map(|p| format!("{id} {}: {p}", scalar(key).unwrap_or_default())),
                ),
                Err(e) => problems.push(format!("{id}: {} is not JSON: {e}", scalar(key).unwrap_or_default())),
            }
        }
    }
    problems
}

/// Severities an alert may carry.
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// A PrometheusRule's problems: each rule an alert with an expression over
/// known metrics, a `for`, a severity and a summary.
pub(crate) fn rule_problems(rule: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    let id = format!("PrometheusRule/{}", rule["metadata"]["name"].as_str().unwrap_or("?"));
    if rule["apiVersion"].as_str() != Some("monitoring.coreos.com/v1") {
        problems.push(format!("{id}: apiVersion is not monitoring.coreos.com/v1"));
    }
    let groups = seq(&rule["spec"]["groups"]);
    if groups.is_empty() {
        problems.push(format!("{id}: no groups"));
    }
    let mut seen = BTreeSet::new();
    for g in groups {
        for r in seq(&g["rules"]) {
            let alert = r["alert"].as_str().unwrap_or("?");
            let what = format!("{id} alert {alert}");
            if !seen.insert(alert.to_owned()) {
                problems.push(format!("{what}: twice"));
            }
            problems.extend(expr_problems(&what, r["expr"].as_str().unwrap_or("")));
            if r["for"].as_str().is_none() {
                problems.push(format!("{what}: no `for`"));
            }
            if !r["labels"]["severity"].as_str().is_some_and(|s| SEVERITIES.contains(&s)) {
                problems.push(format!(
                    "{what}: severity {:?} is not one of {SEVERITIES:?}",
                    r["labels"]["severity"].as_str()
                ));
            }
            if r["annotations"]["summary"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{what}: no summary"));
            }
        }
    }
    problems
}

/// The alerts of a PrometheusRule: name -> expression.
pub(crate) fn alerts(rule: &Yaml) -> BTreeMap<String, String> {
    seq(&rule["spec"]["groups"])
        .iter()
        .flat_map(|g| seq(&g["rules"]))
        .filter_map(|r| Some((r["alert"].as_str()?.to_owned(), r["expr"].as_str()?.to_owned())))
        .collect()
}

/// Panel types the dashboard may use (Grafana's core panels).
const PANEL_TYPES: [&str; 7] = ["row", "stat", "timeseries", "table", "bargauge", "state-timeline", "gauge"];

/// The datasource every panel, query and variable names: the dashboard's
/// `DS_PROMETHEUS` variable (Grafana's import and its sidecar both fill it).
pub(crate) const DATASOURCE: &str = "${DS_PROMETHEUS}";

/// A Grafana dashboard model's problems.
pub(crate) fn dashboard(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["title", "uid"] {
        if d[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("no {key}"));
        }
    }
    if d["schemaVersion"].as_i64().is_none_or(|v| v < 30) {
        problems.push(format!("schemaVersion {:?} is older than 30", d["schemaVersion"]));
    }
    if !d["id"].is_null() {
        problems.push("id is set: an import would overwrite another dashboard".to_owned());
    }
    let vars = d["templating"]["list"].as_array().map(Vec::as_slice).unwrap_or_default();
    let ds = vars.iter().find(|v| v["name"] == "DS_PROMETHEUS");
    if !ds.is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus") {
        problems.push("no datasource variable DS_PROMETHEUS of type prometheus".to_owned());
    }
    let uses_ds = |v: &Value| v["datasource"]["uid"] == DATASOURCE && v["datasource"]["type"] == "prometheus";
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let what = format!("variable {}", v["name"].as_str().unwrap_or("?"));
        if !uses_ds(v) {
            problems.push(format!("{what}: datasource is not {DATASOURCE}"));
        }
        let query = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or("");
        problems.extend(expr_problems(&what, query));
    }
    let panels = d["panels"].as_array().map(Vec::as_slice).unwrap_or_default();
    if panels.is_empty() {
        problems.push("no panels".to_owned());
    }
    let mut ids = BTreeSet::new();
    let mut cells: Vec<(String, [i64; 4])> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        let what = format!("panel {title:?}");
        let kind = p["type"].as_str().unwrap_or("");
        if !PANEL_TYPES.contains(&kind) {
            problems.push(format!("{what}: type {kind:?} is not one of {PANEL_TYPES:?}"));
        }
        match p["id"].as_i64() {
            Some(id) if ids.insert(id) => {}
            id => problems.push(format!("{what}: id {id:?} missing or not unique")),
        }
        let g = &p["gridPos"];
        let pos = ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or(-1));
        let [x, y, w, h] = pos;
        if x < 0 || y < 0 || w < 1 || h < 1 || x + w > 24 {
            problems.push(format!("{what}: gridPos {g} is outside the 24-column grid"));
        }
        for (other, [ox, oy, ow, oh]) in &cells {
            if x < ox + ow && ox < &(x + w) && y < oy + oh && oy < &(y + h) {
                problems.push(format!("{what}: overlaps panel {other:?}"));
            }
        }
        cells.push((title.to_owned(), pos));
        if kind == "row" {
            continue;
        }
        if !uses_ds(p) {
            problems.push(format!("{what}: datasource is not {DATASOURCE}"));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{what}: no queries"));
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            let r = t["refId"].as_str().unwrap_or("");
            if r.is_empty() || !refs.insert(r) {
                problems.push(format!("{what}: refId {r:?} missing or not unique"));
            }
            if !uses_ds(t) {
                problems.push(format!("{what} query {r}: datasource is not {DATASOURCE}"));
            }
            problems.extend(expr_problems(&format!("{what} query {r}"), t["expr"].as_str().unwrap_or("")));
        }
    }
    problems
}

/// Every PromQL expression of a dashboard: its panels' queries and its
/// query variables.
pub(crate) fn dashboard_exprs(d: &Value) -> Vec<String> {
    let panels = d["panels"].as_array().into_iter().flatten();
    let queries = panels.flat_map(|p| p["targets"].as_array().into_iter().flatten()).filter_map(|t| t["expr"].as_str());
    let vars = d["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query");
    let var_queries = vars.filter_map(|v| v["query"]["query"].as_str().or(v["query"].as_str()));
    queries.chain(var_queries).map(str::to_owned).collect()
}
