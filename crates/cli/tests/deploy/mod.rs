//! The Kubernetes manifests as data: a kustomize directory read from its
//! files, or a rendered multi-document stream (`kubectl kustomize`,
//! `helm template`), and the cross-object invariants they must hold.
//!
//! The checkers return a list of problems instead of panicking, so a test
//! can show that a mutated document is reported.

pub(crate) mod checks;
pub(crate) mod observability;
pub(crate) mod system;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlLoader};

/// The label keys every selector uses, and only those.
pub(crate) const SELECTOR_KEYS: [&str; 3] =
    ["app.kubernetes.io/component", "app.kubernetes.io/instance", "app.kubernetes.io/name"];

pub(crate) type Labels = BTreeMap<String, String>;

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
    cli.ancestors().nth(2).unwrap_or(cli).to_path_buf()
}

/// A kustomize directory's files by name: kustomization.yaml, its
/// `resources` and the files its `configMapGenerator`s read.
pub(crate) fn kustomize_sources(dir: &Path) -> BTreeMap<String, String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("read {}/{name}: {e}", dir.display()))
    };
    let kustomization = read("kustomization.yaml");
    let k = parse_one(&kustomization, "kustomization.yaml");
    let mut files = BTreeMap::new();
    for name in strings(&k["resources"]) {
        files.insert(name.to_owned(), read(name));
    }
    for generator in seq(&k["configMapGenerator"]) {
        for file in strings(&generator["files"]) {
            files.insert(file.to_owned(), read(file));
        }
    }
    files.insert("kustomization.yaml".to_owned(), kustomization);
    files
}

/// A set of Kubernetes objects.
#[derive(Debug, Clone)]
pub(crate) struct Manifests {
    pub(crate) docs: Vec<Yaml>,
}

impl Manifests {
    /// The objects a kustomize directory without patches produces: its
    /// resources as written, plus one ConfigMap per generator, named without
    /// kustomize's hash suffix (references in the resources use that name).
    pub(crate) fn from_kustomize(files: &BTreeMap<String, String>) -> Manifests {
        let k = parse_one(&files["kustomization.yaml"], "kustomization.yaml");
        assert!(k["patches"].is_badvalue(), "kustomization.yaml has patches: read the rendered output instead");
        let mut docs = Vec::new();
        for name in strings(&k["resources"]) {
            docs.extend(parse_all(&files[name], name));
        }
        for generator in seq(&k["configMapGenerator"]) {
            let name = generator["name"].as_str().expect("configMapGenerator without a name");
            let mut data = Hash::new();
            for file in strings(&generator["files"]) {
                data.insert(Yaml::String(file.to_owned()), Yaml::String(files[file].clone()));
            }
            let labels = generator["options"]["labels"].clone();
            let mut metadata = Hash::new();
            metadata.insert(s("name"), s(name));
            if !labels.is_badvalue() {
                metadata.insert(s("labels"), labels);
            }
            let mut cm = Hash::new();
            cm.insert(s("apiVersion"), s("v1"));
            cm.insert(s("kind"), s("ConfigMap"));
            cm.insert(s("metadata"), Yaml::Hash(metadata));
            cm.insert(s("data"), Yaml::Hash(data));
            docs.push(Yaml::Hash(cm));
        }
        Manifests { docs }
    }

    /// The objects of a rendered multi-document YAML stream.
    pub(crate) fn from_rendered(text: &str, what: &str) -> Manifests {
        Manifests { docs: parse_all(text, what) }
    }

    pub(crate) fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Yaml> + 'a {
        self.docs.iter().filter(move |d| d["kind"].as_str() == Some(kind))
    }

    pub(crate) fn get(&self, kind: &str, name: &str) -> Option<&Yaml> {
        self.docs.iter().find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
    }

    /// Deployments and StatefulSets.
    pub(crate) fn workloads(&self) -> Vec<Workload<'_>> {
        self.docs
            .iter()
            .filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "StatefulSet")))
            .map(|doc| Workload { doc })
            .collect()
    }

    /// The workload whose pods `selector` selects, when exactly one does.
    pub(crate) fn selected(&self, selector: &Labels) -> Result<Workload<'_>, String> {
        let hits: Vec<_> = self.workloads().into_iter().filter(|w| selects(selector, &w.pod_labels())).collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("selects no pods ({selector:?})")),
            many => Err(format!("selects the pods of {} workloads: {}", many.len(), names(many))),
        }
    }
}

fn names(ws: &[Workload<'_>]) -> String {
    ws.iter().map(|w| w.id()).collect::<Vec<_>>().join(", ")
}

/// A Deployment or StatefulSet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload<'a> {
    pub(crate) doc: &'a Yaml,
}

impl<'a> Workload<'a> {
    pub(crate) fn kind(&self) -> &'a str {
        self.doc["kind"].as_str().unwrap_or("?")
    }
    pub(crate) fn name(&self) -> &'a str {
        self.doc["metadata"]["name"].as_str().unwrap_or("?")
    }
    pub(crate) fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
    pub(crate) fn pod_spec(&self) -> &'a Yaml {
        &self.doc["spec"]["template"]["spec"]
    }
    pub(crate) fn pod_labels(&self) -> Labels {
        labels(&self.doc["spec"]["template"]["metadata"]["labels"])
    }
    pub(crate) fn containers(&self) -> &'a [Yaml] {
        seq(&self.pod_spec()["containers"])
    }
    /// The container port `target` (a number or a port name) names, in any
    /// container of the pod.
    pub(crate) fn resolve_port(&self, target: &Yaml) -> Option<i64> {
        self.containers().iter().flat_map(|c| seq(&c["ports"])).find_map(|p| {
            let number = p["containerPort"].as_i64()?;
            let hit = match target {
                Yaml::Integer(n) => *n == number,
                Yaml::String(name) => p["name"].as_str() == Some(name),
                _ => false,
            };
            hit.then_some(number)
        })
    }
    /// The container's argv with a leading `memshard` dropped: the image's
    /// entrypoint is `memshard`, so `args` alone start with the role.
    pub(crate) fn argv(container: &Yaml) -> Vec<String> {
        let mut argv: Vec<String> =
            strings(&container["command"]).into_iter().chain(strings(&container["args"])).map(str::to_owned).collect();
        if argv.first().is_some_and(|a| a == "memshard" || a.ends_with("/memshard")) {
            argv.remove(0);
        }
        argv
    }
    /// The first container whose argv starts with `role` (`app`, `proxy`).
    pub(crate) fn role_container(&self, role: &str) -> Option<&'a Yaml> {
        self.containers().iter().find(|c| Self::argv(c).first().map(String::as_str) == Some(role))
    }
}

/// Whether a label selector (matchLabels) selects pods with `labels`. An
/// empty selector selects nothing here: none of ours may be empty.
pub(crate) fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A string-to-string mapping (labels, matchLabels); anything else is empty.
pub(crate) fn labels(y: &Yaml) -> Labels {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?)))
                .collect::<BTreeMap<String, String>>()
        })
        .unwrap_or_default()
}

/// A scalar as text (ports and versions may be written unquoted).
pub(crate) fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A sequence's items; anything else is empty.
pub(crate) fn seq(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or_default()
}

/// A sequence's string items.
pub(crate) fn strings(y: &Yaml) -> Vec<&str> {
    seq(y).iter().filter_map(Yaml::as_str).collect()
}

/// The value after `-x VALUE`, `--long VALUE` or `--long=VALUE`.
pub(crate) fn flag(argv: &[String], short: &str, long: &str) -> Option<String> {
    let prefix = format!("{long}=");
    argv.iter().enumerate().find_map(|(i, a)| {
        if a == short || a == long { argv.get(i + 1).cloned() } else { a.strip_prefix(&prefix).map(str::to_owned) }
    })
}

/// An environment variable's literal value in a container.
pub(crate) fn env(container: &Yaml, name: &str) -> Option<String> {
    seq(&container["env"]).iter().find(|e| e["name"].as_str() == Some(name)).and_then(|e| scalar(&e["value"]))
}

/// A memory quantity in bytes (`408Mi`, `1Gi`, `512M`, `1048576`).
pub(crate) fn bytes(q: &Yaml) -> Option<u64> {
    let text = scalar(q)?;
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n.to_owned(), *unit)))
        .unwrap_or((text, 1));
    number.parse::<u64>().ok().map(|n| n * unit)
}

fn s(text: &str) -> Yaml {
    Yaml::String(text.to_owned())
}

fn parse_all(text: &str, what: &str) -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn parse_one(text: &str, what: &str) -> Yaml {
    let mut docs = parse_all(text, what);
    assert_eq!(docs.len(), 1, "{what} should hold one document");
    docs.remove(0)
}
