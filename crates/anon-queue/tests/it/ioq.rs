use anon_queue::{Again, Ioq, ThreadParker};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits (bounded: 10 s) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn try_acquire_respects_the_limit() {
    let ioq = Ioq::new(2, 4);
    let a = ioq.try_acquire().unwrap();
    let _b = ioq.try_acquire().unwrap();
    assert_eq!(ioq.try_acquire().unwrap_err(), Again);
    assert_eq!(ioq.holders(), 2);
    drop(a);
    assert_eq!(ioq.holders(), 1);
    let s = ioq.stats();
    assert_eq!((s.acquired, s.rejected, s.limit), (2, 1, 2));
}

#[test]
fn waiters_are_served_in_arrival_order_and_the_overflow_gets_again() {
    let ioq = Arc::new(Ioq::new(1, 2));
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = ioq.try_acquire().unwrap();
    let mut threads = Vec::new();
    for id in 0..2 {
        let (ioq2, order2) = (Arc::clone(&ioq), Arc::clone(&order));
        threads.push(std::thread::spawn(move || {
            let p = ioq2.acquire(&ThreadParker::current()).unwrap();
            order2.lock().unwrap().push(id);
            drop(p);
        }));
        // Let each waiter register before the next one comes, to fix the arrival order.
        eventually("waiter registered", || ioq.waiters() == id + 1);
    }
    // Two wait already: a third caller is told to try again instead of queueing.
    assert_eq!(ioq.acquire(&ThreadParker::current()).unwrap_err(), Again);
    assert_eq!(ioq.stats().max_waiters_seen, 2);
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1]);
    let s = ioq.stats();
    assert_eq!((s.holders, s.waiters, s.acquired, s.rejected), (0, 0, 3, 1));
}

#[test]
fn raising_the_limit_wakes_waiters_and_lowering_it_lets_holders_finish() {
    let ioq = Arc::new(Ioq::new(0, 2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let ioq = Arc::clone(&ioq);
            std::thread::spawn(move || {
                let p = ioq.acquire(&ThreadParker::current()).unwrap();
                std::thread::sleep(Duration::from_millis(1));
                drop(p);
            })
        })
        .collect();
    eventually("both waiting", || ioq.waiters() == 2);
    ioq.set_limit(2);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ioq.holders(), 0);
    let a = ioq.try_acquire().unwrap();
    let b = ioq.try_acquire().unwrap();
    ioq.set_limit(1);
    drop(a);
    // Still one holder, at the new limit: no new permit.
    assert_eq!(ioq.try_acquire().unwrap_err(), Again);
    drop(b);
    assert!(ioq.try_acquire().is_ok());
}
