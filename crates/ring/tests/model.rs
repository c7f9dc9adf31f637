//! Property test: `Ring::server_for` against a naive model written independently from the
//! specification (twemproxy.md §2): names, sort, point counts, MD5 points, linear scan with
//! wrap and first-inserted-wins ties, modula's expanded table, hash tags.

use md5::{Digest, Md5};
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};
use proptest::prelude::*;

fn model_name(s: &ServerSpec) -> String {
    match (&s.name, s.port) {
        (Some(name), _) => name.clone(),
        (None, Some(11211)) => s.host.clone(),
        (None, Some(port)) => format!("{}:{}", s.host, port),
        (None, None) => format!("{}:", s.host),
    }
}

/// Live server indices in twemproxy order.
fn model_order(servers: &[ServerSpec], live: &[bool]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..servers.len()).filter(|&i| live[i]).collect();
    order.sort_by_key(|&i| {
        let name = model_name(&servers[i]);
        (name.len(), name.into_bytes())
    });
    order
}

/// Continuum points in insertion order (unsorted).
fn model_points(servers: &[ServerSpec], live: &[bool]) -> Vec<(u32, usize)> {
    let order = model_order(servers, live);
    let total: u32 = order.iter().map(|&i| servers[i].weight).sum();
    let n = order.len() as f32;
    let mut points = Vec::new();
    for &i in &order {
        let pct: f32 = servers[i].weight as f32 / total as f32;
        let t: f32 = pct * 160.0f32 / 4.0f32 * n;
        let t = (t as f64 + 1e-10) as f32;
        let hashes = t.floor() as u32;
        for h in 0..hashes {
            let mut text = format!("{}-{}", model_name(&servers[i]), h).into_bytes();
            text.truncate(272);
            let digest = Md5::digest(&text);
            for a in 0..4 {
                let v = u32::from(digest[4 * a])
                    | u32::from(digest[4 * a + 1]) << 8
                    | u32::from(digest[4 * a + 2]) << 16
                    | u32::from(digest[4 * a + 3]) << 24;
                points.push((v, i));
            }
        }
    }
    points
}

fn model_tagged(key: &[u8], tag: Option<[u8; 2]>) -> &[u8] {
    let Some([open, close]) = tag else { return key };
    for (i, &b) in key.iter().enumerate() {
        if b == open {
            for (j, &c) in key.iter().enumerate().skip(i + 1) {
                if c == close {
                    return if j > i + 1 { &key[i + 1..j] } else { key };
                }
            }
            return key;
        }
    }
    key
}

fn model_server(
    servers: &[ServerSpec],
    live: &[bool],
    hash: HashKind,
    dist: Distribution,
    tag: Option<[u8; 2]>,
    key: &[u8],
) -> usize {
    let order = model_order(servers, live);
    if order.len() == 1 {
        return order[0];
    }
    let bytes = model_tagged(key, tag);
    let h = if bytes.is_empty() { 0 } else { hash.hash(bytes) };
    match dist {
        Distribution::Ketama => {
            let points = model_points(servers, live);
            // Linear scan: smallest value ≥ h, earliest inserted on ties; else smallest overall.
            let best = |candidates: &mut dyn Iterator<Item = &(u32, usize)>| {
                let mut best: Option<(u32, usize)> = None;
                for &(v, s) in candidates {
                    if best.is_none_or(|(bv, _)| v < bv) {
                        best = Some((v, s));
                    }
                }
                best
            };
            best(&mut points.iter().filter(|p| p.0 >= h))
                .or_else(|| best(&mut points.iter()))
                .map(|(_, s)| s)
                .expect("points")
        }
        Distribution::Modula => {
            let table: Vec<usize> =
                order.iter().flat_map(|&i| std::iter::repeat_n(i, servers[i].weight as usize)).collect();
            table[h as usize % table.len()]
        }
        Distribution::Random => unreachable!("not modelled"),
    }
}

fn server_strategy() -> impl Strategy<Value = ServerSpec> {
    (0u8..4, 0u8..4, 1000u16..1010, 1u32..6, "[a-z0-9.]{0,12}").prop_map(|(kind, host, port, weight, name)| {
        let host = format!("10.0.0.{host}");
        match kind {
            0 => ServerSpec::tcp(host, port, weight),
            1 => ServerSpec::tcp(host, 11211, weight),
            2 => ServerSpec::tcp(host, port, weight).named(name),
            _ => ServerSpec::unix(format!("/run/mc{port}.sock"), weight),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn server_for_matches_the_naive_model(
        mut servers in prop::collection::vec(server_strategy(), 1..9),
        live_mask in prop::collection::vec(any::<bool>(), 9),
        hash in 0usize..12,
        ketama in any::<bool>(),
        tag in prop::option::of(Just(*b"{}")),
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 1..40),
        tagged in prop::collection::vec("[a-z{}]{0,10}", 0..10),
    ) {
        // Duplicate identities are a configuration error; keep the first of each.
        let mut names = std::collections::HashSet::new();
        servers.retain(|s| names.insert(model_name(s)));
        let mut live: Vec<bool> = live_mask[..servers.len()].to_vec();
        if !live.contains(&true) {
            live[0] = true;
        }
        let hash = HashKind::ALL[hash];
        let dist = if ketama { Distribution::Ketama } else { Distribution::Modula };
        let ring = Ring::build_live(&servers, |i| live[i], hash, dist, tag).expect("valid set");
        prop_assert_eq!(ring.live_servers().to_vec(), model_order(&servers, &live));
        let keys = keys.iter().map(Vec::as_slice).chain(tagged.iter().map(|k| k.as_bytes()));
        for key in keys {
            prop_assert_eq!(ring.server_for(key), model_server(&servers, &live, hash, dist, tag, key), "key {:?}", key);
        }
    }

    #[test]
    fn servers_for_is_distinct_and_starts_with_the_owner(
        n in 1u16..12,
        want in 0usize..15,
        key in prop::collection::vec(any::<u8>(), 0..30),
        dist in prop::sample::select(Distribution::ALL.to_vec()),
    ) {
        let servers: Vec<ServerSpec> = (0..n).map(|i| ServerSpec::tcp("127.0.0.1", 30000 + i, 1 + u32::from(i % 3))).collect();
        let ring = Ring::build(&servers, HashKind::Fnv1a64, dist, None).expect("valid");
        let mut draw = 5u32;
        let got: Vec<usize> = ring.servers_for_with(&key, want, &mut || { draw += 1; draw }).collect();
        prop_assert_eq!(got.len(), want.min(usize::from(n)));
        let mut unique = got.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), got.len());
        if let Some(&first) = got.first() {
            // The walk drew 6 for its random start; the same draw must pick the same owner.
            prop_assert_eq!(first, ring.server_for_with(&key, &mut || 6));
        }
    }
}
