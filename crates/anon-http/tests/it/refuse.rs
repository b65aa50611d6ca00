//! Admission refusals over raw loopback sockets: a refused request keeps its connection
//! when its body can be skipped (answered in order with pipelined neighbours), and closes
//! it otherwise or when the switch is off.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anon_http::server::{Admission, ServerConfig, OVERLOAD_KEEP_ALIVE_REPLY};
use anon_http::{Again, OVERLOAD_REPLY};

use crate::harness::{app_server, connect, read_response, read_to_close, roundtrip, start};

/// Refuses every request whose path starts with `/refuse`; counts permits given back
/// and the decisions taken outside a fiber (in the reactor callback, by `refuse_early`).
struct Picky {
    /// Answer of `keep_alive_after_refusal`.
    keep: AtomicBool,
    /// Whether `refuse_early` decides (as a saturated policy would).
    saturated: AtomicBool,
    released: AtomicU64,
    outside_fiber: AtomicU64,
}

impl Picky {
    fn new() -> Picky {
        Picky {
            keep: AtomicBool::new(true),
            saturated: AtomicBool::new(false),
            released: AtomicU64::new(0),
            outside_fiber: AtomicU64::new(0),
        }
    }
}

struct Permit<'a>(&'a Picky);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.released.fetch_add(1, Ordering::Relaxed);
    }
}

impl Admission for Picky {
    type Permit<'a> = Permit<'a>;

    fn admit<'a>(&'a self, head: &anon_http::Request<'_>, _: Instant) -> Result<Permit<'a>, Again> {
        if !anon_fiber::in_fiber() {
            self.outside_fiber.fetch_add(1, Ordering::Relaxed);
        }
        if head.target().starts_with("/refuse") {
            Err(Again::DEFAULT)
        } else {
            Ok(Permit(self))
        }
    }

    fn keep_alive_after_refusal(&self) -> bool {
        self.keep.load(Ordering::Relaxed)
    }

    fn refuse_early(&self, head: &anon_http::Request<'_>, arrived: Instant) -> Option<Again> {
        if !self.saturated.load(Ordering::Relaxed) {
            return None;
        }
        if !anon_fiber::in_fiber() {
            self.outside_fiber.fetch_add(1, Ordering::Relaxed);
        }
        let _ = arrived;
        head.target()
            .starts_with("/refuse")
            .then_some(Again::DEFAULT)
    }
}

fn fast(keep_alive_rejections: bool) -> ServerConfig {
    ServerConfig {
        head_timeout: Duration::from_millis(500),
        linger: Duration::from_millis(200),
        drain_limit: 16,
        keep_alive_rejections,
        ..ServerConfig::DEFAULT
    }
}

/// Reads exactly `want.len()` bytes and checks them.
fn expect_bytes(s: &mut std::net::TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).expect("reply");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "reply bytes"
    );
}

#[test]
fn a_refused_request_keeps_its_connection_for_the_next_one() {
    let t = start(app_server(fast(true)).with_admission(Picky::new()));
    let mut s = connect(t.addr);
    // A body within the drain limit, already sent: skipped.
    s.write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    expect_bytes(&mut s, OVERLOAD_KEEP_ALIVE_REPLY);
    // The connection goes idle (hibernates), then serves the next request.
    assert_eq!(t.wait_stats(|s| s.hibernating == 1).hibernating, 1);
    s.write_all(b"GET /target?next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"/target?next"[..]));
    // HTTP/1.0 with keep-alive: the refusal says so, and the connection stays too.
    s.write_all(b"GET /refuse HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("keep-alive"));
    s.write_all(b"GET /target?last HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"/target?last"[..]));
    let st = t.wait_stats(|s| s.served == 2);
    assert_eq!((st.rejected, st.served, st.connections), (2, 2, 1));
    // Refusals hand out no permit.
    assert_eq!(t.server.admission().released.load(Ordering::Relaxed), 2);
}

#[test]
fn pipelined_refusals_are_answered_in_order_in_one_write() {
    let t = start(app_server(fast(true)).with_admission(Picky::new()));
    // A first exchange so that the connection is set up before counting writes.
    let (r, mut s, mut pending) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    let before = t.wait_stats(|s| s.served == 1).writes;
    s.write_all(
        b"GET /target?0 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /refuse?1 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /target?2 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /refuse?3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nfour\
          GET /refuse?5 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /target?6 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let want: [(u16, &[u8]); 7] = [
        (200, b"/target?0"),
        (503, b""),
        (200, b"/target?2"),
        (503, b""),
        (200, b"four"),
        (503, b""),
        (200, b"/target?6"),
    ];
    for (i, (status, body)) in want.into_iter().enumerate() {
        let r = read_response(&mut s, &mut pending);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (status, body),
            "response {i}"
        );
        assert_eq!(r.header("connection"), None, "response {i}");
    }
    let after = t.wait_stats(|s| s.served == 5).writes;
    assert_eq!(after - before, 1, "seven pipelined responses, one write");
    assert_eq!(t.stats().rejected, 3);
}

#[test]
fn a_body_sent_after_the_refusal_is_read_and_skipped() {
    let t = start(app_server(fast(true)).with_admission(Picky::new()));
    let mut s = connect(t.addr);
    s.write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    // The reply does not wait for the body.
    expect_bytes(&mut s, OVERLOAD_KEEP_ALIVE_REPLY);
    s.write_all(b"hello").unwrap();
    s.write_all(b"GET /target?after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new());
    assert_eq!((r.status, r.body.as_slice()), (200, &b"/target?after"[..]));
}

#[test]
fn refusals_whose_body_cannot_be_skipped_close() {
    let t = start(app_server(fast(true)).with_admission(Picky::new()));
    let cases: [&[u8]; 5] = [
        // Chunked: no bound known before reading.
        b"POST /refuse HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        // Longer than the drain limit (16).
        b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n",
        // Waiting for a `100 Continue` that will not come.
        b"POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        // The client asked to close.
        b"GET /refuse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // HTTP/1.0 without keep-alive.
        b"GET /refuse HTTP/1.0\r\n\r\n",
    ];
    for (i, raw) in cases.into_iter().enumerate() {
        let mut s = connect(t.addr);
        s.write_all(raw).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&read_to_close(&mut s)),
            String::from_utf8_lossy(OVERLOAD_REPLY),
            "case {i}"
        );
    }
    let st = t.wait_stats(|s| s.connections == 0);
    assert_eq!((st.rejected, st.served, st.connections), (5, 0, 0));
}

#[test]
fn with_keep_alive_rejections_off_every_refusal_closes() {
    let t = start(app_server(fast(false)).with_admission(Picky::new()));
    let mut s = connect(t.addr);
    s.write_all(b"GET /refuse HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The pipelined request behind the refusal is not answered.
    assert_eq!(read_to_close(&mut s), OVERLOAD_REPLY);
    let st = t.wait_stats(|s| s.connections == 0);
    assert_eq!((st.rejected, st.served), (1, 0));
}

#[test]
fn the_admission_policy_can_close_after_a_refusal() {
    let t = start(app_server(fast(true)).with_admission(Picky::new()));
    t.server.admission().keep.store(false, Ordering::Relaxed);
    let mut s = connect(t.addr);
    s.write_all(b"GET /refuse HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_to_close(&mut s), OVERLOAD_REPLY);
    assert_eq!(t.wait_stats(|s| s.connections == 0).rejected, 1);
}

#[test]
fn while_saturated_a_hibernating_connection_is_refused_without_a_fiber() {
    let t = start(app_server(fast(true)).with_admission(Picky::new()));
    let adm = t.server.admission();
    adm.saturated.store(true, Ordering::Relaxed);
    let (r, mut s, mut pending) =
        roundtrip(t.addr, b"GET /target?first HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    // Idle: the connection hibernates; its next request is decided in the callback.
    t.wait_stats(|s| s.hibernating == 1);
    let outside = adm.outside_fiber.load(Ordering::Relaxed);
    s.write_all(b"GET /refuse HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_bytes(&mut s, OVERLOAD_KEEP_ALIVE_REPLY);
    assert_eq!(adm.outside_fiber.load(Ordering::Relaxed), outside + 1);
    assert_eq!(t.wait_stats(|s| s.hibernating == 1).rejected, 1);
    // An admitted request is asked in the callback, then again on its fiber, and served.
    s.write_all(b"GET /target?ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"/target?ok"[..]));
    assert_eq!(adm.outside_fiber.load(Ordering::Relaxed), outside + 2);
    // A request with a body goes to a fiber, which refuses it and skips the body.
    t.wait_stats(|s| s.hibernating == 1);
    s.write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    expect_bytes(&mut s, OVERLOAD_KEEP_ALIVE_REPLY);
    assert_eq!(adm.outside_fiber.load(Ordering::Relaxed), outside + 2);
    s.write_all(b"GET /target?last HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"/target?last"[..]));
    let st = t.wait_stats(|s| s.served == 3);
    assert_eq!((st.rejected, st.connections), (2, 1));
}
