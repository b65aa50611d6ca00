//! Every request gets exactly one outcome, and each kind of answer lands in its class.

use crate::server::{Action, Server, BUSY, NOT_FOUND, OK};
use anon_loadgen::{run, Arrival, Config, ConnMode, Outcome, RunError};
use std::time::Duration;

fn cfg(addr: std::net::SocketAddr, rate: f64, ms: u64) -> Config {
    let mut c = Config::new(addr, "/plaintext").rate(rate, Duration::from_millis(ms));
    c.connections = 8;
    c.timeout = Duration::from_secs(2);
    c
}

#[test]
fn counts_add_up_and_503s_are_classified() {
    let server = Server::start(|n| match n % 4 {
        0 => Action::ReplyClose(BUSY),
        1 => Action::Reply(NOT_FOUND),
        _ => Action::Reply(OK),
    });
    let r = run(&cfg(server.addr, 400.0, 500)).expect("run");
    assert_eq!(r.scheduled, 200);
    assert_eq!(r.requests, 200);
    assert_eq!(r.outcomes.total(), r.requests, "{:?}", r.outcomes);
    assert_eq!(
        r.outcomes.timeout + r.outcomes.error,
        0,
        "{:?} {:?}",
        r.outcomes,
        r.errors
    );
    assert_eq!(r.outcomes.try_again, 50);
    assert_eq!(r.outcomes.other_status, 50);
    assert_eq!(r.outcomes.success, 100);
    assert_eq!(r.latency.try_again.count, 50);
    // The series accounts for every request too.
    let sent: u64 = r.series.iter().map(|b| b.sent).sum();
    let done: u64 = r.series.iter().map(|b| b.outcomes.total()).sum();
    assert_eq!((sent, done), (200, 200));
    // 503 + Connection: close made the generator reconnect (all but the last 8 closes
    // were followed by another request on that connection).
    assert!(r.connects >= 8 + 50 - 8, "connects {}", r.connects);
}

#[test]
fn silent_server_requests_time_out() {
    let server = Server::start(|_| Action::Silent);
    let mut c = cfg(server.addr, 100.0, 300);
    c.connections = 4;
    c.timeout = Duration::from_millis(200);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 30);
    assert_eq!(r.outcomes.timeout, 30, "{:?}", r.outcomes);
    assert_eq!(r.outcomes.total(), 30);
    assert!(
        r.latency.timeout.min_us >= 199_000,
        "{:?}",
        r.latency.timeout
    );
    // Waiting on a silent server is not work: the loop polls without sleeping, but its
    // idle turns do not count as busy.
    let g = r.generator;
    assert!((0.25..1.0).contains(&g.window_s), "{g:?}");
    assert!(g.busy_fraction < 0.5, "{g:?}");
}

#[test]
fn resets_and_refusals_are_errors() {
    let server = Server::start(|_| Action::Reset);
    let r = run(&cfg(server.addr, 200.0, 200)).expect("run");
    assert_eq!(r.requests, 40);
    assert_eq!(r.outcomes.error, 40, "{:?}", r.outcomes);
    assert_eq!(r.errors.reset + r.errors.closed, 40, "{:?}", r.errors);

    // Nothing listens on a port we just freed: refused, per request...
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut c = cfg(addr, 200.0, 100);
    c.mode = ConnMode::PerRequest;
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 20);
    assert_eq!(r.outcomes.error, 20, "{:?}", r.outcomes);
    assert_eq!(r.errors.refused, 20, "{:?}", r.errors);
    // ... and a keep-alive pool cannot open at all.
    let err = run(&cfg(addr, 200.0, 100)).expect_err("no pool");
    assert!(matches!(err, RunError::Pool { opened: 0, .. }), "{err}");
}

#[test]
fn retries_resend_rejected_requests() {
    let server = Server::start(|_| Action::ReplyClose(BUSY));
    let mut c = cfg(server.addr, 100.0, 200);
    c.retries = 2;
    let r = run(&c).expect("run");
    assert_eq!(r.scheduled, 20);
    assert_eq!(r.retries, 40);
    assert_eq!(r.outcomes.try_again, 60);
    assert_eq!(r.outcomes.total(), r.requests);
}

#[test]
fn poisson_and_per_request_runs_add_up() {
    let server = Server::start(|_| Action::Reply(OK));
    let mut c = cfg(server.addr, 300.0, 500);
    c.arrival = Arrival::Poisson;
    c.mode = ConnMode::PerRequest;
    c.seed = 42;
    let r = run(&c).expect("run");
    assert!(r.scheduled > 50 && r.scheduled < 400, "{}", r.scheduled);
    assert_eq!(r.outcomes.total(), r.requests);
    assert_eq!(
        r.outcomes.get(Outcome::Success),
        r.requests,
        "{:?} {:?}",
        r.outcomes,
        r.errors
    );
    assert_eq!(r.connects, r.requests);
    // The JSON round-trips.
    let back = anon_loadgen::Report::from_json(&r.to_json()).expect("json");
    assert_eq!(back.outcomes, r.outcomes);
}
