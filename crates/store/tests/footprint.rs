//! Reports the bytes charged per stored item (10-byte key, 100-byte value)
//! so it can be compared with memcached's 192-byte slab chunk.

mod common;

use memshard_store::{StoreMode, item_footprint, memcached_item_size, memcached_slab_class};

#[test]
fn bytes_per_100_byte_item() {
    let (s, _clock) = common::store();
    let value = [b'v'; 100];
    let n = 10_000;
    for i in 0..n {
        let key = format!("key{i:07}"); // 10 bytes
        assert_eq!(key.len(), 10);
        s.store(StoreMode::Set, key.as_bytes(), 0, 0, &value, 0);
    }
    let st = s.stats();
    assert_eq!(st.curr_items, n);
    let per_item = st.bytes as f64 / n as f64;
    let memcached = memcached_item_size(10, 100, 0);
    let class = memcached_slab_class(memcached, 1 << 20);
    println!(
        "memshard-store: {per_item:.1} bytes accounted per item (10-byte key, 100-byte value); \
         actual index {:.1} B/item, slab {:.1} B/item; \
         memcached: item {memcached} B in slab class {class:?} (192 B chunk) + ~8 B hash bucket",
        st.hash_bytes as f64 / n as f64,
        st.slab_bytes as f64 / n as f64,
    );
    assert_eq!(per_item, item_footprint(10, 100, 0) as f64);
    assert!(per_item <= 192.0, "goal: no more than memcached's slab chunk");
}
