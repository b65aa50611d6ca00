//! Past the in-flight limit: every request gets a full 200 or an immediate 503, the 503s
//! come back while accepted requests are still being served, and memory stays flat.

use crate::{connect, read_reply, Proc};
use anon_reactor::Signal;
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// The in-flight limit K of the test server.
const K: usize = 4;

/// What one request of a burst got.
#[derive(Debug)]
struct Outcome {
    status: u16,
    at: Instant,
}

/// Sends `n` simultaneous `/work?us=2000` requests, each on its own connection, and
/// collects every answer (panicking on a reset, a timeout or a truncated reply).
fn burst(p: &Proc, n: usize) -> Vec<Outcome> {
    let go = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (addr, go) = (p.addr, Arc::clone(&go));
            std::thread::spawn(move || {
                let mut s = connect(addr);
                go.wait();
                s.write_all(b"GET /work?us=2000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .expect("write");
                let r = read_reply(&mut s).unwrap_or_else(|e| panic!("no full reply: {e}"));
                Outcome {
                    status: r.status,
                    at: Instant::now(),
                }
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect()
}

#[test]
fn requests_past_the_limit_get_503_at_once_and_memory_stays_flat() {
    let _g = crate::heavy();
    let k = K.to_string();
    let p = Proc::hello(&["--workers", "2", "--max-inflight", &k, "--admin-port", "0"]);
    let mut rss = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for round in 0..6 {
        let outcomes = burst(&p, 10 * K);
        let last_ok = outcomes
            .iter()
            .filter(|o| o.status == 200)
            .map(|o| o.at)
            .max();
        let first_busy = outcomes
            .iter()
            .filter(|o| o.status == 503)
            .map(|o| o.at)
            .min();
        for o in &outcomes {
            assert!(
                o.status == 200 || o.status == 503,
                "round {round}: status {}",
                o.status
            );
        }
        let (Some(last_ok), Some(first_busy)) = (last_ok, first_busy) else {
            panic!("round {round}: expected both 200s and 503s, got {outcomes:?}");
        };
        assert!(
            first_busy < last_ok,
            "round {round}: the first 503 came after the last 200 ({:?} later)",
            first_busy - last_ok
        );
        ok += outcomes.iter().filter(|o| o.status == 200).count();
        busy += outcomes.iter().filter(|o| o.status == 503).count();
        rss.push(p.rss());
    }
    eprintln!(
        "overload: {} rounds of {} requests, K = {K}: {ok} × 200, {busy} × 503; RSS after each round {:?} KiB",
        rss.len(),
        10 * K,
        rss.iter().map(|r| r / 1024).collect::<Vec<_>>()
    );
    // Flat: after the first (warm-up) round, growth stays within a generous 8 MiB.
    let growth = rss.iter().max().unwrap() - rss[0];
    assert!(growth < 8 << 20, "RSS grew by {growth} bytes: {rss:?}");
    let rejected = p.metric("anon_requests_rejected_total");
    assert_eq!(
        rejected as usize, busy,
        "every 503 was an admission refusal"
    );
    p.stop(Signal::Term);
}
