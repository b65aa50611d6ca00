//! SIGTERM during load: every accepted request gets its full response, then the server
//! exits 0.

use crate::{connect, read_reply, Proc, PATIENCE};
use anon_reactor::Signal;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a request of the background load got.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// A complete response with this status.
    Reply(u16),
    /// The connection was refused (the listener is closed): never accepted.
    Refused,
    /// Closed or reset before a single byte of response: the server never read it.
    ClosedUnanswered,
    /// Some bytes of a response, then the end: a lost request.
    Truncated(String),
}

fn one_request(addr: SocketAddr) -> Got {
    let mut s = match std::net::TcpStream::connect_timeout(&addr, PATIENCE) {
        Ok(s) => s,
        Err(_) => return Got::Refused,
    };
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    if s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return Got::ClosedUnanswered;
    }
    let mut all = Vec::new();
    let r = s.read_to_end(&mut all);
    if all.is_empty() {
        return Got::ClosedUnanswered;
    }
    match read_reply(&mut all.as_slice()) {
        Ok(reply) if reply.status == 200 && reply.body == b"Hello, World!" => Got::Reply(200),
        Ok(reply) if reply.status == 503 => Got::Reply(503),
        _ => Got::Truncated(format!("{r:?}: {:?}", String::from_utf8_lossy(&all))),
    }
}

#[test]
fn sigterm_during_load_loses_no_accepted_request() {
    let _g = crate::heavy();
    let p = Proc::hello(&["--workers", "2", "--admin-port", "0"]);
    let addr = p.addr;

    // Background load: fresh connections, one request each, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..4)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let deadline = Instant::now() + PATIENCE;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let g = one_request(addr);
                    if g == Got::Refused {
                        // Nothing listens any more: do not spin on connect.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    got.push(g);
                }
                got
            })
        })
        .collect();

    // Slow requests in flight when the signal comes: they must all finish.
    const SLOW: usize = 8;
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /sleep?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while p.metric("anon_requests_in_flight") < SLOW as u64 {
        assert!(
            Instant::now() < deadline,
            "the slow requests never got in flight"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Some load before the signal.
    std::thread::sleep(Duration::from_millis(300));
    let pid = p.pid();
    let signalled = Instant::now();
    anon_reactor::PidFd::open(pid)
        .unwrap()
        .send_signal(Signal::Term)
        .unwrap();

    for (i, mut s) in slow.into_iter().enumerate() {
        let r = read_reply(&mut s).unwrap_or_else(|e| panic!("slow request {i} lost: {e}"));
        assert_eq!(r.status, 200, "slow request {i}");
        assert_eq!(r.body, b"slept 400 ms\n");
        assert!(
            r.head.contains("Connection: close"),
            "a reply during the drain closes its connection: {}",
            r.head
        );
    }
    let answered_in = signalled.elapsed();

    // Let the loaders see the closed listener for a moment, then stop them.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let got: Vec<Got> = loaders
        .into_iter()
        .flat_map(|t| t.join().expect("loader"))
        .collect();
    let replies = got.iter().filter(|g| matches!(g, Got::Reply(_))).count();
    let busy = got.iter().filter(|g| **g == Got::Reply(503)).count();
    let truncated: Vec<&Got> = got
        .iter()
        .filter(|g| matches!(g, Got::Truncated(_)))
        .collect();
    assert!(truncated.is_empty(), "truncated replies: {truncated:?}");
    assert!(replies > 0, "the load got no reply at all: {got:?}");
    let refused = got.iter().filter(|g| **g == Got::Refused).count();
    let unanswered = got.iter().filter(|g| **g == Got::ClosedUnanswered).count();
    eprintln!(
        "drain: {SLOW} slow requests answered {answered_in:?} after SIGTERM; load: {replies} replies ({busy} × 503), \
         {refused} refused, {unanswered} closed unanswered (after the listener closed)"
    );
    p.stop_exited();
}
