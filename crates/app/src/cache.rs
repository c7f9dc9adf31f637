//! The cache behind the endpoint: get, and on a miss `add` a random value.

use crate::config::AppConfig;
use crate::error::AppError;
use memshard_client::{ClientConfig, Pool, PoolConfig, StoreStatus};
use rand::Rng;
use rand::distr::Alphanumeric;
use std::time::Duration;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The value now cached for the key.
    pub value: String,
    /// Whether the value was already cached (`false`: this request added it).
    pub hit: bool,
}

/// Pipelined, pooled connections to the cache (the proxy).
#[derive(Debug, Clone)]
pub struct Cache {
    pool: Pool,
    request_timeout: Duration,
    value_len: usize,
    ttl: u32,
}

impl Cache {
    /// A cache client for `config.cache`; connects on first use, so the app
    /// starts (and answers `/healthz`) while the cache is still down.
    pub fn new(config: &AppConfig) -> Cache {
        let client = ClientConfig {
            timeout: config.cache_timeout,
            connect_timeout: config.cache_timeout,
            ..ClientConfig::default()
        };
        // A short backoff ceiling: after the proxy comes back, the app should
        // be serving again within about a second, not five.
        let pool_config = PoolConfig {
            size: config.connections,
            client,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        };
        Cache {
            pool: Pool::with_tls(config.cache.clone(), pool_config, config.cache_tls.clone()),
            request_timeout: config.request_timeout,
            value_len: config.value_len,
            ttl: config.ttl,
        }
    }

    /// The value cached for `key`; on a miss, stores a random one with `add`
    /// and returns it. Two requests that miss at once both `add`; the second
    /// gets `NOT_STORED` and reads back the first one's value, so both answer
    /// the same value. Bounded by the request timeout.
    pub async fn lookup(&self, key: &str) -> Result<Lookup, AppError> {
        self.bounded(self.lookup_unbounded(key)).await
    }

    /// Whether the cache answers now (`version`, answered by the proxy
    /// itself, so one dead shard does not make every app replica unready).
    pub async fn ready(&self) -> Result<String, AppError> {
        self.bounded(async { Ok(self.pool.client().await?.version().await?) }).await
    }

    async fn bounded<T>(&self, work: impl Future<Output = Result<T, AppError>>) -> Result<T, AppError> {
        match tokio::time::timeout(self.request_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(AppError::Timeout(self.request_timeout.as_millis())),
        }
    }

    async fn lookup_unbounded(&self, key: &str) -> Result<Lookup, AppError> {
        let client = self.pool.client().await?;
        if let Some(item) = client.get(key).await? {
            return Ok(Lookup { value: String::from_utf8_lossy(&item.value).into_owned(), hit: true });
        }
        let value = random_value(self.value_len);
        match client.add(key, &value, 0, i64::from(self.ttl)).await? {
            StoreStatus::Stored => Ok(Lookup { value, hit: false }),
            // Another request added a value between our get and add: answer
            // with that one, so every caller sees the same value.
            _ => match client.get(key).await? {
                Some(item) => Ok(Lookup { value: String::from_utf8_lossy(&item.value).into_owned(), hit: true }),
                None => Err(AppError::Vanished),
            },
        }
    }
}

/// `len` random letters and digits.
fn random_value(len: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::random_value;

    #[test]
    fn random_values_are_alphanumeric_and_differ() {
        let a = random_value(16);
        let b = random_value(16);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b, "two 16-character random values should differ");
    }
}
