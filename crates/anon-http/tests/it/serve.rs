//! The server driver over raw loopback sockets: keep-alive, pipelining, timeouts,
//! errors, admission, hibernation, bodies.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anon_http::server::{Admission, ServerConfig};
use anon_http::{Again, OVERLOAD_REPLY};

use crate::harness::{app_server, connect, read_response, read_to_close, roundtrip, start};

fn fast() -> ServerConfig {
    ServerConfig {
        head_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        linger: Duration::from_millis(200),
        ..ServerConfig::DEFAULT
    }
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let mut s = connect(t.addr);
    let mut pending = Vec::new();
    for i in 0..5 {
        s.write_all(format!("GET /target?{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut s, &mut pending);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("/target?{i}").as_bytes());
        assert!(r.header("date").is_some());
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(t.wait_stats(|s| s.served == 5).served, 5);
}

#[test]
fn pipelined_requests_are_answered_in_order_in_one_write() {
    let t = start(app_server(ServerConfig::DEFAULT));
    // A first exchange so that the connection is set up before counting writes.
    let (r, mut s, mut pending) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    let before = t.wait_stats(|s| s.served == 1).writes;
    let mut batch = Vec::new();
    for i in 0..3 {
        batch.extend_from_slice(format!("GET /target?{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    s.write_all(&batch).unwrap();
    for i in 0..3 {
        let r = read_response(&mut s, &mut pending);
        assert_eq!(r.body, format!("/target?{i}").as_bytes());
    }
    let after = t.wait_stats(|s| s.served == 4).writes;
    assert_eq!(after - before, 1, "three pipelined responses, one write");
}

#[test]
fn long_pipelines_pass_the_budget_and_stay_in_order() {
    let t = start(app_server(ServerConfig {
        pipeline_budget: 4,
        ..ServerConfig::DEFAULT
    }));
    let mut s = connect(t.addr);
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.extend_from_slice(format!("GET /target?{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    s.write_all(&batch).unwrap();
    let mut pending = Vec::new();
    for i in 0..40 {
        let r = read_response(&mut s, &mut pending);
        assert_eq!(r.body, format!("/target?{i}").as_bytes());
    }
    // The budget made the fiber yield (and flush) every 4 requests.
    assert!(t.wait_stats(|s| s.served == 40).writes >= 10);
}

#[test]
fn partial_head_times_out_with_408_and_close() {
    let t = start(app_server(fast()));
    let mut s = connect(t.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
    let out = read_to_close(&mut s);
    assert_eq!(
        out,
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(t.wait_stats(|s| s.timeouts == 1).timeouts, 1);
}

#[test]
fn silent_new_connection_gets_408() {
    let t = start(app_server(fast()));
    let mut s = connect(t.addr);
    let out = read_to_close(&mut s);
    assert!(
        out.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn idle_keep_alive_connection_closes_quietly() {
    let t = start(app_server(fast()));
    let (r, mut s, pending) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(pending.is_empty());
    assert!(
        read_to_close(&mut s).is_empty(),
        "no reply to an idle connection"
    );
    assert_eq!(t.wait_stats(|s| s.connections == 0).connections, 0);
}

#[test]
fn handler_panic_answers_500_closes_and_the_server_lives() {
    let t = start(app_server(fast()));
    let (r, mut s, _) = roundtrip(t.addr, b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(read_to_close(&mut s).is_empty());
    for _ in 0..3 {
        let (r, _, _) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"Hello, World!"[..]));
    }
    assert_eq!(t.stats().panics, 1);
}

#[test]
fn again_from_a_handler_is_503_with_retry_after_and_keeps_the_connection() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let (r, mut s, mut pending) = roundtrip(t.addr, b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.header("connection"), None);
    s.write_all(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut pending).status, 404);
    let st = t.wait_stats(|s| s.handler_errors == 1);
    assert_eq!((st.again, st.handler_errors, st.served), (1, 1, 0));
}

#[test]
fn malformed_requests_get_the_exact_status_and_close() {
    let cfg = ServerConfig {
        codec: anon_http::Config {
            limits: anon_http::Limits {
                max_body: 100,
                max_request_line: 64,
                ..anon_http::Limits::DEFAULT
            },
            ..anon_http::Config::STRICT
        },
        ..fast()
    };
    let t = start(app_server(cfg));
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: 1\r\n".repeat(101)
    );
    let cases: Vec<(&[u8], u16)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413),
        (long_target.as_bytes(), 414),
        (many_headers.as_bytes(), 431),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        // The error is in the body: the handler reads it, the server answers 400.
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 413),
    ];
    for (raw, status) in &cases {
        let mut s = connect(t.addr);
        s.write_all(raw).unwrap();
        let out = read_to_close(&mut s);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?} -> {text:?}",
            String::from_utf8_lossy(raw)
        );
        assert!(text.contains("\r\nConnection: close\r\n"), "{text:?}");
    }
    assert_eq!(
        t.wait_stats(|s| s.malformed == cases.len() as u64)
            .malformed,
        cases.len() as u64
    );
}

#[test]
fn responses_before_a_malformed_pipelined_request_are_still_sent() {
    let t = start(app_server(fast()));
    let mut s = connect(t.addr);
    s.write_all(b"GET /target?1 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost : x\r\n\r\n")
        .unwrap();
    let out = read_to_close(&mut s);
    let text = String::from_utf8_lossy(&out);
    let first = text.find("/target?1").expect("first response");
    let second = text.find("HTTP/1.1 400 Bad Request").expect("error reply");
    assert!(first < second, "{text}");
}

/// Refuses while `refuse` is set; counts admitted permits given back.
#[derive(Default)]
struct Gate {
    refuse: AtomicBool,
    released: AtomicU64,
}

struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.released.fetch_add(1, Ordering::Relaxed);
    }
}

impl Admission for Gate {
    type Permit<'a> = Permit<'a>;
    fn admit<'a>(&'a self, _: &anon_http::Request<'_>, _: Instant) -> Result<Permit<'a>, Again> {
        if self.refuse.load(Ordering::Relaxed) {
            Err(Again::DEFAULT)
        } else {
            Ok(Permit(self))
        }
    }
}

#[test]
fn admission_refusal_writes_the_overload_reply_before_the_handler() {
    // Closing refusals (keep-alive ones are tested in `refuse`).
    let cfg = ServerConfig {
        keep_alive_rejections: false,
        ..fast()
    };
    let t = start(app_server(cfg).with_admission(Gate::default()));
    let (r, _, _) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(t.server.admission().released.load(Ordering::Relaxed), 1);

    t.server.admission().refuse.store(true, Ordering::Relaxed);
    let mut s = connect(t.addr);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(read_to_close(&mut s), OVERLOAD_REPLY);
    // The handler did not run: nothing more was served, no permit was handed out.
    let st = t.wait_stats(|s| s.rejected == 1);
    assert_eq!((st.rejected, st.served, st.in_flight), (1, 1, 0));
    assert_eq!(t.server.admission().released.load(Ordering::Relaxed), 1);
}

#[test]
fn idle_connections_hibernate_without_a_fiber_and_wake_up() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let (r, mut s, mut pending) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    let st = t.wait_stats(|s| s.hibernating == 1);
    assert_eq!((st.hibernating, st.connections), (1, 1));
    // Only the accept loop's fiber is alive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.rt.live_fibers() != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(t.rt.live_fibers(), 1);
    s.write_all(b"GET /target?again HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!(r.body, b"/target?again");
    assert_eq!(t.wait_stats(|s| s.served == 2).served, 2);
}

#[test]
fn without_hibernation_the_fiber_waits_and_still_serves() {
    let t = start(app_server(ServerConfig {
        hibernate: false,
        ..ServerConfig::DEFAULT
    }));
    let (_, mut s, mut pending) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(t.stats().hibernating, 0);
    assert_eq!(t.rt.live_fibers(), 2);
    s.write_all(b"GET /target?2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut pending).body, b"/target?2");
}

#[test]
fn expect_100_continue_is_sent_when_the_handler_reads() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let mut s = connect(t.addr);
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut pending = Vec::new();
    let interim = read_response(&mut s, &mut pending);
    assert_eq!(interim.status, 100);
    s.write_all(b"hello").unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.header("connection"), None);
}

#[test]
fn expect_100_continue_unread_body_closes_without_100() {
    let t = start(app_server(fast()));
    let mut s = connect(t.addr);
    s.write_all(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let out = read_to_close(&mut s);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Connection: close") && text.ends_with("ignored"),
        "{text}"
    );
}

#[test]
fn unread_bodies_are_drained_and_the_connection_kept() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let mut s = connect(t.addr);
    s.write_all(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /target?next HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut pending = Vec::new();
    assert_eq!(read_response(&mut s, &mut pending).body, b"ignored");
    assert_eq!(read_response(&mut s, &mut pending).body, b"/target?next");
}

#[test]
fn too_long_unread_bodies_close_after_the_response() {
    let t = start(app_server(ServerConfig {
        drain_limit: 10,
        ..fast()
    }));
    let mut s = connect(t.addr);
    s.write_all(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
        .unwrap();
    s.write_all(&[b'x'; 50]).unwrap();
    let text = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(
        text.contains("Connection: close") && text.ends_with("ignored"),
        "{text}"
    );
}

#[test]
fn request_bodies_stream_in_both_framings_and_large_replies_arrive_whole() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let mut s = connect(t.addr);
    let mut pending = Vec::new();
    // Chunked upload in pieces, with an extension and a trailer.
    s.write_all(
        b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    s.write_all(b"2\r\nef\r\n0\r\nX-T: 1\r\n\r\n").unwrap();
    let r = read_response(&mut s, &mut pending);
    let sum = b"abcdef"
        .iter()
        .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(u32::from(b)));
    assert_eq!(r.body, format!("len=6 sum={sum} chunked=true").as_bytes());
    // A Content-Length upload larger than the read buffer.
    let body = vec![7u8; 20_000];
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n")
        .unwrap();
    s.write_all(&body).unwrap();
    assert!(
        read_response(&mut s, &mut pending).body == body,
        "echoed body differs"
    );
    // Streamed responses: chunked and sized; a large in-memory one.
    s.write_all(b"GET /stream?20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(
        r.body == vec![b'z'; 20_000],
        "streamed body of {} bytes",
        r.body.len()
    );
    s.write_all(
        b"GET /sized-stream HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let sized = read_response(&mut s, &mut pending).body;
    assert!(
        sized == vec![b's'; 5000],
        "sized stream of {} bytes",
        sized.len()
    );
    let big = read_response(&mut s, &mut pending).body;
    assert!(
        big == vec![b'b'; 100_000],
        "big body of {} bytes",
        big.len()
    );
}

#[test]
fn head_requests_get_headers_only_and_http10_is_handled() {
    let t = start(app_server(fast()));
    let mut s = connect(t.addr);
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /target?after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    // A HEAD reply announces the length but has no body: the next response follows at once.
    let r = read_response_head_only(&mut s, &mut pending);
    assert_eq!(r, "13");
    assert_eq!(read_response(&mut s, &mut pending).body, b"/target?after");

    // HTTP/1.0 without keep-alive: the server closes after the reply.
    let mut s = connect(t.addr);
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let text = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.contains("Connection: close"),
        "{text}"
    );
    // HTTP/1.0 keep-alive, and a chunked stream turned into close-delimited.
    let mut s = connect(t.addr);
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    s.write_all(b"GET /stream?5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let text = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(
        text.contains("Connection: close") && text.ends_with("\r\n\r\nzzzzz"),
        "{text}"
    );
}

fn read_response_head_only(s: &mut std::net::TcpStream, pending: &mut Vec<u8>) -> String {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = r.parse(pending) {
            let len = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .unwrap_or_default();
            pending.drain(..n);
            return len;
        }
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0);
        pending.extend_from_slice(&buf[..k]);
    }
}

#[test]
fn handler_connection_close_is_honoured() {
    let t = start(app_server(fast()));
    let mut s = connect(t.addr);
    s.write_all(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let text = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(
        text.contains("Connection: close") && text.ends_with("bye"),
        "{text}"
    );
}

#[test]
fn a_slow_handler_does_not_stall_other_connections() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let mut slow = connect(t.addr);
    slow.write_all(b"GET /gate?0 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(t.wait_stats(|s| s.in_flight == 1).in_flight, 1);
    let (r, _, _) = roundtrip(t.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    // The fast request was answered while the gated one still waits.
    assert_eq!(t.stats().in_flight, 1);
    crate::harness::GATES[0].store(true, Ordering::Relaxed);
    let mut pending = Vec::new();
    assert_eq!(read_response(&mut slow, &mut pending).body, b"opened");
}

#[test]
fn at_the_fiber_limit_a_waking_connection_gets_the_overload_reply() {
    // One fiber per worker: the accept loop holds it, so no connection gets one.
    let t = crate::harness::start_on(
        app_server(fast()),
        anon_fiber::Runtime::builder().workers(1).max_fibers(1),
    );
    let mut s = connect(t.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_to_close(&mut s), OVERLOAD_REPLY);
    let st = t.wait_stats(|s| s.connections == 0);
    assert_eq!((st.rejected, st.served, st.connections), (1, 0, 0));
}
