//! Ketama continuum properties: point counts (including the f32 anomaly), weights, names, and
//! what moves when a server leaves.

use std::collections::HashMap;

use memshard_ring::{Distribution, HashKind, KETAMA_POINTS_PER_SERVER, Ring, ServerSpec, ketama_points};

fn equal_servers(n: u16) -> Vec<ServerSpec> {
    (0..n).map(|i| ServerSpec::tcp("10.0.0.1", 20000 + i, 1)).collect()
}

fn ketama(servers: &[ServerSpec]) -> Ring {
    Ring::build(servers, HashKind::Fnv1a64, Distribution::Ketama, None).expect("valid servers")
}

fn points_per_server(ring: &Ring) -> HashMap<usize, usize> {
    let mut counts = HashMap::new();
    for point in ring.continuum() {
        *counts.entry(point.server as usize).or_insert(0) += 1;
    }
    counts
}

fn keys(n: usize) -> impl Iterator<Item = Vec<u8>> {
    (0..n).map(|i| format!("object:{i}:{}", i.wrapping_mul(2_654_435_761)).into_bytes())
}

#[test]
fn three_equal_servers_get_160_points_each() {
    let ring = ketama(&equal_servers(3));
    assert_eq!(ring.continuum().len(), 3 * KETAMA_POINTS_PER_SERVER as usize);
    assert!(points_per_server(&ring).values().all(|&c| c == 160));
    assert!(ring.continuum().windows(2).all(|w| w[0].value <= w[1].value), "continuum sorted");
}

#[test]
fn twenty_five_equal_servers_get_156_points_each() {
    let ring = ketama(&equal_servers(25));
    let counts = points_per_server(&ring);
    assert_eq!(counts.len(), 25);
    assert!(counts.values().all(|&c| c == 156), "{counts:?}");
    assert_eq!(ketama_points(1, 25, 25), 156);
}

#[test]
fn weights_scale_points() {
    let servers = [ServerSpec::tcp("h", 1, 1), ServerSpec::tcp("h", 2, 2), ServerSpec::tcp("h", 3, 3)];
    let counts = points_per_server(&ketama(&servers));
    assert_eq!((counts[&0], counts[&1], counts[&2]), (80, 160, 240));
}

#[test]
fn weights_are_honoured_with_names() {
    let servers = [
        ServerSpec::tcp("h", 1, 1).named("cache-a"),
        ServerSpec::tcp("h", 2, 2).named("cache-b"),
        ServerSpec::tcp("h", 3, 5).named("cache-c"),
    ];
    let counts = points_per_server(&ketama(&servers));
    assert_eq!((counts[&0], counts[&1], counts[&2]), (60, 120, 300));
}

#[test]
fn a_tiny_weight_can_get_no_points_and_no_keys() {
    let servers = [ServerSpec::tcp("h", 1, 100_000), ServerSpec::tcp("h", 2, 1)];
    let ring = ketama(&servers);
    assert_eq!(points_per_server(&ring).get(&1), None);
    assert!(keys(2000).all(|k| ring.server_for(&k) == 0));
}

#[test]
fn names_not_addresses_place_servers() {
    let a = [ServerSpec::tcp("10.0.0.1", 11211, 1).named("s1"), ServerSpec::tcp("10.0.0.2", 11211, 1).named("s2")];
    let b = [ServerSpec::tcp("10.9.9.9", 5000, 1).named("s1"), ServerSpec::tcp("10.8.8.8", 6000, 1).named("s2")];
    assert_eq!(ketama(&a).continuum(), ketama(&b).continuum());
}

#[test]
fn port_11211_is_dropped_from_the_identity() {
    let with_port = [ServerSpec::tcp("10.0.0.1", 11211, 1), ServerSpec::tcp("10.0.0.2", 11211, 1)];
    let by_name = [ServerSpec::tcp("x", 1, 1).named("10.0.0.1"), ServerSpec::tcp("y", 1, 1).named("10.0.0.2")];
    assert_eq!(ketama(&with_port).continuum(), ketama(&by_name).continuum());
}

/// Removing one server of `n` (rebuilding from the others, as twemproxy does on ejection) moves
/// exactly the keys that server owned, provided the point count per server does not change.
fn check_removal_moves_only_the_removed_servers_keys(n: u16, removed: usize) {
    let servers = equal_servers(n);
    let before = ketama(&servers);
    let after =
        Ring::build_live(&servers, |i| i != removed, HashKind::Fnv1a64, Distribution::Ketama, None).expect("valid");
    assert_eq!(ketama_points(1, u32::from(n), u32::from(n)), ketama_points(1, u32::from(n) - 1, u32::from(n) - 1));
    let total = 20_000;
    let mut moved = 0;
    for key in keys(total) {
        let (old, new) = (before.server_for(&key), after.server_for(&key));
        assert_ne!(new, removed);
        if old != new {
            assert_eq!(old, removed, "a key moved between two surviving servers");
            moved += 1;
        } else {
            assert_ne!(old, removed);
        }
    }
    let share = moved as f64 / total as f64;
    let fair = 1.0 / f64::from(n);
    assert!(share > fair * 0.5 && share < fair * 1.5, "moved {share:.4}, expected about {fair:.4}");
}

#[test]
fn removing_a_server_moves_only_its_keys() {
    check_removal_moves_only_the_removed_servers_keys(10, 3);
    check_removal_moves_only_the_removed_servers_keys(30, 0);
    check_removal_moves_only_the_removed_servers_keys(5, 4);
}

#[test]
fn ejecting_into_an_f32_anomaly_shrinks_every_server() {
    // 26 → 25 live servers: every survivor drops from 160 to 156 points, so keys also move
    // between survivors (twemproxy.md §2.2); the golden file `ejected.txt` pins this down.
    let servers = equal_servers(26);
    let ring = Ring::build_live(&servers, |i| i != 7, HashKind::Fnv1a64, Distribution::Ketama, None).expect("valid");
    let counts = points_per_server(&ring);
    assert_eq!(counts.len(), 25);
    assert!(counts.values().all(|&c| c == 156));
}

#[test]
fn build_live_equals_building_from_the_live_subset() {
    let servers = equal_servers(8);
    let dead = [1usize, 6];
    let live_only: Vec<ServerSpec> =
        servers.iter().enumerate().filter(|(i, _)| !dead.contains(i)).map(|(_, s)| s.clone()).collect();
    let back: Vec<usize> = (0..servers.len()).filter(|i| !dead.contains(i)).collect();
    for dist in [Distribution::Ketama, Distribution::Modula] {
        let ejected = Ring::build_live(&servers, |i| !dead.contains(&i), HashKind::Murmur, dist, None).expect("valid");
        let subset = Ring::build(&live_only, HashKind::Murmur, dist, None).expect("valid");
        for key in keys(3000) {
            assert_eq!(ejected.server_for(&key), back[subset.server_for(&key)], "{dist}");
        }
    }
}

#[test]
fn ties_go_to_the_server_first_in_twemproxy_order() {
    // "tie253"/"tie397" share the point 667653269 and "tie36"/"tie1312" share 1622176544
    // (testdata/tie.txt records nutcracker's choice for keys landing on them).
    let servers: Vec<ServerSpec> =
        ["tie397", "tie1312", "tie253", "tie36"].iter().map(|&n| ServerSpec::tcp("h", 1, 1).named(n)).collect();
    let ring = ketama(&servers);
    for (value, winner) in [(667_653_269u32, 2usize), (1_622_176_544, 3)] {
        let tied: Vec<usize> =
            ring.continuum().iter().filter(|p| p.value == value).map(|p| p.server as usize).collect();
        assert_eq!(tied.len(), 2, "the two names collide at {value}");
        assert_eq!(tied[0], winner, "the shorter / bytewise-smaller name comes first");
        let at = ring.continuum().iter().position(|p| p.value == value).expect("tie point");
        assert_eq!(ring.continuum()[at].server as usize, winner);
    }
}
