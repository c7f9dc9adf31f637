//! `memshard ring`: key placement under a pool file, and the remap fraction
//! of a topology change.

use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use std::process::Command;

fn pool_file(tag: &str, shards: usize) -> std::path::PathBuf {
    pool_file_with(tag, shards, "")
}

/// A pool file of `shards` StatefulSet pods, with `extra` keys.
fn pool_file_with(tag: &str, shards: usize, extra: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("memshard-ring-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut y =
        format!("memcached:\n  listen: 0.0.0.0:11211\n  hash: fnv1a_64\n  distribution: ketama\n{extra}  servers:\n");
    for i in 0..shards {
        y.push_str(&format!("   - sharded-memcache-{i}.memcache:11211:1\n"));
    }
    let f = dir.join("pool.yml");
    std::fs::write(&f, y).expect("write");
    f
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memshard")).arg("ring").args(args).output().expect("run");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn places_keys_where_the_ring_does() {
    let f = pool_file("place", 3);
    let keys = ["cat", "dog", "user:42", "ключ"];
    let mut args = vec!["-c", f.to_str().expect("utf8")];
    args.extend(keys);
    let (code, out) = run(&args);
    assert_eq!(code, Some(0), "{out}");
    let specs: Vec<ServerSpec> =
        (0..3).map(|i| ServerSpec::tcp(format!("sharded-memcache-{i}.memcache"), 11211, 1)).collect();
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    for (line, key) in out.lines().zip(keys) {
        let expect = format!("{key}\tsharded-memcache-{}.memcache", ring.server_for(key.as_bytes()));
        assert_eq!(line, expect);
    }
    assert_eq!(out.lines().count(), keys.len());
}

/// With `replicas: 3` each key's line names its three owners: the server
/// twemproxy picks, then the next distinct ones clockwise.
#[test]
fn with_replicas_every_owner_is_printed_in_order() {
    let f = pool_file_with("owners", 5, "  replicas: 3\n");
    let keys = ["cat", "dog", "user:42"];
    let mut args = vec!["-c", f.to_str().expect("utf8")];
    args.extend(keys);
    let (code, out) = run(&args);
    assert_eq!(code, Some(0), "{out}");
    let specs: Vec<ServerSpec> =
        (0..5).map(|i| ServerSpec::tcp(format!("sharded-memcache-{i}.memcache"), 11211, 1)).collect();
    let ring = Ring::build(&specs, HashKind::Fnv1a64, Distribution::Ketama, None).expect("ring");
    for (line, key) in out.lines().zip(keys) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert_eq!(fields[0], key);
        assert_eq!(fields[1], format!("sharded-memcache-{}.memcache", ring.server_for(key.as_bytes())), "{line}");
        let distinct: std::collections::HashSet<&&str> = fields[1..].iter().collect();
        assert_eq!(distinct.len(), 3, "three distinct owners: {line}");
        let walked: Vec<String> =
            ring.servers_for(key.as_bytes(), 3).map(|i| format!("sharded-memcache-{i}.memcache")).collect();
        assert_eq!(fields[1..], walked.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    }
}

#[test]
fn remap_fraction_of_adding_a_shard() {
    let three = pool_file("three", 3);
    let four = pool_file("four", 4);
    let (code, out) =
        run(&["-c", three.to_str().expect("utf8"), "--compare", four.to_str().expect("utf8"), "-n", "20000"]);
    assert_eq!(code, Some(0), "{out}");
    // "moved M of 20000 sample keys (P%)": ketama moves about 1/4 of the keys.
    let moved: f64 = out.split_whitespace().nth(1).and_then(|m| m.parse().ok()).expect("count");
    let frac = moved / 20000.0;
    assert!((0.15..0.35).contains(&frac), "{out}");
    let (code, out) =
        run(&["-c", three.to_str().expect("utf8"), "--compare", three.to_str().expect("utf8"), "-n", "1000"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("moved 0 of 1000"), "{out}");
}

#[test]
fn usage_errors_exit_two() {
    let f = pool_file("usage", 3);
    let (code, _) = run(&["-c", f.to_str().expect("utf8")]);
    assert_eq!(code, Some(2));
    let (code, out) = run(&["-c", "/nonexistent/pool.yml", "k"]);
    assert_eq!(code, Some(2), "{out}");
    // A pool that discovers its servers has no ring to print: say so.
    let discovers = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/k8s/overlays/discovery/nutcracker.yml");
    let (code, out) = run(&["-c", discovers, "k"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("finds its servers in DNS (dnssrv+_memcache._tcp.memcache)"), "{out}");
}

/// A reader that has gone away (`memshard ring … | head -1`) ends the output
/// quietly: exit 0 and no panic message, as other Unix tools do.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    use std::process::Stdio;
    let f = pool_file("pipe", 3);
    let keys: Vec<String> = (0..20_000).map(|i| format!("key-{i}")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_memshard"))
        .arg("ring")
        .arg("-c")
        .arg(&f)
        .args(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the read end before the output (about 600 KB, more than a pipe
    // holds) is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
