//! What the generator sends: the Zipf sampler against theory, value sizes on
//! the wire, meta commands and multi-gets end to end.

mod common;

use memshard_bench::{BenchConfig, KeyDist, ValueSize, Zipf, run};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::HashSet;
use std::time::Duration;

fn short(addr: String) -> BenchConfig {
    BenchConfig {
        addr,
        connections: 4,
        duration: Duration::from_millis(500),
        warmup: Duration::ZERO,
        key_space: 1000,
        ..BenchConfig::default()
    }
}

/// Frequencies of ranks 1..=n over `samples` draws.
fn histogram(z: &Zipf, n: usize, samples: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut freq = vec![0u64; n + 1];
    for _ in 0..samples {
        let k = z.sample(&mut rng) as usize;
        assert!((1..=n).contains(&k), "rank {k} outside 1..={n}");
        freq[k] += 1;
    }
    freq
}

#[test]
fn zipf_matches_theory() {
    const N: usize = 1000;
    const SAMPLES: usize = 2_000_000;
    for s in [0.5, 0.99, 1.0, 1.5] {
        let z = Zipf::new(N as u64, s).unwrap();
        let freq = histogram(&z, N, SAMPLES, 42);
        // P(k) = k^-s / H(N, s).
        let h: f64 = (1..=N).map(|k| (k as f64).powf(-s)).sum();
        for k in [1, 2, 10, 100] {
            let expected = SAMPLES as f64 * (k as f64).powf(-s) / h;
            let got = freq[k] as f64;
            // Five standard deviations of a binomial count, at least 1 %.
            let tol = (5.0 * expected.sqrt()).max(expected * 0.01);
            assert!((got - expected).abs() <= tol, "s {s} rank {k}: {got} draws, expected {expected:.0} ± {tol:.0}");
        }
        // The ratio of rank 1 to rank 10 is 10^s.
        let ratio = freq[1] as f64 / freq[10] as f64;
        let want = 10f64.powf(s);
        assert!((ratio - want).abs() <= want * 0.05, "s {s}: rank1/rank10 = {ratio:.3}, theory {want:.3}");
        // Frequencies fall with rank (in bands, so noise between neighbours does not count).
        let band = |a: usize, b: usize| freq[a..b].iter().sum::<u64>();
        assert!(band(1, 11) > band(11, 21) && band(11, 21) > band(101, 111), "s {s}");
    }
}

#[test]
fn zipf_covers_huge_key_spaces() {
    // No table of N terms: a billion keys sets up at once, and draws stay in range.
    let z = Zipf::new(1_000_000_000, 0.99).unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let draws: Vec<u64> = (0..100_000).map(|_| z.sample(&mut rng)).collect();
    assert!(draws.iter().all(|&k| (1..=1_000_000_000).contains(&k)));
    assert!(draws.iter().any(|&k| k > 1_000_000), "the tail is reached");
}

#[tokio::test]
async fn value_sizes_stay_in_range() {
    let server = common::FakeMemcached::start(0).await;
    let cfg = BenchConfig {
        value_size: "100-1000".parse().unwrap(),
        mix: "get=1,set=1".parse().unwrap(),
        ..short(server.addr.to_string())
    };
    let r = run(cfg, None).await.unwrap();
    assert_eq!(r.errors, 0, "{r}");
    let sizes = server.value_sizes();
    assert!(sizes.iter().all(|s| (100..=1000).contains(s)), "{sizes:?}");
    // Prefill plus the run store thousands of values: the range is covered.
    assert!(sizes.iter().any(|&s| s < 150) && sizes.iter().any(|&s| s > 950), "{sizes:?}");

    let server = common::FakeMemcached::start(0).await;
    let cfg = BenchConfig { value_size: "10=3,4000=1".parse().unwrap(), ..short(server.addr.to_string()) };
    run(cfg, None).await.unwrap();
    assert_eq!(server.value_sizes(), HashSet::from([10, 4000]));
}

#[tokio::test]
async fn meta_mix_against_memshard_server() {
    let server = common::memshard_server().await;
    let cfg = BenchConfig {
        mix: "mg=90,ms=10".parse().unwrap(),
        key_dist: KeyDist::Zipf(0.99),
        value_size: ValueSize::Range { min: 1, max: 2000 },
        ..short(server.addr.to_string())
    };
    let r = run(cfg, None).await.unwrap();
    assert_eq!(r.errors, 0, "{r}");
    assert_eq!(r.prefilled, 1000, "{r}");
    assert!(r.gets > 0 && r.sets > 0, "{r}");
    assert_eq!((r.misses, r.hit_ratio), (0, 1.0), "{r}");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["config"]["mix"], "mg=90,ms=10");
    assert_eq!(json["config"]["key_dist"], "zipf:0.99");
    assert_eq!(json["config"]["value_size"], "1-2000");
}

#[tokio::test]
async fn multiget_counts_keys_as_hits() {
    let server = common::FakeMemcached::start(0).await;
    let cfg = BenchConfig { multiget: 5, mix: "get=1".parse().unwrap(), ..short(server.addr.to_string()) };
    let r = run(cfg, None).await.unwrap();
    assert_eq!((r.errors, r.sets, r.misses), (0, 0, 0), "{r}");
    assert_eq!(r.hits, 5 * r.gets, "{r}");

    // Without prefill and without sets, no key exists.
    let server = common::FakeMemcached::start(0).await;
    let cfg =
        BenchConfig { prefill: false, multiget: 5, mix: "get=1".parse().unwrap(), ..short(server.addr.to_string()) };
    let r = run(cfg, None).await.unwrap();
    assert_eq!((r.hits, r.misses, r.hit_ratio), (0, 5 * r.gets, 0.0), "{r}");
}
