use crate::{poll_tokens, tcp_pair, wait_for, PATIENCE, QUIET};
use anon_reactor::{Events, Interest, Poll, Registry, Token};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Reads until `WouldBlock`, returning everything read.
fn drain(s: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

#[test]
fn edge_triggered_one_event_per_readiness_change() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let (mut client, mut server) = tcp_pair();
    poll.registry()
        .register(server.as_raw_fd(), Token(1), Interest::READABLE)
        .unwrap();

    client.write_all(b"a").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(1)));
    // Still readable (nothing was read), but no new change: no new event.
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);

    // New data is a new readiness change: exactly one more event.
    client.write_all(b"b").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(1)));
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);

    // Draining reads both writes; after that nothing is reported until new data.
    assert_eq!(drain(&mut server), b"ab");
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    client.write_all(b"c").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(1)));
    assert_eq!(drain(&mut server), b"c");
}

#[test]
fn edge_triggered_partial_read_gets_no_reminder() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let (mut client, mut server) = tcp_pair();
    poll.registry()
        .register(server.as_raw_fd(), Token(2), Interest::READABLE)
        .unwrap();
    client.write_all(b"hello").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(2)));
    // Read only part of it; what remains produces no further event.
    let mut first = [0u8; 1];
    server.read_exact(&mut first).unwrap();
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    assert_eq!(drain(&mut server), b"ello");
}

#[test]
fn level_triggered_repeats_while_ready() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let (mut client, mut server) = tcp_pair();
    poll.registry()
        .register(server.as_raw_fd(), Token(3), Interest::READABLE.level())
        .unwrap();
    client.write_all(b"x").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(3)));
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![Token(3)]);
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![Token(3)]);
    assert_eq!(drain(&mut server), b"x");
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
}

#[test]
fn oneshot_fires_once_until_rearmed() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let (mut client, mut server) = tcp_pair();
    let fd = server.as_raw_fd();
    let interest = Interest::READABLE.oneshot();
    poll.registry().register(fd, Token(4), interest).unwrap();

    client.write_all(b"1").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(4)));
    // Disabled now: new data produces nothing.
    client.write_all(b"2").unwrap();
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    // Re-arming reports the pending readiness, once, under the new token.
    poll.registry().reregister(fd, Token(40), interest).unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(40)));
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    assert_eq!(drain(&mut server), b"12");
    // And once more after another re-arm plus new data.
    poll.registry().reregister(fd, Token(4), interest).unwrap();
    client.write_all(b"3").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(4)));
    client.write_all(b"4").unwrap();
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
}

#[test]
fn deregister_stops_events() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let (mut client, server) = tcp_pair();
    let fd = server.as_raw_fd();
    poll.registry()
        .register(fd, Token(5), Interest::READABLE)
        .unwrap();
    client.write_all(b"before").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(5)));

    poll.registry().deregister(fd).unwrap();
    client.write_all(b"after").unwrap();
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    // Pending readiness from before the deregister is not reported either.
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    // A second deregister is an error (not registered), not a panic.
    let err = poll.registry().deregister(fd).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    // Registering again works and reports the pending data.
    poll.registry()
        .register(fd, Token(6), Interest::READABLE)
        .unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(6)));
}

#[test]
fn bad_fds_return_errors_not_panics() {
    let poll = Poll::new().unwrap();
    let r = poll.registry();
    // Negative, and far beyond any open descriptor.
    for fd in [-1, i32::MAX, 1 << 24] {
        let e = r.register(fd, Token(0), Interest::READABLE).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(9), "EBADF for fd {fd}: {e}"); // EBADF
        assert!(r.reregister(fd, Token(0), Interest::READABLE).is_err());
        assert!(r.deregister(fd).is_err());
    }
    // A regular file cannot be watched by epoll: EPERM.
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let e = r
        .register(file.as_raw_fd(), Token(0), Interest::READABLE)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(1), "EPERM: {e}");
    // Registering twice: EEXIST; reregistering an unknown fd: ENOENT.
    let (_client, server) = tcp_pair();
    let fd = server.as_raw_fd();
    let e = r.reregister(fd, Token(0), Interest::READABLE).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    r.register(fd, Token(0), Interest::READABLE).unwrap();
    let e = r.register(fd, Token(0), Interest::READABLE).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
}

#[test]
fn exclusive_only_with_register() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let fd = listener.as_raw_fd();
    let shared = Interest::READABLE.exclusive();
    poll.registry().register(fd, Token(7), shared).unwrap();
    let _c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(7)));
    // The kernel refuses EPOLLEXCLUSIVE with EPOLL_CTL_MOD: an error, not a panic.
    let e = poll
        .registry()
        .reregister(fd, Token(7), shared)
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    // ... and with oneshot.
    let (_a, b) = tcp_pair();
    let e = poll
        .registry()
        .register(b.as_raw_fd(), Token(8), shared.oneshot())
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn writable_and_read_closed_are_reported() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let (client, mut server) = tcp_pair();
    poll.registry()
        .register(
            server.as_raw_fd(),
            Token(9),
            Interest::READABLE | Interest::WRITABLE,
        )
        .unwrap();
    poll.poll(&mut events, Some(PATIENCE)).unwrap();
    let ev = events
        .iter()
        .find(|e| e.token() == Token(9))
        .expect("event");
    assert!(ev.is_writable());
    assert!(!ev.is_read_closed());

    client.shutdown(Shutdown::Write).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut closed = false;
    while !closed && Instant::now() < deadline {
        poll.poll(&mut events, Some(PATIENCE)).unwrap();
        closed = events
            .iter()
            .any(|e| e.token() == Token(9) && e.is_read_closed());
    }
    assert!(closed, "peer shutdown reported as read-closed");
    assert_eq!(drain(&mut server), b""); // end of file
}

#[test]
fn events_capacity_bounds_one_poll() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(2);
    let pairs: Vec<_> = (0..5).map(|_| tcp_pair()).collect();
    for (i, (client, server)) in pairs.iter().enumerate() {
        poll.registry()
            .register(server.as_raw_fd(), Token(i), Interest::READABLE)
            .unwrap();
        (&*client).write_all(b"x").unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < 5 && Instant::now() < deadline {
        poll.poll(&mut events, Some(PATIENCE)).unwrap();
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e.token().0));
    }
    assert_eq!(seen, (0..5).collect());
}

#[test]
fn timeout_never_returns_early() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1);
    for micros in [1, 999, 1_500, 3_000] {
        let timeout = Duration::from_micros(micros);
        let start = Instant::now();
        poll.poll(&mut events, Some(timeout)).unwrap();
        assert!(events.is_empty());
        assert!(start.elapsed() >= timeout, "{micros} µs returned early");
    }
}

#[test]
fn registry_clone_registers_from_another_thread() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let registry: Registry = poll.registry().try_clone().unwrap();
    let (mut client, server) = tcp_pair();
    let fd = server.as_raw_fd();
    std::thread::spawn(move || registry.register(fd, Token(11), Interest::READABLE))
        .join()
        .unwrap()
        .unwrap();
    client.write_all(b"z").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(11)));
}

// Compile-time check: the handles meant to cross threads do.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Registry>();
    send_sync::<anon_reactor::Waker>();
    send_sync::<anon_reactor::Signals>();
    send_sync::<anon_reactor::PidFd>();
    send::<Poll>();
    send::<Events>();
};
