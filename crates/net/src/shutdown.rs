//! A cloneable shutdown signal, and [`StopSignal`], the form of it a
//! connection polls on every read.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use tokio::sync::watch;

/// The sending side: trigger once, every [`Shutdown`] sees it. Dropping the
/// last clone counts as a trigger too.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    // Declared before `tx`: the flag must be set before the channel closes
    // and wakes the receivers, or a woken [`StopSignal`] could miss it.
    last: Arc<SetOnDrop>,
    tx: watch::Sender<bool>,
}

/// Sets the flag when the last trigger goes away.
#[derive(Debug)]
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The receiving side, cheap to clone into every task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    /// Mirrors the channel: set before any receiver is woken. Reading it is
    /// a load from a line nobody writes until shutdown, so threads checking it
    /// on every request do not contend, as they would on the channel's lock.
    flag: Arc<AtomicBool>,
}

impl ShutdownTrigger {
    /// A new, untriggered signal and its first receiver.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        let flag = Arc::new(AtomicBool::new(false));
        (ShutdownTrigger { last: Arc::new(SetOnDrop(flag.clone())), tx }, Shutdown { rx, flag })
    }

    /// Tells every receiver to stop.
    pub fn trigger(&self) {
        self.last.0.store(true, Ordering::Release);
        // send_replace never fails, even with no receivers left.
        self.tx.send_replace(true);
    }

    /// Another receiver.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown { rx: self.tx.subscribe(), flag: self.last.0.clone() }
    }
}

impl Shutdown {
    /// A signal that never fires (for tests and embedding).
    pub fn never() -> Shutdown {
        let (trigger, rx) = ShutdownTrigger::new();
        // Keep the trigger alive forever so nothing fires on its drop.
        std::mem::forget(trigger);
        rx
    }

    /// Whether shutdown has been requested (or the trigger is gone).
    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Resolves when shutdown is requested (or the trigger is gone).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: treat it as a shutdown too.
        let _ = self.rx.wait_for(|v| *v).await;
    }

    /// The signal as a future a connection can poll beside every read.
    pub fn signal(&self) -> StopSignal {
        let mut rx = self.clone();
        StopSignal {
            flag: self.flag.clone(),
            wait: Box::pin(async move { rx.wait().await }),
            registered: None,
            done: false,
        }
    }
}

/// Resolves once shutdown is requested. Unlike a fresh [`Shutdown::wait`]
/// per read, polling it costs an atomic load and a waker comparison: it
/// joins the channel's waiter list once, and again only if the task's waker
/// changes, instead of taking the channel's lock on every poll.
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    wait: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The waker the channel holds for us, if any.
    registered: Option<Waker>,
    /// `wait` finished (it must not be polled again).
    done: bool,
}

impl std::fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopSignal").field("triggered", &self.flag.load(Ordering::Relaxed)).finish()
    }
}

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The flag is set before the channel wakes anyone, so a wake-up from
        // the channel always finds it set.
        if self.done || self.flag.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        if self.wait.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(());
        }
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn os_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_reaches_all() {
        let (t, mut a) = ShutdownTrigger::new();
        let mut b = t.subscribe();
        assert!(!a.is_triggered());
        t.trigger();
        a.wait().await;
        b.wait().await;
        assert!(b.is_triggered());
    }

    /// A connection idle on a read with the signal beside it wakes when
    /// another thread triggers, though it polled the signal only once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signal_wakes_an_idle_task_from_another_thread() {
        let (t, sd) = ShutdownTrigger::new();
        let mut sig = sd.signal();
        let task = tokio::spawn(async move {
            let mut polls = 0u32;
            std::future::poll_fn(|cx| {
                polls += 1;
                std::pin::Pin::new(&mut sig).poll(cx)
            })
            .await;
            polls
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!task.is_finished(), "fired before the trigger");
        std::thread::spawn(move || t.trigger()).join().expect("trigger thread");
        let polls = tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the trigger woke the task")
            .expect("task");
        assert_eq!(polls, 2, "one poll to register, one after the wake-up");
        assert!(sd.is_triggered());
    }

    /// Dropping every trigger counts as a shutdown, for the flag, the
    /// signal and `wait` alike.
    #[tokio::test]
    async fn dropping_the_last_trigger_fires() {
        let (t, mut sd) = ShutdownTrigger::new();
        let t2 = t.clone();
        let sig = sd.signal();
        drop(t);
        assert!(!sd.is_triggered(), "one trigger is still alive");
        drop(t2);
        assert!(sd.is_triggered());
        tokio::time::timeout(std::time::Duration::from_secs(5), sig).await.expect("signal fired");
        tokio::time::timeout(std::time::Duration::from_secs(5), sd.wait()).await.expect("wait fired");
    }

    #[tokio::test]
    async fn never_stays_quiet() {
        let sd = Shutdown::never();
        let fired = tokio::time::timeout(std::time::Duration::from_millis(50), sd.signal()).await;
        assert!(fired.is_err());
        assert!(!sd.is_triggered());
    }
}
