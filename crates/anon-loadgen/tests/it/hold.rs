//! Hold mode keeps connections open and idle after one request each.

use crate::server::{Action, Server, OK, OK_CLOSE};
use anon_loadgen::{hold, HoldConfig, HoldError};
use std::time::Duration;

#[test]
fn holds_connections_after_one_request_each() {
    let server = Server::start(|_| Action::Reply(OK));
    let cfg = HoldConfig {
        addr: server.addr,
        path: "/plaintext".into(),
        count: 40,
        sources: vec!["127.0.0.1".parse().unwrap()],
        max_in_setup: 8,
        deadline: Duration::from_secs(10),
    };
    let held = hold(&cfg).expect("hold");
    assert_eq!(
        (held.streams.len(), held.failed),
        (40, 0),
        "{:?}",
        held.last_error
    );
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::Relaxed),
        40
    );
}

#[test]
fn hold_counts_failures_and_checks_bounds() {
    let server = Server::start(|_| Action::ReplyClose(OK_CLOSE));
    let cfg = HoldConfig {
        addr: server.addr,
        path: "/".into(),
        count: 5,
        sources: Vec::new(),
        max_in_setup: 2,
        deadline: Duration::from_secs(10),
    };
    let held = hold(&cfg).expect("hold");
    // The server closes after answering: those connections are not idle keep-alives.
    assert_eq!((held.streams.len(), held.failed), (0, 5));
    let bad = HoldConfig { count: 0, ..cfg };
    assert!(matches!(hold(&bad), Err(HoldError::Count(0))));
}
