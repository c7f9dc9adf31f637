//! Serving a handler on two balanced workers, for the tests of moving
//! connections.
#![allow(dead_code)] // each test binary uses a different subset

use memshard_net::{Seat, ServeConfig, ServeStats, ShutdownTrigger, Spread, serve_balanced_local};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

pub(crate) type Serving =
    (std::net::SocketAddr, Arc<ServeStats>, ShutdownTrigger, tokio::task::JoinHandle<std::io::Result<()>>);

/// Serves `handler` on two workers.
pub(crate) async fn start_with<F, Fut>(spread: Spread, handler: F) -> Serving
where
    F: Fn(TcpStream, memshard_net::Shutdown, Seat) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<TcpStream>> + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (trigger, sd) = ShutdownTrigger::new();
    let stats = Arc::new(ServeStats::default());
    let serving = tokio::spawn(serve_balanced_local(l, ServeConfig::default(), stats.clone(), sd, 2, spread, handler));
    (addr, stats, trigger, serving)
}
