//! The ketama continuum (`ketama_update` and `ketama_dispatch`, src/hashkit/nc_ketama.c).

use crate::hash::md5_digest;

/// Nominal continuum points per server when all weights are equal (`KETAMA_POINTS_PER_SERVER`).
pub const KETAMA_POINTS_PER_SERVER: u32 = 160;

/// Each MD5 digest yields this many points (4 × 4 bytes).
const POINTS_PER_HASH: u32 = 4;

/// twemproxy formats `"<name>-<i>"` into a 273-byte buffer with `snprintf`, so a longer string is
/// cut to 272 bytes before it is hashed (`KETAMA_MAX_HOSTLEN`). Names that long are unlikely, but
/// the rule costs nothing.
const MAX_HOSTLEN: usize = 273;

/// One point of a ketama continuum: a position on the 32-bit circle and the server that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Point {
    /// Position on the circle: a little-endian u32 slice of an MD5 digest.
    pub value: u32,
    /// Index of the owning server in the caller's server list.
    pub server: u32,
}

/// How many continuum points twemproxy gives a server of `weight` when `live_servers` servers of
/// total weight `total_weight` are live: `floor(f32(w/W · 160 / 4 · n)) · 4`.
///
/// The arithmetic is deliberately single precision, step by step, as the C code does it with
/// `float` on x86-64 (SSE, no extended precision): `pct = (float)w / (float)W`, then
/// `pct * 160`, `/ 4`, `* (float)n`, each rounded to f32, then `+ 1e-10` in double (the literal is
/// a double) and back to float before `floorf`. The tiny addition cannot rescue values that
/// rounding already pushed below the integer: with 25 equal servers `1/25` rounds down, `t`
/// comes out as 39.999996, and every server gets 156 points instead of 160. Exact arithmetic
/// would route differently, so this must stay f32.
pub fn ketama_points(weight: u32, total_weight: u32, live_servers: u32) -> u32 {
    if total_weight == 0 {
        // Unreachable through `Ring::build` (weights are ≥ 1); avoids a NaN here.
        return 0;
    }
    let pct = weight as f32 / total_weight as f32;
    let per_hash = pct * KETAMA_POINTS_PER_SERVER as f32 / POINTS_PER_HASH as f32 * live_servers as f32;
    let nudged = (f64::from(per_hash) + 0.000_000_000_1) as f32;
    // C: `(uint32_t)(floorf(t) * 4)`; the float → int cast saturates in Rust where C would be
    // undefined, which only matters for absurd weights.
    (nudged.floor() * POINTS_PER_HASH as f32) as u32
}

/// A live server as the continuum builder needs it.
pub(crate) struct Member<'a> {
    /// Index in the caller's list, stored in each point.
    pub(crate) server: u32,
    /// twemproxy identity string, hashed into the points.
    pub(crate) name: &'a str,
    /// Weight (≥ 1).
    pub(crate) weight: u32,
}

/// Builds the sorted continuum for `members`, which must be the live servers in twemproxy's
/// server order (see [`crate::server::name_order`]); `total_weight` is the sum of their weights.
pub(crate) fn build(members: &[Member<'_>], total_weight: u32) -> Vec<Point> {
    let live = members.len() as u32;
    let capacity: usize = members.iter().map(|m| ketama_points(m.weight, total_weight, live) as usize).sum();
    let mut points = Vec::with_capacity(capacity);
    let mut host = Vec::with_capacity(MAX_HOSTLEN);
    for member in members {
        let hashes = ketama_points(member.weight, total_weight, live) / POINTS_PER_HASH;
        for i in 0..hashes {
            host.clear();
            host.extend_from_slice(member.name.as_bytes());
            host.push(b'-');
            host.extend_from_slice(i.to_string().as_bytes());
            host.truncate(MAX_HOSTLEN - 1);
            let digest = md5_digest(&host);
            for quad in digest.chunks_exact(4) {
                let value = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
                points.push(Point { value, server: member.server });
            }
        }
    }
    // Ties between equal values of different servers are rare (about P²/2³³ for P points) but
    // must break as nutcracker breaks them. twemproxy calls glibc `qsort`, which is a stable
    // merge sort whenever it can allocate its scratch buffer, so among equal values the point
    // inserted first comes first and wins the lookup: the server earlier in twemproxy's server
    // order. Rust's `sort_by_key` is stable too. `testdata/tie.txt` confirms it on the binary.
    points.sort_by_key(|p| p.value);
    points
}

/// Position in `points` of the point that owns `hash`: the first point whose value is ≥ `hash`,
/// wrapping to the first point past the end. `points` must be non-empty.
#[inline]
pub(crate) fn position(points: &[Point], hash: u32) -> usize {
    let at = points.partition_point(|p| p.value < hash);
    if at == points.len() { 0 } else { at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_give_160_points_except_in_the_f32_anomalies() {
        assert_eq!(ketama_points(1, 3, 3), 160);
        assert_eq!(ketama_points(1, 24, 24), 160);
        assert_eq!(ketama_points(1, 25, 25), 156);
        assert_eq!(ketama_points(1, 26, 26), 160);
        assert_eq!(ketama_points(1, 47, 47), 156);
        assert_eq!(ketama_points(1, 100, 100), 156);
    }

    #[test]
    fn f32_anomalies_below_1000_number_103() {
        let anomalies = (1..=1000).filter(|&n| ketama_points(1, n, n) != 160).count();
        assert_eq!(anomalies, 103);
    }

    #[test]
    fn unequal_weights() {
        assert_eq!([1, 2, 3].map(|w| ketama_points(w, 6, 3)), [80, 160, 240]);
        assert_eq!([1, 2, 5].map(|w| ketama_points(w, 8, 3)), [60, 120, 300]);
        assert_eq!([100_000, 1].map(|w| ketama_points(w, 100_001, 2)), [316, 0]);
    }

    #[test]
    fn point_hash_matches_twemproxy_test_vectors() {
        let points = build(&[Member { server: 0, name: "server1", weight: 1 }], 1);
        let digest = md5_digest(b"server1-8");
        let a0 = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let a3 = u32::from_le_bytes([digest[12], digest[13], digest[14], digest[15]]);
        assert_eq!(a0, 3_853_726_576);
        assert_eq!(a3, 2_667_054_752);
        assert!(points.iter().any(|p| p.value == a0) && points.iter().any(|p| p.value == a3));
    }

    #[test]
    fn lookup_is_lower_bound_with_wrap() {
        let points = [Point { value: 10, server: 0 }, Point { value: 20, server: 1 }];
        assert_eq!(position(&points, 0), 0);
        assert_eq!(position(&points, 10), 0);
        assert_eq!(position(&points, 11), 1);
        assert_eq!(position(&points, 20), 1);
        assert_eq!(position(&points, 21), 0);
        assert_eq!(position(&points, u32::MAX), 0);
    }

    #[test]
    fn long_names_are_truncated_like_snprintf() {
        let name = "x".repeat(300);
        let points = build(&[Member { server: 0, name: &name, weight: 1 }], 1);
        // Every "<name>-<i>" is cut to the same first 272 bytes, so all 40 digests are the digest
        // of those bytes and the continuum holds just its 4 values, 40 times each.
        let digest = md5_digest(&name.as_bytes()[..MAX_HOSTLEN - 1]);
        let values: Vec<u32> = digest.chunks_exact(4).map(|q| u32::from_le_bytes([q[0], q[1], q[2], q[3]])).collect();
        assert_eq!(points.len(), 160);
        assert!(points.iter().all(|p| values.contains(&p.value)));
    }
}
