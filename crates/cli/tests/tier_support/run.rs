//! What every fault case does around its load: pause, poll until the tier
//! reaches a state (bounded in time), and print its figure.

use std::time::{Duration, Instant};

pub(crate) async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Polls `cond` every 20 ms until it holds, for up to `secs`.
pub(crate) async fn wait_until<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut cond: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep_ms(20).await;
    }
}

/// Prints one `FIGURE` line (docs/RELIABILITY.md records them).
#[allow(clippy::print_stderr)]
pub(crate) fn figure(text: String) {
    eprintln!("FIGURE {text}");
}
