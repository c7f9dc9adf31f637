//! Replays the golden files recorded from the real nutcracker (`testdata/*.txt`, see
//! `testdata/README.md`): every key of every pool must land on the server nutcracker chose, and
//! the servers' identities and order must be the ones nutcracker reported.

use std::path::{Path, PathBuf};

use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};

/// One parsed golden file.
struct Golden {
    file: String,
    hash_tag: Option<[u8; 2]>,
    ejected: Option<usize>,
    servers: Vec<ServerSpec>,
    /// Server identities in nutcracker's internal order, from its stats port.
    order: Vec<String>,
    columns: Vec<(Distribution, HashKind)>,
    rows: Vec<(Vec<u8>, Vec<usize>)>,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Parses a twemproxy `servers:` entry the way `conf_add_server` does: from the end, the last
/// space separates the name, the last `:` the weight, the next `:` the port (TCP only).
fn parse_entry(entry: &str) -> ServerSpec {
    let (rest, name) = match entry.rsplit_once(' ') {
        Some((rest, name)) => (rest, Some(name.to_owned())),
        None => (entry, None),
    };
    let (addr, weight) = rest.rsplit_once(':').expect("weight");
    let weight: u32 = weight.parse().expect("numeric weight");
    let mut spec = if addr.starts_with('/') {
        ServerSpec::unix(addr, weight)
    } else {
        let (host, port) = addr.rsplit_once(':').expect("port");
        ServerSpec::tcp(host, port.parse().expect("numeric port"), weight)
    };
    spec.name = name;
    spec
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex {text}");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn load(path: &Path) -> Golden {
    let text = std::fs::read_to_string(path).expect("read golden file");
    let mut golden = Golden {
        file: path.file_name().expect("file name").to_string_lossy().into_owned(),
        hash_tag: None,
        ejected: None,
        servers: Vec::new(),
        order: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (head, rest) = line.split_once('\t').expect("tab-separated line");
        match head {
            "scenario" => {}
            "hash_tag" if rest == "-" => {}
            "hash_tag" => golden.hash_tag = Some(rest.as_bytes().try_into().expect("2-byte tag")),
            "ejected" => golden.ejected = Some(rest.parse().expect("index")),
            "server" => {
                let (index, entry) = rest.split_once('\t').expect("server line");
                assert_eq!(index.parse::<usize>().expect("index"), golden.servers.len());
                golden.servers.push(parse_entry(entry));
            }
            "order" => golden.order = rest.split('\t').map(str::to_owned).collect(),
            "columns" => {
                golden.columns = rest
                    .split(' ')
                    .map(|col| {
                        let (dist, hash) = col.split_once('_').expect("dist_hash column");
                        (dist.parse().expect("distribution"), hash.parse().expect("hash"))
                    })
                    .collect();
            }
            hex => {
                let cells: Vec<usize> = rest.split(' ').map(|c| c.parse().expect("server index")).collect();
                assert_eq!(cells.len(), golden.columns.len(), "{line}");
                golden.rows.push((unhex(hex), cells));
            }
        }
    }
    golden
}

fn all_golden() -> Vec<Golden> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

fn ring(golden: &Golden, dist: Distribution, hash: HashKind) -> Ring {
    Ring::build_live(&golden.servers, |i| Some(i) != golden.ejected, hash, dist, golden.hash_tag)
        .expect("valid server set")
}

#[test]
fn every_golden_vector_is_reproduced() {
    let mut checked = 0usize;
    let mut failures = Vec::new();
    for golden in all_golden() {
        for (col, &(dist, hash)) in golden.columns.iter().enumerate() {
            let ring = ring(&golden, dist, hash);
            let wrong: Vec<String> = golden
                .rows
                .iter()
                .filter(|(key, cells)| ring.server_for(key) != cells[col])
                .map(|(key, cells)| {
                    format!(
                        "{:?}: nutcracker {}, ring {}",
                        String::from_utf8_lossy(key),
                        cells[col],
                        ring.server_for(key)
                    )
                })
                .collect();
            checked += golden.rows.len();
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} {dist}/{hash}: {} of {} keys differ, e.g. {:?}",
                    golden.file,
                    wrong.len(),
                    golden.rows.len(),
                    &wrong[..wrong.len().min(3)]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 200_000, "only {checked} vectors checked");
}

#[test]
fn server_identities_and_order_are_nutcrackers() {
    for golden in all_golden() {
        let ring = Ring::build(&golden.servers, HashKind::Fnv1a64, Distribution::Ketama, None).expect("valid");
        let ours: Vec<String> = ring.live_servers().iter().map(|&i| golden.servers[i].ring_name()).collect();
        assert_eq!(ours, golden.order, "{}", golden.file);
    }
}

#[test]
fn golden_files_cover_the_planned_scenarios() {
    let all = all_golden();
    let names: Vec<&str> = all.iter().map(|g| g.file.as_str()).collect();
    for expected in ["three", "twenty_five", "weights", "named", "port_11211", "hash_tag", "ejected", "tie", "unix"] {
        assert!(names.contains(&format!("{expected}.txt").as_str()), "missing {expected}.txt in {names:?}");
    }
    for golden in &all {
        assert!(golden.rows.len() >= 1000, "{}: {} keys", golden.file, golden.rows.len());
        // Every hash with both distributions; the ejected scenario lacks ketama/crc32, under which
        // no key reaches the dead server, so nutcracker could not be made to eject it.
        let wanted = if golden.ejected.is_some() { 23 } else { 24 };
        assert_eq!(golden.columns.len(), wanted, "{}", golden.file);
        // Every server owns some key under the default hash (except the ejected one).
        let col = golden
            .columns
            .iter()
            .position(|&c| c == (Distribution::Ketama, HashKind::Fnv1a64))
            .expect("default column");
        for server in (0..golden.servers.len()).filter(|&s| Some(s) != golden.ejected) {
            assert!(
                golden.rows.iter().any(|(_, cells)| cells[col] == server),
                "{}: server {server} owns no key",
                golden.file
            );
        }
    }
}

#[test]
fn reference_samples_are_in_the_golden_data() {
    // twemproxy.md §2.6: fnv1a_64 + ketama over 127.0.0.1:21211..21213.
    let golden = load(&testdata().join("three.txt"));
    let col = golden.columns.iter().position(|&c| c == (Distribution::Ketama, HashKind::Fnv1a64)).expect("column");
    let expect = [
        ("foo", 0),
        ("bar", 2),
        ("apple", 1),
        ("a", 0),
        ("user:1000", 0),
        ("caf\u{e9}", 2),
        ("{user1}:a", 0),
        ("12345", 0),
    ];
    for (key, server) in expect {
        let row = golden.rows.iter().find(|(k, _)| k == key.as_bytes()).expect("sample key recorded");
        assert_eq!(row.1[col], server, "{key}");
    }
    for i in 0..10 {
        let key = format!("key{i}");
        let row = golden.rows.iter().find(|(k, _)| k == key.as_bytes()).expect("sample key recorded");
        assert_eq!(row.1[col], 1, "{key}");
    }
}
