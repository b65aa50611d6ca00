//! The schedule verdict: a server slow to accept makes requests leave late, and the report
//! must say the schedule was not kept.

use crate::server::{Action, Server, OK};
use anon_loadgen::{run, Config, ConnMode};
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[test]
fn lag_detector_fires_when_the_server_is_slow_to_accept() {
    // Backlog 1 and no accept for a while: connects beyond the backlog wait for SYN
    // retransmits, so their requests cannot leave on time.
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .expect("bind");
    sock.listen(1).expect("listen");
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let listener: std::net::TcpListener = sock.into();
    let slow = std::thread::spawn(move || {
        // Accept slowly (one connection every 200 ms) for about a second, answer once.
        let end = Instant::now() + Duration::from_millis(1200);
        let mut held = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(200));
            if let Ok((mut c, _)) = listener.accept() {
                use std::io::Write;
                let _ = c.write_all(OK);
                held.push(c);
            }
        }
    });
    let mut c = Config::new(addr, "/").rate(200.0, Duration::from_millis(500));
    c.mode = ConnMode::PerRequest;
    c.connections = 50;
    c.timeout = Duration::from_millis(300);
    let r = run(&c).expect("run");
    let _ = slow.join();
    assert_eq!(r.outcomes.total(), r.requests);
    assert_eq!(r.requests, 100);
    assert!(!r.verdict.kept, "{:?}", r.verdict);
    assert!(r.verdict.late_fraction > 0.5, "{:?}", r.verdict);
    assert!(
        r.verdict.message.contains("COULD NOT KEEP UP"),
        "{}",
        r.verdict.message
    );
}

#[test]
fn a_schedule_the_server_keeps_up_with_is_reported_kept() {
    let server = Server::start(|_| Action::Reply(OK));
    let mut c = Config::new(server.addr, "/").rate(100.0, Duration::from_millis(300));
    c.connections = 4;
    // A generous threshold: this checks the verdict's logic, not the machine's timing.
    c.lag_threshold = Duration::from_millis(500);
    let r = run(&c).expect("run");
    assert_eq!(r.outcomes.success, 30);
    assert!(r.verdict.kept, "{:?}", r.verdict);
    assert_eq!(r.unsent, 0);
}
