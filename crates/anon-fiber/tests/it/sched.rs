use anon_fiber::{
    channel::channel, FiberBuilder, FiberLocal, FiberState, JoinHandle, Runtime, SpawnError, WaitOn,
};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn spawn_join_returns_value() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let h = rt.spawn(|| 40 + 2).unwrap();
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn hundred_thousand_fibers_on_two_workers() {
    let rt = Runtime::builder()
        .workers(2)
        .max_fibers(4096)
        .build()
        .unwrap();
    let sum = Arc::new(AtomicUsize::new(0));
    let mut pending: VecDeque<JoinHandle<usize>> = VecDeque::new();
    let mut joined = 0usize;
    let mut again = 0usize;
    let total = 100_000usize;
    let mut i = 0;
    let end = crate::deadline(120);
    while i < total {
        assert!(std::time::Instant::now() < end, "took too long");
        let s = Arc::clone(&sum);
        match rt.spawn(move || {
            s.fetch_add(1, Ordering::Relaxed);
            anon_fiber::yield_now();
            i
        }) {
            Ok(h) => {
                pending.push_back(h);
                i += 1;
            }
            Err(SpawnError::Again) => {
                // Backpressure: finish the oldest before spawning more.
                again += 1;
                let h = pending.pop_front().expect("Again with nothing pending");
                h.join().unwrap();
                joined += 1;
            }
            Err(e) => panic!("spawn failed: {e}"),
        }
        if pending.len() >= 2048 {
            pending.pop_front().unwrap().join().unwrap();
            joined += 1;
        }
    }
    for h in pending.drain(..) {
        h.join().unwrap();
        joined += 1;
    }
    assert_eq!(joined, total);
    assert_eq!(sum.load(Ordering::Relaxed), total);
    assert!(rt.live_fibers() <= 4096);
    let _ = again;
}

#[test]
fn spawn_from_fiber_stays_on_worker_and_yield_interleaves() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let h = rt
        .spawn_on(1, || {
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            let l2 = Arc::clone(&log);
            let child = anon_fiber::spawn(move || {
                for i in 0..3 {
                    l2.lock().unwrap().push(("child", i));
                    anon_fiber::yield_now();
                }
                anon_fiber::worker_index()
            })
            .unwrap();
            for i in 0..3 {
                log.lock().unwrap().push(("parent", i));
                anon_fiber::yield_now();
            }
            let w = child.join().unwrap();
            let log = log.lock().unwrap().clone();
            (w, log)
        })
        .unwrap();
    let (w, log) = h.join().unwrap();
    assert_eq!(w, Some(1));
    // Both made progress before either finished: they interleaved.
    let first_child = log.iter().position(|e| e.0 == "child").unwrap();
    let last_parent = log.iter().rposition(|e| e.0 == "parent").unwrap();
    assert!(first_child < last_parent, "{log:?}");
    assert_eq!(log.len(), 6);
}

#[test]
fn ping_pong_across_workers_through_channels() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (to_b, from_a) = channel::<u32>(1);
    let (to_a, from_b) = channel::<u32>(1);
    let a = rt
        .spawn_on(0, move || {
            let me = anon_fiber::worker_index();
            for i in 0..1000 {
                to_b.send(i).unwrap();
                assert_eq!(from_b.recv().unwrap(), i + 1);
                assert_eq!(anon_fiber::worker_index(), me);
            }
            me
        })
        .unwrap();
    let b = rt
        .spawn_on(1, move || {
            let me = anon_fiber::worker_index();
            while let Ok(v) = from_a.recv() {
                to_a.send(v + 1).unwrap();
            }
            me
        })
        .unwrap();
    assert_eq!(a.join().unwrap(), Some(0));
    assert_eq!(b.join().unwrap(), Some(1));
}

#[test]
fn thread_id_never_changes_across_sleep_io_and_cross_worker_wakeups() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = channel::<u32>(1);
    let (ack_tx, ack_rx) = channel::<u32>(1);
    let watcher = rt
        .spawn_on(0, move || {
            let tid = std::thread::current().id();
            let mut same = true;
            let listener = anon_fiber::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            for i in 0..20 {
                anon_fiber::sleep(Duration::from_millis(1));
                same &= std::thread::current().id() == tid;
                // Cross-worker wakeup: the value comes from a fiber on worker 1.
                let v = rx.recv().unwrap();
                same &= std::thread::current().id() == tid;
                assert_eq!(v, i);
                // I/O wait: accept parks until the other worker connects.
                ack_tx.send(addr.port().into()).unwrap();
                let (mut s, _) = listener.accept().unwrap();
                same &= std::thread::current().id() == tid;
                let mut b = [0u8; 1];
                std::io::Read::read_exact(&mut s, &mut b).unwrap();
                same &= std::thread::current().id() == tid;
                assert_eq!(b[0], i as u8);
            }
            same
        })
        .unwrap();
    let other = rt
        .spawn_on(1, move || {
            for i in 0..20u32 {
                anon_fiber::sleep(Duration::from_millis(2));
                tx.send(i).unwrap();
                let port = ack_rx.recv().unwrap();
                let mut c =
                    anon_fiber::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
                std::io::Write::write_all(&mut c, &[i as u8]).unwrap();
            }
        })
        .unwrap();
    other.join().unwrap();
    assert!(watcher.join().unwrap(), "a fiber changed threads");
}

thread_local! {
    static TL: Cell<u64> = const { Cell::new(0) };
}

#[test]
fn thread_locals_keep_values_in_a_fiber() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = channel::<u64>(1);
    // Worker 1's fibers write their own value into their thread's TL.
    let other = rt
        .spawn_on(1, move || {
            for i in 0..30u64 {
                TL.with(|t| t.set(999));
                anon_fiber::sleep(Duration::from_millis(1));
                tx.send(i).unwrap();
            }
        })
        .unwrap();
    let me = rt
        .spawn_on(0, move || {
            TL.with(|t| t.set(7));
            let mut seen = Vec::new();
            for i in 0..30u64 {
                anon_fiber::sleep(Duration::from_millis(1));
                seen.push(TL.with(Cell::get));
                // Woken from worker 1: still on our thread, so still our value.
                assert_eq!(rx.recv().unwrap(), i);
                seen.push(TL.with(Cell::get));
                anon_fiber::yield_now();
                seen.push(TL.with(Cell::get));
            }
            seen
        })
        .unwrap();
    other.join().unwrap();
    let seen = me.join().unwrap();
    assert_eq!(seen.len(), 90);
    assert!(seen.iter().all(|v| *v == 7), "{seen:?}");
}

static LOCAL: FiberLocal<Cell<u32>> = FiberLocal::new(|| Cell::new(0));

#[test]
fn fiber_locals_are_per_fiber() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let hs: Vec<_> = (1..=4u32)
        .map(|k| {
            rt.spawn(move || {
                for _ in 0..k {
                    LOCAL.with(|c| c.set(c.get() + 1));
                    anon_fiber::yield_now();
                }
                LOCAL.with(Cell::get)
            })
            .unwrap()
        })
        .collect();
    let got: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, vec![1, 2, 3, 4]);
}

#[test]
fn panic_in_one_fiber_leaves_others_running_and_join_returns_it() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = channel::<u32>(4);
    let survivor = rt
        .spawn(move || {
            let mut n = 0;
            while let Ok(v) = rx.recv() {
                n += v;
            }
            n
        })
        .unwrap();
    let bad = rt
        .spawn(|| -> u32 {
            anon_fiber::yield_now();
            panic!("boom in a fiber");
        })
        .unwrap();
    let err = bad.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom in a fiber"));
    // The worker lives on: more fibers run, and the survivor still receives.
    let h = rt
        .spawn(move || {
            for i in 1..=3 {
                tx.send(i).unwrap();
            }
        })
        .unwrap();
    h.join().unwrap();
    assert_eq!(survivor.join().unwrap(), 6);
}

#[test]
fn live_fiber_bound_returns_again() {
    let rt = Runtime::builder().workers(1).max_fibers(8).build().unwrap();
    let gate = Arc::new(anon_fiber::lock::Notify::new());
    let mut hs = Vec::new();
    for _ in 0..8 {
        let g = Arc::clone(&gate);
        hs.push(rt.spawn(move || g.notified()).unwrap());
    }
    assert_eq!(rt.live_fibers(), 8);
    assert_eq!(rt.spawn(|| ()).unwrap_err(), SpawnError::Again);
    // From inside a fiber too (the HTTP driver's path): the bound holds.
    gate.notify_one();
    hs.remove(0).join().unwrap();
    let inner = rt
        .spawn(|| {
            let r = anon_fiber::spawn(|| ());
            matches!(r, Err(SpawnError::Again))
        })
        .unwrap();
    assert!(inner.join().unwrap());
    for _ in 0..hs.len() {
        gate.notify_one();
    }
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(rt.live_fibers(), 0);
    rt.spawn(|| ()).unwrap().join().unwrap();
}

#[test]
fn park_unpark_from_another_thread() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = Arc::clone(&flag);
    let h = rt
        .spawn_on(0, move || {
            let mut parks = 0;
            while !f2.load(Ordering::Acquire) && parks < 10_000 {
                anon_fiber::park();
                parks += 1;
            }
            f2.load(Ordering::Acquire)
        })
        .unwrap();
    let fiber = h.fiber().clone();
    std::thread::sleep(Duration::from_millis(10));
    flag.store(true, Ordering::Release);
    fiber.unpark();
    assert!(h.join().unwrap());
}

#[test]
fn park_timeout_and_sleep_return() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let h = rt
        .spawn(|| {
            let t = std::time::Instant::now();
            anon_fiber::park_timeout(Duration::from_millis(5));
            anon_fiber::sleep(Duration::from_millis(5));
            t.elapsed()
        })
        .unwrap();
    assert!(h.join().unwrap() >= Duration::from_millis(5));
}

#[test]
fn dump_lists_parked_fibers_with_names() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let gate = Arc::new(anon_fiber::lock::Notify::new());
    let g = Arc::clone(&gate);
    let h = FiberBuilder::new()
        .name("sleeper")
        .spawn_in(&rt.handle(), Some(1), move || g.notified())
        .unwrap();
    let mut found = None;
    for _ in 0..200 {
        found = rt
            .dump()
            .into_iter()
            .find(|i| i.name.as_deref() == Some("sleeper") && i.state == FiberState::Parked);
        if found.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let info = found.expect("the parked fiber is in the dump");
    assert_eq!(info.worker, 1);
    assert_eq!(info.waiting_on, WaitOn::Notify);
    assert_eq!(info.id, h.fiber().id());
    gate.notify_one();
    h.join().unwrap();
}

#[test]
fn shutdown_cancels_parked_fibers() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let h = rt.spawn(anon_fiber::park).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    drop(rt);
    assert!(matches!(h.join(), Err(anon_fiber::JoinError::Cancelled)));
}

#[test]
fn try_spawn_hands_the_closure_back_on_again() {
    let rt = Runtime::builder().workers(1).max_fibers(2).build().unwrap();
    let gate = Arc::new(anon_fiber::lock::Notify::new());
    let g = Arc::clone(&gate);
    let blocker = rt.spawn(move || g.notified()).unwrap();
    let h = rt
        .spawn(|| {
            // This fiber and the blocker fill the bound of 2.
            let conn = String::from("the connection");
            let refused = match anon_fiber::try_spawn(move || conn.len()) {
                Ok(_) => return None,
                Err(r) => r,
            };
            let again = refused.error() == SpawnError::Again;
            // The closure comes back with what it captured, unrun.
            Some((again, (refused.into_inner())()))
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), Some((true, "the connection".len())));
    gate.notify_one();
    blocker.join().unwrap();
    // Off the runtime: NoRuntime, closure back as well.
    let refused = anon_fiber::try_spawn(|| 7).unwrap_err();
    assert_eq!(refused.error(), SpawnError::NoRuntime);
    assert_eq!((refused.into_inner())(), 7);
    // Under the bound it spawns.
    let ok = rt
        .spawn(|| anon_fiber::try_spawn(|| 5).ok().map(|h| h.join().unwrap()))
        .unwrap();
    assert_eq!(ok.join().unwrap(), Some(5));
}

#[test]
fn shutdown_unwind_is_told_apart_from_a_panic() {
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::atomic::AtomicBool;
    let rt = Runtime::builder().workers(1).build().unwrap();
    let cancelled = Arc::new(AtomicBool::new(false));
    let panicked = Arc::new(AtomicBool::new(false));
    let (c, p) = (Arc::clone(&cancelled), Arc::clone(&panicked));
    let (tx, rx) = std::sync::mpsc::channel();
    let _h = rt
        .spawn(move || {
            let r = panic::catch_unwind(|| panic!("a handler bug"));
            if let Err(e) = r {
                p.store(!anon_fiber::is_cancellation(&*e), Ordering::SeqCst);
            }
            tx.send(()).unwrap();
            // Parked forever: only the runtime's shutdown ends this fiber.
            let r = panic::catch_unwind(AssertUnwindSafe(|| loop {
                anon_fiber::park();
            }));
            if let Err(e) = r {
                c.store(anon_fiber::is_cancellation(&e), Ordering::SeqCst);
                panic::resume_unwind(e);
            }
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    drop(rt);
    assert!(
        panicked.load(Ordering::SeqCst),
        "a panic is not a cancellation"
    );
    assert!(
        cancelled.load(Ordering::SeqCst),
        "the shutdown unwind is one"
    );
}
