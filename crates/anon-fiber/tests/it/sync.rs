use anon_fiber::channel::{channel, channel_with_waiters, SendError, TryRecvError, TrySendError};
use anon_fiber::lock::{Condvar, Mutex, Notify, WaitGroup};
use anon_fiber::Runtime;
use std::sync::Arc;

#[test]
fn try_send_full_hands_value_back() {
    let (tx, rx) = channel::<u8>(1);
    tx.try_send(1).unwrap();
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(rx);
    assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
}

#[test]
fn send_parks_when_full_until_received() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = channel::<u32>(1);
    let p = rt
        .spawn(move || {
            for i in 0..10 {
                tx.send(i).unwrap();
            }
        })
        .unwrap();
    let c = rt.spawn(move || rx.iter().collect::<Vec<_>>()).unwrap();
    p.join().unwrap();
    assert_eq!(c.join().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn waiters_past_bound_get_again() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = channel_with_waiters::<u32>(1, 1);
    tx.try_send(0).unwrap();
    let t1 = tx.clone();
    let first = rt.spawn(move || t1.send(1)).unwrap();
    let t2 = tx.clone();
    // The second waiting sender is one too many.
    let second = rt
        .spawn(move || {
            anon_fiber::yield_now();
            t2.send(2)
        })
        .unwrap();
    let r2 = second.join().unwrap();
    assert!(matches!(r2, Err(SendError::Again(2))), "{r2:?}");
    assert_eq!(rx.recv(), Ok(0));
    first.join().unwrap().unwrap();
    assert_eq!(rx.recv(), Ok(1));
}

#[test]
fn mutex_counts_across_workers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let hs: Vec<_> = (0..16)
        .map(|_| {
            let m = Arc::clone(&m);
            rt.spawn(move || {
                for _ in 0..200 {
                    let mut g = m.lock();
                    let v = *g;
                    anon_fiber::yield_now(); // hold it across a switch
                    *g = v + 1;
                }
            })
            .unwrap()
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), 16 * 200);
}

#[test]
fn condvar_and_notify_and_waitgroup() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let waiter = rt
        .spawn_on(0, move || {
            let (m, cv) = &*p2;
            let g = cv.wait_while(m.lock(), |ready| !*ready);
            *g
        })
        .unwrap();
    let p3 = Arc::clone(&pair);
    rt.spawn_on(1, move || {
        anon_fiber::sleep(std::time::Duration::from_millis(2));
        *p3.0.lock() = true;
        p3.1.notify_all();
    })
    .unwrap()
    .join()
    .unwrap();
    assert!(waiter.join().unwrap());

    // A notify with nobody waiting leaves a permit.
    let n = Arc::new(Notify::new());
    n.notify_one();
    let n2 = Arc::clone(&n);
    rt.spawn(move || n2.notified()).unwrap().join().unwrap();

    let wg = WaitGroup::new();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..10 {
        wg.add(1);
        let wg = wg.clone();
        let d = Arc::clone(&done);
        rt.spawn_on(i % 2, move || {
            anon_fiber::sleep(std::time::Duration::from_millis(1));
            d.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            wg.done();
        })
        .unwrap();
    }
    let wg2 = wg.clone();
    let d2 = Arc::clone(&done);
    let seen = rt
        .spawn(move || {
            wg2.wait();
            d2.load(std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap();
    assert_eq!(seen.join().unwrap(), 10);
    wg.wait(); // from a plain thread too
}
