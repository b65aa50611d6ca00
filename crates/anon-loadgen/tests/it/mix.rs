//! A weighted mix: each target gets its exact share, and the report breaks outcomes down
//! per target.

use anon_loadgen::{run, Config, Report};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A keep-alive server answering `GET /cheap...` 200, `GET /busy...` 503, anything else
/// 404; it stops accepting after `conns` connections and every thread ends within 10 s.
fn path_server(conns: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in listener.incoming().take(conns) {
            let Ok(c) = c else { break };
            std::thread::spawn(move || serve(c));
        }
    });
    addr
}

fn serve(mut c: TcpStream) {
    let born = Instant::now();
    let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while born.elapsed() < Duration::from_secs(10) && buf.len() < 1 << 16 {
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            let reply: &[u8] = if head.starts_with(b"GET /cheap") {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            } else if head.starts_with(b"GET /busy") {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            };
            if c.write_all(reply).is_err() {
                return;
            }
        }
    }
}

fn mixed(addr: SocketAddr) -> Report {
    let mut c = Config::new(addr, "/unused")
        .with_mix(&[("/cheap?x=1", 9), ("/busy", 1)])
        .rate(500.0, Duration::from_millis(400));
    c.connections = 4;
    c.slo = Some(Duration::from_secs(1));
    run(&c).expect("run")
}

#[test]
fn a_ninety_ten_mix_is_exact_and_reported_per_path() {
    let r = mixed(path_server(4));
    assert_eq!(r.requests, 200);
    assert_eq!(r.paths.len(), 2);
    let cheap = r.path("/cheap?x=1").expect("cheap path");
    let busy = r.path("/busy").expect("busy path");
    assert_eq!((cheap.weight, busy.weight), (9, 1));
    assert_eq!((cheap.requests, busy.requests), (180, 20));
    assert_eq!(cheap.outcomes.success, 180, "{:?}", cheap.outcomes);
    assert_eq!(cheap.success_in_slo, 180);
    assert_eq!(cheap.success.count, 180);
    assert_eq!(busy.outcomes.try_again, 20, "{:?}", busy.outcomes);
    assert_eq!(busy.try_again.count, 20);
    assert_eq!(busy.outcomes.success, 0);
    // The totals agree with the per-path figures.
    assert_eq!(r.outcomes.success, 180);
    assert_eq!(r.outcomes.try_again, 20);
    // Deterministic: a second run splits the same way.
    let again = mixed(path_server(4));
    assert_eq!(again.path("/busy").map(|p| p.requests), Some(20));
}

#[test]
fn without_a_mix_the_single_path_is_reported() {
    let mut c = Config::new(path_server(2), "/cheap").rate(200.0, Duration::from_millis(100));
    c.connections = 2;
    let r = run(&c).expect("run");
    assert_eq!(r.paths.len(), 1);
    assert_eq!(r.paths[0].path, "/cheap");
    assert_eq!(r.paths[0].requests, r.requests);
    assert_eq!(r.paths[0].outcomes, r.outcomes);
    // Reports written before per-path figures existed still parse.
    let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    v.as_object_mut().unwrap().remove("paths");
    assert!(Report::from_json(&v.to_string()).unwrap().paths.is_empty());
}
