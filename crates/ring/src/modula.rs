//! The modula distribution (`modula_update` and `modula_dispatch`, src/hashkit/nc_modula.c).

/// twemproxy lays out a table in which each live server appears `weight` times in a row, in
/// server order, and picks `table[hash % table.len()]`. Storing each server once with the
/// running total of weights gives the same answer without a table as long as the total weight
/// (a server of weight 100000 would need 100000 slots).
#[derive(Debug, Clone)]
pub(crate) struct Modula {
    /// Live servers (indices in the caller's list) in twemproxy's server order.
    servers: Vec<u32>,
    /// `ends[i]` is the exclusive end of `servers[i]`'s run of slots: the sum of the weights up to
    /// and including it. Strictly increasing, since weights are ≥ 1.
    ends: Vec<u32>,
}

impl Modula {
    /// Lays out the runs for `members` (caller index, weight) given in server order. The caller
    /// guarantees weights ≥ 1 and a total that fits a u32.
    pub(crate) fn build(members: impl Iterator<Item = (u32, u32)>) -> Modula {
        let mut servers = Vec::new();
        let mut ends = Vec::new();
        let mut total: u32 = 0;
        for (server, weight) in members {
            total = total.saturating_add(weight);
            servers.push(server);
            ends.push(total);
        }
        Modula { servers, ends }
    }

    /// Live servers in server order; walking it from [`Modula::position`] gives the next servers.
    pub(crate) fn servers(&self) -> &[u32] {
        &self.servers
    }

    /// The sum of the live servers' weights.
    pub(crate) fn total_weight(&self) -> u32 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Each live server with its weight, in server order.
    pub(crate) fn weights(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.servers.iter().zip(self.ends.iter().zip(starts)).map(|(s, (end, start))| (*s, end - start))
    }

    /// Index into [`Modula::servers`] of the server owning `hash`: the run holding slot
    /// `hash % total_weight`. There must be at least one server.
    #[inline]
    pub(crate) fn position(&self, hash: u32) -> usize {
        let total = self.ends.last().copied().unwrap_or(1).max(1);
        let slot = hash % total;
        // First run whose exclusive end lies beyond the slot. The slot is below the last end, so
        // this index is always in range; `min` keeps it so even for an empty table.
        self.ends.partition_point(|&end| end <= slot).min(self.servers.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// twemproxy's literal table: each server repeated `weight` times.
    fn expanded(members: &[(u32, u32)]) -> Vec<u32> {
        members.iter().flat_map(|&(server, weight)| std::iter::repeat_n(server, weight as usize)).collect()
    }

    #[test]
    fn runs_equal_the_expanded_table() {
        let members = [(7, 1), (3, 2), (5, 3), (0, 1)];
        let modula = Modula::build(members.into_iter());
        let table = expanded(&members);
        for hash in (0..200).chain([u32::MAX - 3, u32::MAX - 2, u32::MAX - 1, u32::MAX]) {
            let at = modula.position(hash);
            assert_eq!(modula.servers()[at], table[hash as usize % table.len()], "hash {hash}");
        }
    }
}
