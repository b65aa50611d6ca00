use anon_fiber::{BlockingError, Runtime};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn spawn_blocking_returns_value_and_parks_only_the_fiber() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let h = rt
        .spawn(|| {
            anon_fiber::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(5));
                std::thread::current().name().map(str::to_string)
            })
        })
        .unwrap();
    // The worker keeps running other fibers meanwhile.
    let other = rt.spawn(|| 7).unwrap();
    assert_eq!(other.join().unwrap(), 7);
    let name = h.join().unwrap().unwrap();
    assert!(name.unwrap().contains("blocking"));
}

#[test]
fn spawn_blocking_past_queue_bound_returns_again() {
    let rt = Runtime::builder()
        .workers(1)
        .blocking_threads(1)
        .blocking_queue(1)
        .build()
        .unwrap();
    let handle = rt.handle();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // Occupies the only thread.
    let busy = handle
        .spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv_timeout(Duration::from_secs(30)).is_ok()
        })
        .unwrap();
    started_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // Fills the queue.
    let queued = handle.spawn_blocking(|| 2).unwrap();
    // One more: the queue is full.
    assert!(matches!(
        handle.spawn_blocking(|| 3),
        Err(BlockingError::Again)
    ));
    // And from a fiber, through the parking API.
    let r = rt
        .spawn(|| matches!(anon_fiber::spawn_blocking(|| 4), Err(BlockingError::Again)))
        .unwrap();
    assert!(r.join().unwrap());
    release_tx.send(()).unwrap();
    assert!(busy.join().unwrap());
    assert_eq!(queued.join().unwrap(), 2);
}

#[test]
fn blocking_panic_is_returned() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let r = rt
        .spawn(|| anon_fiber::spawn_blocking(|| -> u8 { panic!("blocking boom") }))
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(r, Err(BlockingError::Panicked(_))));
}
