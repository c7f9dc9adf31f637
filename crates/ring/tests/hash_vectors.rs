//! The 12 hash functions against known values: twemproxy's own unit test vectors (which equal
//! libmemcached's `tests/hash_results.h`), standard check values, and the signed-`char` rule.

use memshard_ring::HashKind;

#[test]
fn twemproxy_apple_vectors() {
    // src/test_all.c:41-60 in twemproxy; twemproxy.md §2.5.
    let expected = [
        (HashKind::OneAtATime, 2_297_466_611u32),
        (HashKind::Md5, 3_195_025_439),
        (HashKind::Crc16, 3_662_830_516),
        (HashKind::Crc32, 10_542),
        (HashKind::Crc32a, 2_838_417_488),
        (HashKind::Fnv132, 67_176_023),
        (HashKind::Fnv1a32, 280_767_167),
        (HashKind::Fnv164, 473_199_127),
        (HashKind::Fnv1a64, 1_488_911_807),
        (HashKind::Hsieh, 3_738_850_110),
        (HashKind::Jenkins, 1_442_444_624),
        (HashKind::Murmur, 4_142_305_122),
    ];
    assert_eq!(expected.len(), HashKind::ALL.len());
    for (kind, value) in expected {
        assert_eq!(kind.hash(b"apple"), value, "{kind}");
    }
}

#[test]
fn standard_check_values() {
    assert_eq!(HashKind::Crc32a.hash(b"123456789"), 0xCBF4_3926);
    assert_eq!(HashKind::Crc32.hash(b"123456789"), (0xCBF4_3926u32 >> 16) & 0x7fff);
    // FNV test suite values (ASCII, so twemproxy's signed reading changes nothing).
    assert_eq!(HashKind::Fnv1a32.hash(b"a"), 0xe40c_292c);
    assert_eq!(HashKind::Fnv132.hash(b"a"), 0x050c_5d7e);
    assert_eq!(HashKind::Fnv1a64.hash(b"a"), 0xaf63_dc4c_8601_ec8c_u64 as u32);
    assert_eq!(HashKind::Fnv164.hash(b"a"), 0xaf63_bd4c_8601_b7be_u64 as u32);
    // MD5("") = d41d8cd98f00b204e9800998ecf8427e; the first 4 bytes, little-endian.
    assert_eq!(HashKind::Md5.hash(b""), 0xd98c_1dd4);
}

#[test]
fn crc32_has_only_15_bits() {
    for key in [b"a".as_slice(), b"apple", b"user:1000", &[0xff; 40]] {
        assert!(HashKind::Crc32.hash(key) <= 0x7fff);
    }
}

#[test]
fn signed_char_functions_differ_from_unsigned_reading_on_high_bytes() {
    // Textbook FNV-1a over unsigned bytes.
    let textbook_fnv1a_32 =
        |key: &[u8]| key.iter().fold(2_166_136_261u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
    assert_eq!(HashKind::Fnv1a32.hash(b"cafe"), textbook_fnv1a_32(b"cafe"));
    assert_ne!(HashKind::Fnv1a32.hash("café".as_bytes()), textbook_fnv1a_32("café".as_bytes()));
    // fnv1a_64 over a key whose only high byte is 0x80: XOR with 0xFFFFFF80 rather than 0x80.
    let mut h = 0x8422_2325u32;
    for b in [b'x', 0x80] {
        h ^= i32::from(b as i8) as u32;
        h = h.wrapping_mul(0x1b3);
    }
    assert_eq!(HashKind::Fnv1a64.hash(&[b'x', 0x80]), h);
}

#[test]
fn every_function_is_deterministic_and_spreads_keys() {
    for kind in HashKind::ALL {
        let values: std::collections::HashSet<u32> =
            (0..1000).map(|i| kind.hash(format!("key:{i}").as_bytes())).collect();
        // crc32 has 15 bits, so a few collisions among 1000 keys are expected; the others are
        // 32-bit hashes and should not collide more than a handful of times.
        assert!(values.len() > 950, "{kind}: {} distinct of 1000", values.len());
        assert_eq!(kind.hash(b"stable"), kind.hash(b"stable"));
    }
}

#[test]
fn empty_and_every_tail_length_hash_without_panicking() {
    for kind in HashKind::ALL {
        for len in 0..=40 {
            let key: Vec<u8> = (0..len).map(|i| 0xf0u8.wrapping_add(i as u8)).collect();
            let _ = kind.hash(&key);
        }
    }
}
