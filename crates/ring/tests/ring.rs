//! `Ring` behaviour through the public API: ordering, hash tags, replication walks, random
//! picks, single servers and configuration errors.

use memshard_ring::{Distribution, HashKind, HashTag, Ring, RingError, ServerSpec};

fn servers(n: u16) -> Vec<ServerSpec> {
    (0..n).map(|i| ServerSpec::tcp("127.0.0.1", 21211 + i, 1)).collect()
}

#[test]
fn servers_are_ordered_by_identity_length_then_bytes() {
    let list = [
        ServerSpec::tcp("127.0.0.1", 1, 1).named("zeta"),
        ServerSpec::tcp("127.0.0.1", 2, 1).named("alpha9"),
        ServerSpec::tcp("127.0.0.1", 3, 1).named("alpha10"),
        ServerSpec::tcp("10.0.0.1", 11211, 1),
        ServerSpec::unix("/s", 1),
    ];
    let ring = Ring::build(&list, HashKind::Fnv1a64, Distribution::Modula, None).expect("valid");
    // "/s:" (3), "zeta" (4), "alpha9" (6), "alpha10" (7), "10.0.0.1" (8)
    assert_eq!(ring.live_servers(), &[4, 0, 1, 2, 3]);
}

#[test]
fn modula_uses_the_sorted_order_and_weights() {
    let list = [ServerSpec::tcp("h", 1, 1).named("zeta"), ServerSpec::tcp("h", 2, 2).named("alpha9")];
    let ring = Ring::build(&list, HashKind::Fnv1a64, Distribution::Modula, None).expect("valid");
    // Slots: [zeta, alpha9, alpha9] since "zeta" is shorter.
    for key in (0..500).map(|i| format!("k{i}")) {
        let slot = HashKind::Fnv1a64.hash(key.as_bytes()) % 3;
        assert_eq!(ring.server_for(key.as_bytes()), if slot == 0 { 0 } else { 1 }, "{key}");
    }
}

#[test]
fn hash_tag_hashes_only_the_tagged_span() {
    let ring = Ring::build(&servers(5), HashKind::Fnv1a64, Distribution::Ketama, Some(*b"{}")).expect("valid");
    assert_eq!(ring.hash_tag(), Some(HashTag::new(b'{', b'}')));
    assert_eq!(ring.hashed_bytes(b"user:{42}:name"), b"42");
    assert_eq!(ring.key_hash(b"user:{42}:name"), HashKind::Fnv1a64.hash(b"42"));
    let owner = ring.server_for(b"42");
    for key in ["{42}", "{42}:a", "user:{42}:name", "x{42}y{7}", "{42}}"] {
        assert_eq!(ring.server_for(key.as_bytes()), owner, "{key}");
    }
    for key in ["{}42", "a{b", "{", "}{", "x}{"] {
        assert_eq!(ring.hashed_bytes(key.as_bytes()), key.as_bytes(), "{key}");
        assert_eq!(ring.key_hash(key.as_bytes()), HashKind::Fnv1a64.hash(key.as_bytes()), "{key}");
    }
    let untagged = Ring::build(&servers(5), HashKind::Fnv1a64, Distribution::Ketama, None).expect("valid");
    assert_eq!(untagged.hashed_bytes(b"user:{42}:name"), b"user:{42}:name");
}

#[test]
fn empty_key_hashes_to_zero() {
    for kind in HashKind::ALL {
        let ring = Ring::build(&servers(3), kind, Distribution::Ketama, None).expect("valid");
        assert_eq!(ring.key_hash(b""), 0);
        // Position 0 belongs to the first point of the continuum.
        assert_eq!(ring.server_for(b""), ring.continuum()[0].server as usize);
    }
}

#[test]
fn servers_for_returns_distinct_servers_owner_first() {
    for dist in [Distribution::Ketama, Distribution::Modula, Distribution::Random] {
        let ring = Ring::build(&servers(7), HashKind::Murmur, dist, None).expect("valid");
        for key in (0..300).map(|i| format!("replicated:{i}")) {
            let mut draws = [3u32, 3].into_iter();
            let mut rng = || draws.next().unwrap_or(0);
            let all: Vec<usize> = ring.servers_for_with(key.as_bytes(), 10, &mut rng).collect();
            assert_eq!(all.len(), 7, "{dist}: capped at the live count");
            let mut sorted = all.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 7, "{dist}: distinct");
            let mut again = [3u32].into_iter();
            assert_eq!(all[0], ring.server_for_with(key.as_bytes(), &mut || again.next().unwrap_or(0)), "{dist}");
            let two: Vec<usize> = ring.servers_for(key.as_bytes(), 2).collect();
            assert_eq!(two.len(), 2);
            assert_ne!(two[0], two[1]);
        }
        assert_eq!(ring.servers_for(b"k", 0).count(), 0);
    }
}

#[test]
fn ketama_servers_for_walks_the_continuum_clockwise() {
    let ring = Ring::build(&servers(4), HashKind::Md5, Distribution::Ketama, None).expect("valid");
    let points = ring.continuum();
    for key in (0..200).map(|i| format!("walk:{i}")) {
        let hash = ring.key_hash(key.as_bytes());
        let start = points.iter().position(|p| p.value >= hash).unwrap_or(0);
        let mut expected = Vec::new();
        for p in points[start..].iter().chain(&points[..start]) {
            if !expected.contains(&(p.server as usize)) {
                expected.push(p.server as usize);
            }
        }
        let walked: Vec<usize> = ring.servers_for(key.as_bytes(), 4).collect();
        assert_eq!(walked, expected, "{key}");
    }
}

#[test]
fn modula_servers_for_continues_with_the_next_servers() {
    let ring = Ring::build(&servers(4), HashKind::Fnv1a64, Distribution::Modula, None).expect("valid");
    let order = ring.live_servers().to_vec();
    for key in (0..100).map(|i| format!("m:{i}")) {
        let walked: Vec<usize> = ring.servers_for(key.as_bytes(), 3).collect();
        let at = order.iter().position(|&s| s == walked[0]).expect("owner is live");
        assert_eq!(walked, [order[at], order[(at + 1) % 4], order[(at + 2) % 4]]);
    }
}

#[test]
fn random_picks_uniformly_among_live_servers_with_an_injected_rng() {
    let list = servers(4);
    let ring = Ring::build_live(&list, |i| i != 2, HashKind::Fnv1a64, Distribution::Random, None).expect("valid");
    assert_eq!(ring.live_servers(), &[0, 1, 3]);
    // draw % 3 indexes the live servers in order: 0, 1, 3.
    let picks: Vec<usize> = (0..6u32).map(|draw| ring.server_for_with(b"ignored", &mut || draw)).collect();
    assert_eq!(picks, [0, 1, 3, 0, 1, 3]);
    // The default generator reaches every live server and never the ejected one.
    let mut seen = [0usize; 4];
    for _ in 0..3000 {
        seen[ring.server_for(b"k")] += 1;
    }
    assert_eq!(seen[2], 0);
    assert!(seen[0] > 800 && seen[1] > 800 && seen[3] > 800, "{seen:?}");
}

#[test]
fn one_server_takes_every_key() {
    for dist in [Distribution::Ketama, Distribution::Modula, Distribution::Random] {
        let ring = Ring::build(&servers(1), HashKind::Crc32, dist, None).expect("valid");
        assert_eq!(ring.server_for(b"anything"), 0);
        assert_eq!(ring.servers_for(b"anything", 3).collect::<Vec<_>>(), [0]);
        let ejected = Ring::build_live(&servers(3), |i| i == 2, HashKind::Crc32, dist, None).expect("valid");
        assert_eq!(ejected.server_for(b"anything"), 2);
    }
}

#[test]
fn configuration_errors() {
    let build = |list: &[ServerSpec]| Ring::build(list, HashKind::Fnv1a64, Distribution::Ketama, None);
    assert_eq!(build(&[]).err(), Some(RingError::NoServers));
    assert_eq!(
        Ring::build_live(&servers(2), |_| false, HashKind::Fnv1a64, Distribution::Ketama, None).err(),
        Some(RingError::NoServers)
    );
    assert!(matches!(
        build(&[ServerSpec::tcp("h", 1, 1), ServerSpec::tcp("h", 2, 0)]),
        Err(RingError::ZeroWeight { index: 1, .. })
    ));
    // Same identity through different spellings: a name equal to another server's host:port.
    let dup = [ServerSpec::tcp("h", 1, 1), ServerSpec::tcp("x", 9, 1).named("h:1")];
    assert!(matches!(build(&dup), Err(RingError::DuplicateName { first: 0, second: 1, .. })));
    let heavy = [ServerSpec::tcp("h", 1, u32::MAX), ServerSpec::tcp("h", 2, 1)];
    assert_eq!(build(&heavy).err(), Some(RingError::WeightOverflow));
}

#[test]
fn names_parse_like_twemproxy() {
    for dist in Distribution::ALL {
        assert_eq!(dist.name().parse::<Distribution>(), Ok(dist));
    }
    assert!("Ketama".parse::<Distribution>().is_err());
    assert!("vnode".parse::<Distribution>().is_err());
    assert_eq!("fnv1a_64".parse::<HashKind>(), Ok(HashKind::Fnv1a64));
    assert!(matches!("sha1".parse::<HashKind>(), Err(RingError::UnknownHash(_))));
    assert_eq!(Distribution::default(), Distribution::Ketama);
}

#[test]
fn ring_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ring>();
    let ring =
        std::sync::Arc::new(Ring::build(&servers(3), HashKind::Fnv1a64, Distribution::Ketama, None).expect("valid"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let ring = std::sync::Arc::clone(&ring);
            std::thread::spawn(move || ring.server_for(b"apple"))
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), 1);
    }
}

#[test]
fn shares_add_up_to_one_and_follow_the_keys() {
    let list = servers(4);
    for distribution in [Distribution::Ketama, Distribution::Modula, Distribution::Random] {
        let ring = Ring::build(&list, HashKind::Fnv1a64, distribution, None).expect("valid");
        let shares = ring.shares();
        assert_eq!(shares.len(), 4, "{distribution:?}");
        let total: f64 = shares.iter().map(|s| s.1).sum();
        assert!((total - 1.0).abs() < 1e-9, "{distribution:?}: {total}");
        if distribution == Distribution::Random {
            continue;
        }
        // The fraction of 40 000 keys each server owns is its share, give or take.
        let mut owned = [0u32; 4];
        for i in 0..40_000 {
            owned[ring.server_for(format!("key:{i}").as_bytes())] += 1;
        }
        for (server, share) in shares {
            let seen = f64::from(owned[server]) / 40_000.0;
            assert!((seen - share).abs() < 0.02, "{distribution:?}: server {server} owns {seen}, share {share}");
        }
    }
    // Modula by weight: 1 and 3.
    let weighted = [ServerSpec::tcp("h", 1, 1), ServerSpec::tcp("h", 2, 3)];
    let ring = Ring::build(&weighted, HashKind::Fnv1a64, Distribution::Modula, None).expect("valid");
    let shares: Vec<f64> = ring.shares().iter().map(|s| s.1).collect();
    assert_eq!(shares, vec![0.25, 0.75]);
}
