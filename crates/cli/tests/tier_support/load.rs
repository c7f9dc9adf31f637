//! A closed-loop load of checked reads and writes through the proxy.
//!
//! `tasks` clients each own `keys` keys and alternate: write the next version
//! of a key, read another. Every request is timed and logged; every read is
//! checked (see [`super::checker`]). Each request is bounded by the client's
//! timeout, and the loop by the stop flag.

use super::checker::{KeyState, value};
use memshard_client::{Client, ClientConfig, ClientError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One request's fate.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// When it was sent, since the load started.
    pub(crate) at: Duration,
    /// How long it took.
    pub(crate) latency: Duration,
    /// `None` on success, else the error.
    pub(crate) error: Option<String>,
    /// The key it was for.
    pub(crate) key: String,
}

/// Everything the load saw.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Every request, in completion order per task, tasks concatenated.
    pub(crate) events: Vec<Event>,
    /// Reads that returned wrong data.
    pub(crate) wrong: Vec<String>,
    /// Reads that missed a key whose last write was acknowledged: a write
    /// lost (to a dead shard, or a remap), unless the cache evicted it.
    pub(crate) lost: Vec<String>,
}

impl Report {
    /// Requests sent at or after `from` (and before `to`).
    pub(crate) fn between(&self, from: Duration, to: Duration) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.at >= from && e.at < to)
    }

    /// Failed requests sent in `[from, to)`.
    pub(crate) fn failures(&self, from: Duration, to: Duration) -> usize {
        self.between(from, to).filter(|e| e.error.is_some()).count()
    }

    /// The longest request.
    pub(crate) fn max_latency(&self) -> Duration {
        self.events.iter().map(|e| e.latency).max().unwrap_or_default()
    }

    /// The `q` quantile (0..=1) of the latency of requests sent in
    /// `[from, to)`.
    pub(crate) fn latency_quantile(&self, from: Duration, to: Duration, q: f64) -> Duration {
        let mut l: Vec<Duration> = self.between(from, to).map(|e| e.latency).collect();
        l.sort_unstable();
        let i = ((l.len() as f64 * q).ceil() as usize).saturating_sub(1);
        l.get(i).copied().unwrap_or_default()
    }
}

/// A running load; [`Load::stop`] ends it and returns the report.
pub(crate) struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Report>>,
}

/// Longest one request may take, far above the proxy's 400 ms `timeout`: a
/// request that hits it means the proxy hung, which the tests check for.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

impl Load {
    /// Starts `tasks` clients against `addr`, each owning `keys` keys named
    /// `{prefix}{task}:{i}`.
    pub(crate) fn start(addr: SocketAddr, tasks: usize, keys: usize, prefix: &str) -> Load {
        Load::start_keys(addr, (0..tasks).map(|t| (0..keys).map(|i| format!("{prefix}{t}:{i}")).collect()).collect())
    }

    /// Starts one client per key list (each list non-empty, lists disjoint).
    pub(crate) fn start_keys(addr: SocketAddr, key_lists: Vec<Vec<String>>) -> Load {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks =
            key_lists.into_iter().map(|names| tokio::spawn(client_loop(addr, names, started, stop.clone()))).collect();
        Load { started, stop, tasks }
    }

    /// Time since the load started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops every client after its current request and collects the report.
    pub(crate) async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut report = Report::default();
        for t in self.tasks {
            let Report { events, wrong, lost } = t.await.expect("load task");
            report.events.extend(events);
            report.wrong.extend(wrong);
            report.lost.extend(lost);
        }
        report
    }
}

async fn client_loop(addr: SocketAddr, keys: Vec<String>, started: Instant, stop: Arc<AtomicBool>) -> Report {
    let cfg = ClientConfig { timeout: CLIENT_TIMEOUT, connect_timeout: CLIENT_TIMEOUT, max_in_flight: 1 };
    let mut states = vec![KeyState::default(); keys.len()];
    let (mut events, mut wrong, mut lost) = (Vec::new(), Vec::new(), Vec::new());
    let mut client: Option<Client> = None;
    let mut step = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let at = started.elapsed();
        let c = match &client {
            Some(c) if !c.is_broken() => c.clone(),
            _ => match Client::connect_with(addr, cfg).await {
                Ok(c) => {
                    client = Some(c.clone());
                    c
                }
                Err(e) => {
                    events.push(Event {
                        at,
                        latency: started.elapsed() - at,
                        error: Some(e.to_string()),
                        key: String::new(),
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Writes walk the keys in order; each read is of the key written half
        // a round ago, so reads see values that have sat in the cache a while
        // (through a fault, a value may sit on a shard that missed later
        // writes: that is what the checker must catch).
        let w = (step / 2) % keys.len();
        let i = if step % 2 == 0 { w } else { (w + keys.len() / 2) % keys.len() };
        let key = &keys[i];
        let error = if step % 2 == 0 {
            let version = states[i].next_version();
            match c.set(key, value(key, version), 0, 0).await {
                Ok(_) => {
                    states[i].acked(version);
                    None
                }
                Err(e) => {
                    states[i].maybe(version);
                    Some(e)
                }
            }
        } else {
            match c.get(key).await {
                Ok(item) => {
                    if let Some(why) = states[i].check(key, item.as_ref().map(|it| it.value.as_ref())) {
                        wrong.push(format!("at {at:?}: {why}"));
                    }
                    if item.is_none() && states[i].has_acked() {
                        lost.push(format!("at {at:?}: {key} missed after an acknowledged write"));
                    }
                    None
                }
                Err(e) => Some(e),
            }
        };
        events.push(Event {
            at,
            latency: started.elapsed() - at,
            error: error.as_ref().map(describe),
            key: key.clone(),
        });
        step += 1;
    }
    Report { events, wrong, lost }
}

fn describe(e: &ClientError) -> String {
    e.to_string()
}
