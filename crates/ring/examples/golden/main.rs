//! Records golden key → server vectors from the real nutcracker into `crates/ring/testdata/`.
//!
//! ```text
//! cargo run -p memshard-ring --example golden [-- OUT_DIR]
//! ```
//!
//! For each scenario (a server set, optionally a hash tag) it starts fake backends at fixed
//! loopback addresses, one nutcracker with a pool per hash × {ketama, modula}, sends the
//! scenario's keys through every pool and writes one file: the servers, then one line per key with
//! the config index of the server each pool sent it to. See `testdata/README.md`.
//!
//! The addresses are fixed (not ephemeral) so that regenerating gives the same files; if one is
//! taken the generator stops and says which.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

mod harness;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use harness::{Addr, Backends, Nutcracker, Pool, find_nutcracker, hex, random_keys};
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const HASHES: [&str; 12] = [
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
];
const DISTRIBUTIONS: [&str; 2] = ["ketama", "modula"];

/// Directory of the unix-socket backends of the `unix` scenario; part of the servers' identity,
/// so it is fixed.
const UNIX_DIR: &str = "/tmp/memshard-ring-golden";

/// Server names of the `tie` scenario, in config order. Found by searching names `tie<i>` for
/// equal ketama point values: "tie253" and "tie397" share 667653269, "tie36" and "tie1312"
/// share 1622176544.
const TIE_NAMES: [&str; 4] = ["tie397", "tie1312", "tie253", "tie36"];

/// Keys that land exactly on a continuum tie of the `tie` scenario, a few per hash function:
/// keys whose hash lies between the previous point and the tied value. Our ring only *chooses*
/// the keys; nutcracker decides where they go.
fn tie_keys() -> Vec<Vec<u8>> {
    let specs: Vec<ServerSpec> = TIE_NAMES.iter().map(|&name| ServerSpec::tcp("127.0.0.1", 1, 1).named(name)).collect();
    let mut keys = Vec::new();
    for hash in HashKind::ALL {
        let Ok(ring) = Ring::build(&specs, hash, Distribution::Ketama, None) else { continue };
        let points = ring.continuum();
        for (at, pair) in points.windows(2).enumerate() {
            if pair[0].value != pair[1].value || pair[0].server == pair[1].server {
                continue;
            }
            let tie = pair[0].value;
            let below = points[..at].iter().rev().map(|p| p.value).find(|&v| v < tie).unwrap_or(0);
            // Bounded search: the window is about 2^32 / 640 wide, so ~640 tries per hit.
            let mut found = 0;
            for j in 0..2_000_000u32 {
                let key = format!("tie:{hash}:{j}").into_bytes();
                let h = hash.hash(&key);
                if h > below && h <= tie {
                    keys.push(key);
                    found += 1;
                    if found == 4 {
                        break;
                    }
                }
            }
        }
    }
    keys
}

/// One golden file's worth of configuration.
struct Scenario {
    name: &'static str,
    hash_tag: Option<&'static str>,
    /// `(backend address, servers: entry)` in config order.
    servers: Vec<(Addr, String)>,
    /// Random keys on top of the fixed ones.
    random_keys: usize,
    /// Keys with hash tags in them (for the hash_tag scenario).
    tagged_keys: usize,
    /// Config index of a server with no backend behind it, ejected before the keys are sent.
    dead: Option<usize>,
}

fn tcp(ip: &str, port: u16, weight: u32, name: Option<&str>) -> (Addr, String) {
    let entry = match name {
        Some(name) => format!("{ip}:{port}:{weight} {name}"),
        None => format!("{ip}:{port}:{weight}"),
    };
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap_or_else(|e| panic!("{ip}:{port}: {e}"));
    (Addr::Tcp(addr), entry)
}

fn scenarios() -> Vec<Scenario> {
    let three = |base: u16| (0..3).map(|i| tcp("127.0.0.1", base + i, 1, None)).collect::<Vec<_>>();
    vec![
        // The reference's sample set, so its published samples (apple → 1, …) are covered too.
        Scenario {
            name: "three",
            hash_tag: None,
            servers: three(21211),
            random_keys: 1500,
            tagged_keys: 0,
            dead: None,
        },
        // 25 equal servers: f32 rounding gives 156 points each instead of 160.
        Scenario {
            name: "twenty_five",
            hash_tag: None,
            servers: (0..25).map(|i| tcp("127.0.0.1", 27111 + i, 1, None)).collect(),
            random_keys: 1000,
            tagged_keys: 0,
            dead: None,
        },
        // Unequal weights: ketama point shares, modula runs.
        Scenario {
            name: "weights",
            hash_tag: None,
            servers: [1, 2, 3, 5].iter().zip(27141..).map(|(&w, port)| tcp("127.0.0.1", port, w, None)).collect(),
            random_keys: 1500,
            tagged_keys: 0,
            dead: None,
        },
        // Names (not addresses) are the identity; config order is not sort order; weights count.
        Scenario {
            name: "named",
            hash_tag: None,
            servers: [("zeta", 1), ("alpha9", 1), ("alpha10", 2), ("b", 1)]
                .iter()
                .zip(27151..)
                .map(|(&(name, w), port)| tcp("127.0.0.1", port, w, Some(name)))
                .collect(),
            random_keys: 1500,
            tagged_keys: 0,
            dead: None,
        },
        // Port 11211 servers are named by host alone, which also changes the sort order.
        Scenario {
            name: "port_11211",
            hash_tag: None,
            servers: vec![
                tcp("127.77.0.10", 11211, 1, None),
                tcp("127.0.0.1", 27171, 1, None),
                tcp("127.77.0.2", 11211, 1, None),
                tcp("127.77.0.1", 11211, 1, None),
            ],
            random_keys: 1500,
            tagged_keys: 0,
            dead: None,
        },
        // hash_tag "{}": only the bytes between the braces are hashed.
        Scenario {
            name: "hash_tag",
            hash_tag: Some("{}"),
            servers: three(27161),
            random_keys: 1000,
            tagged_keys: 800,
            dead: None,
        },
        // auto_eject_hosts with one dead server of 26: the ring is rebuilt from the 25 live ones,
        // so every live server drops from 160 to 156 points (the f32 case again).
        Scenario {
            name: "ejected",
            hash_tag: None,
            servers: (0..26).map(|i| tcp("127.0.0.1", 27201 + i, 1, None)).collect(),
            random_keys: 1000,
            tagged_keys: 0,
            dead: Some(7),
        },
        // Four names whose continua share two point values (tie253/tie397 and tie36/tie1312),
        // listed against their sort order, plus keys that land exactly on those ties: pins down
        // which server wins a tie (twemproxy.md calls it unspecified: it depends on qsort).
        Scenario {
            name: "tie",
            hash_tag: None,
            servers: TIE_NAMES.iter().zip(27231..).map(|(&name, port)| tcp("127.0.0.1", port, 1, Some(name))).collect(),
            random_keys: 1000,
            tagged_keys: 0,
            dead: None,
        },
        // Unix-socket servers are named "path:" with a trailing colon.
        Scenario {
            name: "unix",
            hash_tag: None,
            servers: (0..3)
                .map(|i| {
                    let path = format!("{UNIX_DIR}/s{i}.sock");
                    (Addr::Unix(PathBuf::from(&path)), format!("{path}:1"))
                })
                .collect(),
            random_keys: 1200,
            tagged_keys: 0,
            dead: None,
        },
    ]
}

/// Keys every scenario routes: the reference's samples, edge bytes and hash-tag edge cases.
fn fixed_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = [
        "foo",
        "bar",
        "apple",
        "a",
        "user:1000",
        "caf\u{e9}",
        "{user1}:a",
        "user:{user1}:b",
        "12345",
        "{}x",
        "a{b",
        "{",
        "}",
        "x}{",
        "{{a}}",
        "a{}{b}",
        "{a}",
        "}{a}",
        "\u{1F600}",
        "placeholder",
    ]
    .iter()
    .map(|k| k.as_bytes().to_vec())
    .collect();
    keys.extend((0..10).map(|i| format!("key{i}").into_bytes()));
    keys.extend((0..20).map(|i| format!("m{i}").into_bytes()));
    keys.push(vec![0x80]);
    keys.push(vec![0xff]);
    keys.push(vec![0xff; 250]);
    keys.push(vec![b'k'; 250]);
    for len in 1..=13 {
        // Every tail length of the block hashes (hsieh, murmur, jenkins), with high bytes.
        keys.push((0..len).map(|i| 0xf0 + i as u8).collect());
    }
    keys
}

/// Keys with a `{…}` span somewhere, including the edge cases around empty spans.
fn tagged_keys(rng: &mut SmallRng, n: usize) -> Vec<Vec<u8>> {
    use rand::Rng;
    let tags = random_keys(rng, n / 4 + 1);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let tag = tags[i % tags.len()].iter().copied().filter(|&b| b != b'{' && b != b'}').collect::<Vec<u8>>();
        let prefix = format!("p{}", rng.random_range(0..1000u32));
        let suffix = format!("s{}", rng.random_range(0..1000u32));
        let mut key = Vec::new();
        match i % 6 {
            0 => key.extend([b"{".as_slice(), &tag, b"}", suffix.as_bytes()].concat()),
            1 => key.extend([prefix.as_bytes(), b"{", &tag, b"}", suffix.as_bytes()].concat()),
            2 => key.extend([prefix.as_bytes(), b"{}", &tag, suffix.as_bytes()].concat()),
            3 => key.extend([prefix.as_bytes(), b"{", &tag].concat()),
            4 => key.extend([prefix.as_bytes(), b"}", &tag, b"{", suffix.as_bytes(), b"}"].concat()),
            _ => key.extend([prefix.as_bytes(), b"{{", &tag, b"}}"].concat()),
        }
        key.truncate(250);
        keys.push(key);
    }
    keys
}

fn run(out_dir: &std::path::Path) -> Result<(), String> {
    let bin = find_nutcracker().ok_or("nutcracker is not installed (apt-get install nutcracker)")?;
    let version = std::process::Command::new(&bin)
        .arg("-V")
        .output()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            let first = String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_owned();
            first.trim_start_matches("This is ").to_owned()
        })
        .unwrap_or_default();
    std::fs::create_dir_all(UNIX_DIR).map_err(|e| format!("{UNIX_DIR}: {e}"))?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    for (seed, scenario) in scenarios().into_iter().enumerate() {
        let mut rng = SmallRng::seed_from_u64(0x6d73_5f72_696e_6700 + seed as u64);
        let mut keys = fixed_keys();
        keys.extend(random_keys(&mut rng, scenario.random_keys));
        keys.extend(tagged_keys(&mut rng, scenario.tagged_keys));
        if scenario.name == "tie" {
            keys.extend(tie_keys());
        }
        let mut distinct = std::collections::HashSet::new();
        keys.retain(|k| distinct.insert(k.clone()));

        // The dead server's address gets no backend; make sure nothing else answers there.
        let live: Vec<Addr> = scenario
            .servers
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != scenario.dead)
            .map(|(_, (a, _))| a.clone())
            .collect();
        if let Some((Addr::Tcp(dead), _)) = scenario.dead.map(|i| &scenario.servers[i]) {
            std::net::TcpListener::bind(dead)
                .map_err(|e| format!("{}: dead address {dead} is in use: {e}", scenario.name))?;
        }
        let backends = Backends::start(&live).map_err(|e| format!("{}: {e}", scenario.name))?;
        // Backend i answers for the i-th *live* server; map it back to the config index.
        let config_index: Vec<usize> = (0..scenario.servers.len()).filter(|&i| Some(i) != scenario.dead).collect();
        let mut pools = Vec::new();
        for dist in DISTRIBUTIONS {
            for hash in HASHES {
                pools.push(Pool {
                    name: format!("{dist}_{hash}"),
                    hash: hash.to_owned(),
                    distribution: dist.to_owned(),
                    hash_tag: scenario.hash_tag.map(str::to_owned),
                    servers: scenario.servers.iter().map(|(_, entry)| entry.clone()).collect(),
                    auto_eject: scenario.dead.is_some(),
                });
            }
        }
        let work = std::env::temp_dir().join(format!("memshard-ring-golden-{}-{}", std::process::id(), scenario.name));
        let mut nutcracker = Nutcracker::start(&bin, &work, &pools).map_err(|e| format!("{}: {e}", scenario.name))?;
        let order = nutcracker.server_names(&pools[0].name).map_err(|e| e.to_string())?;
        let mut columns = Vec::new();
        let mut kept = Vec::new();
        for pool in pools {
            if scenario.dead.is_some()
                && !nutcracker.eject_dead(&backends, &pool.name, &keys).map_err(|e| e.to_string())?
            {
                eprintln!("{}: {}: no key reaches the dead server, column left out", scenario.name, pool.name);
                continue;
            }
            kept.push(pool);
        }
        let pools = kept;
        for pool in &pools {
            let routed = nutcracker.route(&backends, &pool.name, &keys).map_err(|e| e.to_string())?;
            columns.push(routed.into_iter().map(|backend| config_index[backend]).collect::<Vec<_>>());
        }
        drop(nutcracker);
        drop(backends);

        let mut text = String::new();
        let _ = writeln!(text, "# memshard-ring golden vectors: where {version} sends each key.");
        let _ = writeln!(text, "# Generated by `cargo run -p memshard-ring --example golden`; see README.md.");
        let _ = writeln!(text, "scenario\t{}", scenario.name);
        let _ = writeln!(text, "hash_tag\t{}", scenario.hash_tag.unwrap_or("-"));
        if let Some(dead) = scenario.dead {
            let _ = writeln!(text, "ejected\t{dead}");
        }
        for (i, (_, entry)) in scenario.servers.iter().enumerate() {
            let _ = writeln!(text, "server\t{i}\t{entry}");
        }
        let _ = writeln!(text, "order\t{}", order.join("\t"));
        let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        let _ = writeln!(text, "columns\t{}", names.join(" "));
        for (k, key) in keys.iter().enumerate() {
            let cells: Vec<String> = columns.iter().map(|col| col[k].to_string()).collect();
            let _ = writeln!(text, "{}\t{}", hex(key), cells.join(" "));
        }
        let path = out_dir.join(format!("{}.txt", scenario.name));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}: {} keys x {} pools", path.display(), keys.len(), pools.len());
    }
    let _ = std::fs::remove_dir_all(UNIX_DIR);
    Ok(())
}

fn main() {
    let out_dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata"));
    if let Err(e) = run(&out_dir) {
        eprintln!("golden: {e}");
        std::process::exit(1);
    }
}
