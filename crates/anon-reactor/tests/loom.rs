//! Loom model of the `Waker` coalescing protocol (`WakeFlag`): a wake racing with the poll
//! owner's reset is never lost. The eventfd is modelled by a counter of notifications sent.
//!
//! Run: `RUSTFLAGS="--cfg anon_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom
//! -p anon-reactor`.
#![cfg(anon_loom)]

use anon_reactor::WakeFlag;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The state a poll owner is in after it saw the waker's event: a notification was sent
/// (flag set) and consumed. It now resets and looks for work while wakers publish work and
/// wake. Afterwards, every waker's work must be either seen by that look or announced by a
/// new notification.
#[test]
fn wake_racing_reset_is_seen_or_notified() {
    loom::model(|| {
        let flag = Arc::new(WakeFlag::new());
        assert!(flag.should_notify()); // the notification the owner already consumed
        let work = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let (flag, work, sent) = (flag.clone(), work.clone(), sent.clone());
                thread::spawn(move || {
                    work.fetch_add(1, Ordering::Relaxed);
                    if flag.should_notify() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        flag.reset();
        let seen = work.load(Ordering::Relaxed);
        for w in wakers {
            w.join().unwrap();
        }
        // Nothing is lost: if the owner did not see all the work, a new notification is
        // on its way (at most one: wakes coalesce).
        let sent = sent.load(Ordering::Relaxed);
        assert!(
            seen == 2 || sent == 1,
            "seen {seen} of 2 items, {sent} notifications"
        );
        assert!(sent <= 1);
    });
}

/// Without a reset, wakes coalesce: exactly one notification for any number of wakers.
#[test]
fn wakes_coalesce_until_reset() {
    loom::model(|| {
        let flag = Arc::new(WakeFlag::new());
        let sent = Arc::new(AtomicUsize::new(0));
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let (flag, sent) = (flag.clone(), sent.clone());
                thread::spawn(move || {
                    for _ in 0..2 {
                        if flag.should_notify() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for w in wakers {
            w.join().unwrap();
        }
        assert_eq!(sent.load(Ordering::Relaxed), 1);
    });
}
