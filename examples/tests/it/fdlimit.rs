//! Out of descriptors: the server keeps answering its connections, tells new ones to try
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
    // descriptor limit is what is hit.
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
    let mut kept = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for i in 0..80 {
        let mut s = connect(p.addr);
        s.write_all(REQ).unwrap();
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
    // The connections the server holds still work.
    for s in &mut kept {
        s.write_all(REQ).unwrap();
        assert_eq!(read_reply(s).unwrap().status, 200);
    }
    // New connections keep coming while it is out of descriptors: it must refuse them
    // without burning a core. Give it one second of wall time and look at its CPU time.
    let before = p.cpu_ticks();
    let start = Instant::now();
    let mut refused_later = 0;
    while start.elapsed() < Duration::from_secs(1) {
        let mut s = connect(p.addr);
        let _ = s.write_all(REQ);
        if let Ok(r) = read_reply(&mut s) {
            assert_eq!(r.status, 503);
            refused_later += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = p.cpu_ticks() - before;
    let wall_ticks = start.elapsed().as_millis() as u64 / 10;
    assert!(refused_later > 0);
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
