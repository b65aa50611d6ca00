//! Integration tests of `anon-reactor` over real loopback sockets, eventfds, signals and
//! child processes. Every wait is bounded; no assertion depends on the machine being fast
//! (only "not before" bounds and generous "within seconds" bounds).

mod pidfd;
mod poll;
mod signal;
mod timer;
mod waker;

use anon_reactor::{Events, Poll, Token};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Long enough that a loaded machine still delivers what is due.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a poll waits when we check that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(50);

/// A connected loopback TCP pair `(client, server)`, both non-blocking.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    client.set_nonblocking(true).expect("nonblocking");
    server.set_nonblocking(true).expect("nonblocking");
    (client, server)
}

/// The tokens of one poll (in the order returned).
pub fn poll_tokens(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Vec<Token> {
    poll.poll(events, Some(timeout)).expect("poll");
    events.iter().map(|e| e.token()).collect()
}

/// Polls until an event for `token` arrives or `PATIENCE` runs out; returns whether it did.
pub fn wait_for(poll: &mut Poll, events: &mut Events, token: Token) -> bool {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        if poll_tokens(poll, events, left).contains(&token) {
            return true;
        }
    }
}
