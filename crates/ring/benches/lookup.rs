//! Cost of one key → server lookup (hash + continuum binary search), fnv1a_64 + ketama, with 3
//! and 300 servers (modula alongside for comparison), and the cost of a rebuild. Run with `cargo bench -p memshard-ring --bench lookup`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memshard_ring::{Distribution, HashKind, Ring, ServerSpec};

fn servers(n: u16) -> Vec<ServerSpec> {
    (0..n).map(|i| ServerSpec::tcp(format!("memcached-{i}.memcached.default.svc"), 11211, 1)).collect()
}

fn lookup(c: &mut Criterion) {
    // A fixed spread of realistic keys, cycled so the branch predictor cannot learn one path.
    let keys: Vec<Vec<u8>> = (0..1024).map(|i| format!("user:{}:profile", i * 7919).into_bytes()).collect();
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(1));
    for n in [3u16, 300] {
        for dist in [Distribution::Ketama, Distribution::Modula] {
            let ring = match Ring::build(&servers(n), HashKind::Fnv1a64, dist, None) {
                Ok(ring) => ring,
                Err(e) => panic!("bench ring: {e}"),
            };
            let mut i = 0usize;
            group.bench_function(format!("fnv1a_64/{dist}/{n}_servers"), |b| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    black_box(ring.server_for(black_box(&keys[i])))
                });
            });
        }
    }
    group.finish();

    // Rebuilding is what an ejection, return or reload costs (off the request path).
    let three_hundred = servers(300);
    let mut group = c.benchmark_group("build");
    group.bench_function("ketama/300_servers", |b| {
        b.iter(|| {
            Ring::build(black_box(&three_hundred), HashKind::Fnv1a64, Distribution::Ketama, None)
                .map(|r| r.continuum().len())
        })
    });
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
