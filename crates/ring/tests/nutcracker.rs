//! Differential test against the real nutcracker, on fresh random keys and server names each run
//! (the golden files pin fixed ones). Skipped loudly when nutcracker is not installed, and a
//! failure then if `MEMSHARD_REQUIRE_PEERS=1`.
//!
//! Backends are unix sockets (no ports to collide); one server has no backend at all and, in the
//! `ej_` pools, is ejected by nutcracker's auto-eject, which `Ring::build_live` must mirror.

#[allow(dead_code, unreachable_pub)] // shared with the golden generator, which uses all of it
#[path = "../examples/golden/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use harness::{Addr, Backends, Nutcracker, Pool, find_nutcracker, random_keys};
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[allow(clippy::print_stderr)] // a skipped peer test must say so in the test output
fn nutcracker_or_skip() -> Option<PathBuf> {
    if let Some(bin) = find_nutcracker() {
        return Some(bin);
    }
    if std::env::var("MEMSHARD_REQUIRE_PEERS").is_ok_and(|v| v.trim() == "1") {
        panic!(
            "nutcracker is not installed and MEMSHARD_REQUIRE_PEERS=1 forbids skipping (apt-get install nutcracker)"
        );
    }
    eprintln!("SKIPPED: nutcracker_differential: peer nutcracker not installed");
    None
}

#[test]
fn nutcracker_differential() {
    let Some(bin) = nutcracker_or_skip() else { return };
    let seed = std::env::var("MEMSHARD_RING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    eprintln!("nutcracker_differential: seed {seed} (rerun with MEMSHARD_RING_SEED={seed})");
    let mut rng = SmallRng::seed_from_u64(seed);

    let pid = std::process::id();
    let backend_dir = std::env::temp_dir().join(format!("memshard-ring-diff-{pid}-backends"));
    std::fs::create_dir_all(&backend_dir).expect("backend dir");
    // Six live servers: unix sockets without names (identity "path:") and with random names,
    // random weights, in random config order; plus one dead server for the ejection pools.
    let mut entries = Vec::new();
    let mut addrs = Vec::new();
    let mut specs = Vec::new();
    for i in 0..6 {
        let path = backend_dir.join(format!("b{i}.sock")).to_string_lossy().into_owned();
        let weight = rng.random_range(1..=3u32);
        let mut spec = ServerSpec::unix(&path, weight);
        let mut entry = format!("{path}:{weight}");
        if i % 2 == 1 {
            let name: String = (0..rng.random_range(1..12)).map(|_| rng.random_range(b'a'..=b'z') as char).collect();
            let name = format!("{name}{i}");
            entry = format!("{entry} {name}");
            spec = spec.named(name);
        }
        entries.push(entry);
        addrs.push(Addr::Unix(PathBuf::from(&path)));
        specs.push(spec);
    }
    let dead_path = backend_dir.join("dead.sock").to_string_lossy().into_owned();
    let backends = Backends::start(&addrs).expect("fake backends");

    let mut pools = Vec::new();
    for (prefix, dead) in [("p", false), ("ej", true)] {
        for dist in ["ketama", "modula"] {
            for hash in HashKind::ALL {
                let mut servers = entries.clone();
                if dead {
                    servers.push(format!("{dead_path}:1"));
                }
                pools.push(Pool {
                    name: format!("{prefix}_{dist}_{hash}"),
                    hash: hash.to_string(),
                    distribution: dist.to_owned(),
                    hash_tag: Some("{}".to_owned()),
                    servers,
                    auto_eject: dead,
                });
            }
        }
    }
    let work = std::env::temp_dir().join(format!("memshard-ring-diff-{pid}"));
    let mut nutcracker = Nutcracker::start(&bin, &work, &pools).expect("start nutcracker");

    let mut keys = random_keys(&mut rng, 400);
    keys.extend((0..100).map(|i| format!("x{}{{t{}}}y", i, i % 17).into_bytes()));
    let mut with_dead = specs.clone();
    with_dead.push(ServerSpec::unix(&dead_path, 1));
    let mut failures = Vec::new();
    let mut ejection_pools = 0;
    for pool in &pools {
        let ejecting = pool.auto_eject;
        if ejecting {
            if !nutcracker.eject_dead(&backends, &pool.name, &keys).expect("eject") {
                continue; // no key reaches the dead server (ketama + crc32)
            }
            ejection_pools += 1;
        }
        let routed = nutcracker.route(&backends, &pool.name, &keys).expect("route");
        let hash: HashKind = pool.hash.parse().expect("hash");
        let dist: Distribution = pool.distribution.parse().expect("distribution");
        let servers = if ejecting { &with_dead } else { &specs };
        let ring = Ring::build_live(servers, |i| i < specs.len(), hash, dist, Some(*b"{}")).expect("ring");
        let wrong = keys.iter().zip(&routed).filter(|(key, server)| ring.server_for(key) != **server).count();
        if wrong > 0 {
            failures.push(format!("{}: {wrong} of {} keys differ", pool.name, keys.len()));
        }
    }
    drop(nutcracker);
    drop(backends);
    let _ = std::fs::remove_dir_all(&backend_dir);
    assert!(ejection_pools >= 20, "only {ejection_pools} pools ejected their dead server");
    assert!(failures.is_empty(), "seed {seed}: entries {entries:?}\n{}", failures.join("\n"));
}
