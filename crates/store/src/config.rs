//! Store sizing and behaviour knobs, validated once at construction.

use thiserror::Error;

/// Smallest `max_item_size` memcached accepts for `-I` (1 KiB).
pub const MIN_ITEM_SIZE_LIMIT: usize = 1024;
/// Largest `max_item_size` memcached accepts for `-I` (1 GiB).
pub const MAX_ITEM_SIZE_LIMIT: usize = 1024 * 1024 * 1024;

/// Configuration for a [`Store`](crate::Store).
///
/// ```
/// use memshard_store::StoreConfig;
/// let cfg = StoreConfig { memory_limit: 8 << 20, ..StoreConfig::default() };
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Upper bound, in bytes, on the accounted size of all stored items
    /// (memcached `-m`, reported as `limit_maxbytes`). See the crate docs
    /// for what an item is charged.
    pub memory_limit: usize,
    /// Largest item accepted, measured with memcached's own item-size formula
    /// so the boundary is byte-for-byte the same as memcached's `-I`.
    pub max_item_size: usize,
    /// Requested number of independently locked shards; must be a power of
    /// two. The store may use fewer, see [`StoreConfig::effective_shards`].
    pub shards: usize,
    /// Evict least-recently-used items when full (memcached default). When
    /// `false` a full store answers `NoMemory` instead (memcached `-M`).
    pub evict: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { memory_limit: 64 * 1024 * 1024, max_item_size: 1024 * 1024, shards: 16, evict: true }
    }
}

/// Why a [`StoreConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `memory_limit` was zero.
    #[error("memory limit must be greater than zero")]
    ZeroMemory,
    /// `shards` was zero or not a power of two.
    #[error("shard count must be a non-zero power of two, got {0}")]
    BadShardCount(usize),
    /// `max_item_size` below memcached's 1 KiB floor.
    #[error("max item size must be at least {MIN_ITEM_SIZE_LIMIT} bytes, got {0}")]
    ItemSizeTooSmall(usize),
    /// `max_item_size` above memcached's 1 GiB ceiling.
    #[error("max item size must be at most {MAX_ITEM_SIZE_LIMIT} bytes, got {0}")]
    ItemSizeTooLarge(usize),
    /// memcached refuses `-I` larger than half of `-m`; so do we.
    #[error("max item size {max_item_size} exceeds half of the memory limit {memory_limit}")]
    ItemSizeAboveHalfMemory {
        /// The rejected `max_item_size`.
        max_item_size: usize,
        /// The configured `memory_limit`.
        memory_limit: usize,
    },
    /// A run-time limit too small for each shard to hold one largest item.
    #[error("memory limit {memory_limit} leaves a shard less than one item of {max_item_size} bytes")]
    LimitTooSmall {
        /// The rejected limit.
        memory_limit: usize,
        /// The configured `max_item_size`.
        max_item_size: usize,
    },
}

impl StoreConfig {
    /// Checks the configuration with the same rules memcached applies to
    /// `-m` / `-I`, plus the power-of-two shard rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.memory_limit == 0 {
            return Err(ConfigError::ZeroMemory);
        }
        if self.shards == 0 || !self.shards.is_power_of_two() {
            return Err(ConfigError::BadShardCount(self.shards));
        }
        if self.max_item_size < MIN_ITEM_SIZE_LIMIT {
            return Err(ConfigError::ItemSizeTooSmall(self.max_item_size));
        }
        if self.max_item_size > MAX_ITEM_SIZE_LIMIT {
            return Err(ConfigError::ItemSizeTooLarge(self.max_item_size));
        }
        if self.max_item_size > self.memory_limit / 2 {
            return Err(ConfigError::ItemSizeAboveHalfMemory {
                max_item_size: self.max_item_size,
                memory_limit: self.memory_limit,
            });
        }
        Ok(())
    }

    /// Number of shards the store will actually use.
    ///
    /// Each shard gets `memory_limit / shards` bytes and evicts on its own,
    /// so a shard must be able to hold at least two maximum-size items or
    /// large `set`s would fail on a mostly empty store. The requested count
    /// is halved until that holds (never below one).
    pub fn effective_shards(&self) -> usize {
        let mut shards = self.shards.max(1);
        while shards > 1 && self.memory_limit / shards < self.max_item_size.saturating_mul(2) {
            shards /= 2;
        }
        shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        let c = StoreConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.effective_shards(), 16);
    }

    #[test]
    fn rejects_bad_values() {
        let base = StoreConfig::default();
        let c = StoreConfig { memory_limit: 0, ..base.clone() };
        assert_eq!(c.validate(), Err(ConfigError::ZeroMemory));
        let c = StoreConfig { shards: 3, ..base.clone() };
        assert_eq!(c.validate(), Err(ConfigError::BadShardCount(3)));
        let c = StoreConfig { max_item_size: 10, ..base.clone() };
        assert_eq!(c.validate(), Err(ConfigError::ItemSizeTooSmall(10)));
        let c = StoreConfig { memory_limit: 1 << 20, ..base };
        assert!(matches!(c.validate(), Err(ConfigError::ItemSizeAboveHalfMemory { .. })));
    }

    #[test]
    fn small_memory_reduces_shards() {
        let c = StoreConfig { memory_limit: 8 << 20, ..StoreConfig::default() };
        assert_eq!(c.effective_shards(), 4);
        let c = StoreConfig { memory_limit: 2 << 20, ..StoreConfig::default() };
        assert_eq!(c.effective_shards(), 1);
    }
}
