//! Wake-ups for long polls. A store calls [`Wakeups::notify`] once entries it
//! appended are visible to polls (the embedded writer after its group commit;
//! the Redis store when its subscription hears of an append, from whichever
//! replica). A waiting poll subscribes *before* it reads the store, so an
//! append landing between its read and its wait still wakes it.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// One per store; polls wait on receivers of it.
#[derive(Debug)]
pub struct Wakeups {
    /// Counts notifications; only the change matters to a receiver.
    tx: watch::Sender<u64>,
    /// Whether notifications arrive. While false (the Redis subscription is
    /// down) waiting polls re-read the store on a timer instead.
    up: AtomicBool,
}

impl Wakeups {
    /// A source that is working (`up`) or not yet.
    pub fn new(up: bool) -> Wakeups {
        Wakeups {
            tx: watch::Sender::new(0),
            up: AtomicBool::new(up),
        }
    }

    /// Wakes every poll waiting now.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that has seen every notification so far: its `changed()`
    /// completes at the next one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Records whether notifications arrive.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Whether notifications arrive.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_subscriber_sees_only_later_notifications() {
        let w = Wakeups::new(true);
        w.notify();
        let mut rx = w.subscribe();
        let early = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        assert!(early.is_err(), "nothing since subscribing");
        w.notify();
        rx.changed().await.unwrap();
    }
}
