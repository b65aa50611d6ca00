use crate::{poll_tokens, wait_for, PATIENCE, QUIET};
use anon_reactor::{Events, Poll, Token, Waker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const WAKE: Token = Token(usize::MAX);

#[test]
fn many_wakes_from_another_thread_wake_one_poll() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
    let w = Arc::clone(&waker);
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        for _ in 0..10_000 {
            w.wake().unwrap();
        }
    });
    // The first wake ends a poll that would otherwise block for 10 s.
    poll.poll(&mut events, Some(PATIENCE)).unwrap();
    assert_eq!(events.iter().map(|e| e.token()).collect::<Vec<_>>(), [WAKE]);
    assert!(
        start.elapsed() < PATIENCE,
        "woken promptly, not by the timeout"
    );
    t.join().unwrap();
    // All 10 000 wakes coalesced: without a reset there is no second event.
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);

    // After reset, the next wake is a new event; a wake with no reset is not.
    waker.reset();
    waker.wake().unwrap();
    assert_eq!(poll_tokens(&mut poll, &mut events, PATIENCE), vec![WAKE]);
    waker.wake().unwrap();
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
}

/// Wakes racing with resets: following the protocol (reset, then look for work) the poll
/// owner always sees all the work, never blocking on a lost wakeup. Each producer waits for
/// its item to be acknowledged before the next one, so nearly every item needs its own
/// wakeup, and the two producers' wakes race with the owner's resets thousands of times.
#[test]
fn wake_racing_reset_is_never_lost() {
    const THREADS: usize = 2;
    const ITEMS: usize = 2_000;
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
    let work = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (waker, work, acked) = (Arc::clone(&waker), Arc::clone(&work), Arc::clone(&acked));
            std::thread::spawn(move || {
                let deadline = Instant::now() + PATIENCE;
                for _ in 0..ITEMS {
                    let mine = work.fetch_add(1, Ordering::Release) + 1;
                    waker.wake().unwrap();
                    while acked.load(Ordering::Acquire) < mine {
                        assert!(Instant::now() < deadline, "item {mine} never acknowledged");
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let mut wakeups = 0;
    while acked.load(Ordering::Relaxed) < THREADS * ITEMS {
        // Each unacknowledged item was announced by a wake: a lost one would time out here.
        assert!(
            wait_for(&mut poll, &mut events, WAKE),
            "lost wakeup: acknowledged {} of {} items",
            acked.load(Ordering::Relaxed),
            THREADS * ITEMS
        );
        wakeups += 1;
        waker.reset();
        acked.store(work.load(Ordering::Acquire), Ordering::Release);
    }
    for p in producers {
        p.join().unwrap();
    }
    // Every wakeup acknowledged at least one item, and there were many races.
    assert!(wakeups <= THREADS * ITEMS);
    assert!(wakeups >= ITEMS, "only {wakeups} wakeups");
}

#[test]
fn dropping_the_waker_removes_its_registration() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let waker = Waker::new(poll.registry(), WAKE).unwrap();
    waker.wake().unwrap();
    drop(waker);
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
}
