//! The shutdown every long-running subcommand waits on.

use memshard_net::{Shutdown, ShutdownTrigger, os_signal};

/// A shutdown triggered by SIGINT or SIGTERM. Call inside the runtime.
pub(crate) fn shutdown_on_signal() -> Shutdown {
    let (trigger, shutdown) = ShutdownTrigger::new();
    tokio::spawn(async move {
        os_signal().await;
        tracing::info!("shutting down");
        trigger.trigger();
    });
    shutdown
}
