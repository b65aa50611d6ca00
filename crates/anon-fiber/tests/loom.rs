//! Loom models of the scheduler's cross-thread handshakes (run by `cargo xtask loom`).
//!
//! Fibers are not run inside loom (loom itself runs on `generator` coroutines): the models
//! drive the same state machines the workers use, from loom threads.

#![cfg(anon_loom)]

use anon_fiber::__loom::{Notifier, ParkState, Remote};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::collections::VecDeque;

/// A fiber parks while another thread unparks it: it is resumed exactly once — by its
/// own token, by the scheduler's failed commit, or by the unparker's queueing — never
/// zero times (lost wakeup) and never twice (double resume).
#[test]
fn park_unpark_resumes_exactly_once() {
    loom::model(|| {
        let state = Arc::new(ParkState::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let s2 = Arc::clone(&state);
        let q2 = Arc::clone(&queued);
        let unparker = thread::spawn(move || {
            if s2.unpark() {
                q2.fetch_add(1, Ordering::SeqCst);
            }
        });
        // The fiber asks to park; the worker commits it after the switch.
        let resumed_without_parking = state.try_consume_token() || !state.commit_park();
        unparker.join().unwrap();
        let by_unparker = queued.load(Ordering::SeqCst);
        assert_eq!(usize::from(resumed_without_parking) + by_unparker, 1);
    });
}

/// Two unparkers race with one park: still exactly one resume.
#[test]
fn two_unparkers_one_resume() {
    loom::model(|| {
        let state = Arc::new(ParkState::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&state);
                let q = Arc::clone(&queued);
                thread::spawn(move || {
                    if s.unpark() {
                        q.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let resumed_without_parking = state.try_consume_token() || !state.commit_park();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(
            usize::from(resumed_without_parking) + queued.load(Ordering::SeqCst),
            1
        );
    });
}

/// Counts notifications (the model's stand-in for the eventfd).
struct CountingNotifier(Arc<AtomicUsize>);

impl Notifier for CountingNotifier {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A message pushed into a worker's inbox from another thread is either seen by the
/// worker before it blocks, or the worker blocks with a wakeup pending: never lost.
#[test]
fn inbox_message_is_never_stranded() {
    loom::model(|| {
        let notified = Arc::new(AtomicUsize::new(0));
        let remote = Arc::new(Remote::<u32, _>::new(
            2,
            CountingNotifier(Arc::clone(&notified)),
        ));
        let r2 = Arc::clone(&remote);
        let sender = thread::spawn(move || r2.push(7));
        let mut got = VecDeque::new();
        remote.drain_into(&mut got);
        let mut blocked = false;
        if got.is_empty() {
            if remote.prepare_sleep() {
                blocked = true;
            } else {
                remote.drain_into(&mut got);
            }
        }
        sender.join().unwrap();
        if got.is_empty() {
            assert!(blocked, "nothing received yet the worker did not block");
            assert!(
                notified.load(Ordering::SeqCst) > 0,
                "worker blocks with a message in its inbox and no wakeup pending"
            );
        } else {
            assert_eq!(got, [7]);
        }
    });
}

/// The channel's wait-list protocol as the fiber channel uses it: `anon_queue::WaitList`
/// with this crate's `Parker` as the park hook. A waiter registers, re-checks, parks; the
/// producer publishes, then notifies. The waiter always returns (no lost wakeup).
#[test]
fn channel_wait_list_no_lost_wakeup() {
    loom::model(|| {
        let ready = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let list = Arc::new(anon_queue::WaitList::new(2));
        let (r2, l2) = (Arc::clone(&ready), Arc::clone(&list));
        let producer = thread::spawn(move || {
            r2.store(true, Ordering::Release);
            l2.notify_one();
        });
        let parker = anon_fiber::Parker::current();
        let got = list
            .wait_until(&parker, || ready.load(Ordering::Acquire).then_some(7))
            .unwrap();
        assert_eq!(got, 7);
        producer.join().unwrap();
    });
}

/// The fiber channel end to end: a receiver parked on an empty channel is woken by the
/// send.
#[test]
fn channel_receiver_wakes_on_send() {
    loom::model(|| {
        let (tx, rx) = anon_fiber::channel::channel::<u32>(1);
        let receiver = thread::spawn(move || rx.recv());
        tx.try_send(1).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(1));
    });
}

/// A sender parked on a full channel is woken by the receive, and its item arrives.
#[test]
fn channel_sender_wakes_on_recv() {
    loom::model(|| {
        let (tx, rx) = anon_fiber::channel::channel::<u32>(1);
        tx.try_send(0).unwrap();
        let sender = thread::spawn(move || tx.send(1).is_ok());
        assert_eq!(rx.try_recv(), Ok(0));
        assert!(sender.join().unwrap());
        assert_eq!(rx.try_recv(), Ok(1));
    });
}
