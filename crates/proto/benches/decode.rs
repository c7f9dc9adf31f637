//! Decoder and encoder throughput.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memshard_proto::{Decoder, Reply};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let d = Decoder::default();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let get = b"get key:000012345\r\n";
    g.bench_function("get", |b| b.iter(|| d.decode(black_box(get))));
    let mut set = b"set key:000012345 0 0 100\r\n".to_vec();
    set.extend_from_slice(&[b'x'; 100]);
    set.extend_from_slice(b"\r\n");
    g.bench_function("set_100b", |b| b.iter(|| d.decode(black_box(&set))));
    let mg = b"mg key:000012345 v f c t k Oopaque\r\n";
    g.bench_function("mg_flags", |b| b.iter(|| d.decode(black_box(mg))));
    let multi: Vec<u8> = {
        let mut v = b"get".to_vec();
        for i in 0..100 {
            v.extend_from_slice(format!(" key:{i:09}").as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v
    };
    g.bench_function("get_100_keys", |b| b.iter(|| d.decode(black_box(&multi))));
    let mut value = b"VALUE key:000012345 0 100\r\n".to_vec();
    value.extend_from_slice(&[b'x'; 100]);
    value.extend_from_slice(b"\r\n");
    g.bench_function("reply_value_100b", |b| b.iter(|| Reply::decode(black_box(&value))));
    g.finish();
    let mut e = c.benchmark_group("encode");
    e.throughput(Throughput::Elements(1));
    let data = [b'x'; 100];
    let mut out = Vec::with_capacity(256);
    e.bench_function("reply_value_100b", |b| {
        b.iter(|| {
            out.clear();
            Reply::Value { key: b"key:000012345", flags: 0, cas: None, data: &data }.encode(&mut out);
            black_box(out.len())
        })
    });
    e.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
