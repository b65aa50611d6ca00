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
/// owner always ends up seeing all the work, never blocking on a lost wakeup.
#[test]
fn wake_racing_reset_is_never_lost() {
    const THREADS: usize = 3;
    const ITEMS: usize = 3_000;
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
    let work = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (waker, work) = (Arc::clone(&waker), Arc::clone(&work));
            std::thread::spawn(move || {
                for i in 0..ITEMS {
                    work.fetch_add(1, Ordering::Release);
                    waker.wake().unwrap();
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let mut seen = 0;
    let mut wakeups = 0;
    while seen < THREADS * ITEMS {
        // Each item is announced by a wake; if one were lost, this poll would time out.
        assert!(
            wait_for(&mut poll, &mut events, WAKE),
            "lost wakeup: saw {seen} of {} items",
            THREADS * ITEMS
        );
        wakeups += 1;
        waker.reset();
        seen = work.load(Ordering::Acquire);
    }
    for p in producers {
        p.join().unwrap();
    }
    assert!((1..=THREADS * ITEMS).contains(&wakeups));
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
