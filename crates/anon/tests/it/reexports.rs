//! One smoke test per re-exported layer: each path reaches the real crate.

use std::time::{Duration, Instant};

#[test]
fn reactor_is_reexported() {
    let mut poll = anon::reactor::Poll::new().unwrap();
    let waker = anon::reactor::Waker::new(poll.registry(), anon::reactor::Token(7)).unwrap();
    waker.wake().unwrap();
    let mut events = anon::reactor::Events::with_capacity(4);
    poll.poll(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert!(events.iter().any(|e| e.token() == anon::reactor::Token(7)));
}

#[test]
fn queue_is_reexported() {
    let q = anon::queue::Queue::new(1);
    q.try_push(1u8).unwrap();
    assert!(matches!(
        q.try_push(2),
        Err(anon::queue::PushError::Full(2))
    ));
    let adm = anon::queue::Admission::new(anon::queue::AdmissionConfig {
        max_in_flight: 1,
        ..Default::default()
    });
    let now = Instant::now();
    let _p = adm.admit(now, now).unwrap();
    assert_eq!(
        adm.admit(now, now).unwrap_err().reason,
        anon::queue::Reason::ConcurrencyLimit
    );
}

#[test]
fn fiber_is_reexported() {
    let rt = anon::fiber::Runtime::builder().workers(1).build().unwrap();
    let h = rt
        .spawn(|| {
            anon::fiber::yield_now();
            anon::fiber::worker_index()
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), Some(0));
}

#[test]
fn http_is_reexported() {
    let mut dec = anon::http::MessageDecoder::new(anon::http::Config::default());
    let d = dec.decode(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    match d.event {
        anon::http::Event::Head(req) => assert_eq!(req.target(), "/x"),
        _ => panic!("a complete head was given"),
    }
    let again: anon::HandlerError = anon::Again::DEFAULT.into();
    assert_eq!(again.status(), anon::StatusCode::SERVICE_UNAVAILABLE);
}
