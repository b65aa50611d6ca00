//! Out of descriptors: the server closes its oldest idle keep-alive connections to serve
//! new ones; with none idle it keeps answering its connections, tells new ones to try
//! again, and does not spin on `accept`.

use crate::{connect, read_reply, Proc};
use anon_reactor::Signal;
use std::io::Write;
use std::time::{Duration, Instant};

const REQ: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn out_of_descriptors_refuses_new_connections_and_keeps_serving() {
    let _g = crate::heavy();
    // 48 descriptors: about a dozen go to the runtime, the listener, the signal and wait
    // descriptors and the spare; the connection bound is set far above, so the
    // descriptor limit is what is hit. Adaptive admission is off: 80 handlers that each
    // wait 5 s at once would otherwise be refused by it (it starts at 10) before the
    // descriptors run out.
    let p = Proc::hello(&[
        "--workers",
        "1",
        "--nofile",
        "48",
        "--max-conns",
        "1000",
        "--idle-timeout-ms",
        "60000",
        "--admin-port",
        "0",
        "--adaptive",
        "off",
    ]);
    // Each connection is busy (its handler sleeps 5 s), so none is idle to shed: past
    // the limit the only answer is "try again".
    const BUSY: &[u8] = b"GET /sleep?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..80 {
        let mut s = connect(p.addr);
        s.write_all(BUSY).unwrap();
        held.push(s);
    }
    let mut kept = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for (i, mut s) in held.into_iter().enumerate() {
        let r = read_reply(&mut s).unwrap_or_else(|e| panic!("connection {i}: no reply: {e}"));
        match r.status {
            200 => {
                served += 1;
                kept.push(s);
            }
            503 => {
                refused += 1;
                assert!(r.head.contains("Retry-After"), "{}", r.head);
            }
            other => panic!("connection {i}: status {other}"),
        }
    }
    assert!(served > 10, "served {served}");
    assert!(
        refused > 10,
        "refused {refused}: the limit was never reached"
    );
    // The busy connections were all answered (200 after their sleep) while the server
    // was out of descriptors. Idle now, they may be shed for the newcomers below.
    // New connections keep coming while it is out of descriptors: it must refuse them
    // without burning a core. Give it one second of wall time and look at its CPU time.
    let before = p.cpu_ticks();
    let start = Instant::now();
    let mut refused_later = 0;
    while start.elapsed() < Duration::from_secs(1) {
        let mut s = connect(p.addr);
        let _ = s.write_all(REQ);
        if let Ok(r) = read_reply(&mut s) {
            // The held connections are idle again now: one of them may be shed for it.
            assert!(matches!(r.status, 200 | 503), "status {}", r.status);
            refused_later += usize::from(r.status == 503);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = p.cpu_ticks() - before;
    let wall_ticks = start.elapsed().as_millis() as u64 / 10;
    assert!(
        used * 2 < wall_ticks,
        "the server used {used} ticks of CPU in {wall_ticks} ticks of wall time"
    );
    // Closing our connections gives the server its descriptors back (the admin
    // listener needs one to answer).
    drop(kept);
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.metric("anon_connections_refused_total") >= (refused + refused_later) as u64);
    p.stop(Signal::Term);
}

#[test]
fn out_of_descriptors_sheds_the_oldest_idle_connection_to_serve_a_new_one() {
    let _g = crate::heavy();
    let p = Proc::hello(&[
        "--workers",
        "1",
        "--nofile",
        "48",
        "--max-conns",
        "1000",
        "--idle-timeout-ms",
        "60000",
        "--admin-port",
        "0",
    ]);
    // Every connection is served and left idle; past the descriptor limit each new one
    // is served too, because the oldest idle ones are closed to make room.
    let mut kept = Vec::new();
    for i in 0..80 {
        let mut s = connect(p.addr);
        s.write_all(REQ).unwrap();
        let r = read_reply(&mut s).unwrap_or_else(|e| panic!("connection {i}: no reply: {e}"));
        assert_eq!(r.status, 200, "connection {i}");
        kept.push(s);
    }
    // The oldest were shed: a clean end of stream. The newest still serves.
    let mut b = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut kept[0], &mut b).unwrap(), 0);
    let newest = kept.last_mut().unwrap();
    newest.write_all(REQ).unwrap();
    assert_eq!(read_reply(newest).unwrap().status, 200);
    // Still at the limit, new clients keep coming: each is served without the accept
    // loop burning a core.
    let before = p.cpu_ticks();
    let start = Instant::now();
    let mut served_later = 0;
    while start.elapsed() < Duration::from_secs(1) {
        let mut s = connect(p.addr);
        s.write_all(REQ).unwrap();
        assert_eq!(read_reply(&mut s).unwrap().status, 200);
        served_later += 1;
        kept.push(s);
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = p.cpu_ticks() - before;
    let wall_ticks = start.elapsed().as_millis() as u64 / 10;
    assert!(served_later > 0);
    assert!(
        used * 2 < wall_ticks,
        "the server used {used} ticks of CPU in {wall_ticks} ticks of wall time"
    );
    let shed = p.metric("anon_http_connections_shed_total");
    assert!(shed >= 40, "shed {shed}");
    assert_eq!(p.metric("anon_connections_refused_total"), 0);
    drop(kept);
    p.stop(Signal::Term);
}
