//! Suite `reactor`: the costs at the bottom of every Anon thread — a cross-thread `Waker`
//! wake until the woken `poll` returns, a timer insert+cancel, and an `epoll_wait` that
//! finds nothing — with mio 1.x side by side for the waker and the empty poll, and a
//! `BTreeMap` timer set as the O(log n) reference for the timer wheel.
//!
//! Arguments: `--rounds N` (default 9), `--quick` (a tenth of the iterations).

use crate::report::{interleaved, Contender, Report};
use anon_reactor::{Events, Poll, TimerWheel, Token, Waker};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const WAKE: Token = Token(0);
/// Live timers kept in the structure while insert+cancel pairs are measured.
const TIMER_POPULATION: usize = 10_000;

fn parse(args: &[String]) -> Result<(usize, u64), String> {
    let mut rounds = 9;
    let mut scale = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a value")?;
                rounds = v.parse().map_err(|e| format!("--rounds {v}: {e}"))?;
                if rounds == 0 || rounds > 1000 {
                    return Err("--rounds must be 1..=1000".into());
                }
            }
            "--quick" => scale = 10,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((rounds, scale))
}

/// One side of a ping-pong: something that can wake the peer and wait to be woken.
trait Side: Send + 'static {
    type Remote: Send + Sync + 'static;
    /// Wake the peer owning `remote`.
    fn wake(remote: &Self::Remote);
    /// Block until our own waker fired (then re-arm it).
    fn wait(&mut self);
}

struct AnonSide {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
}

impl AnonSide {
    fn new() -> (AnonSide, Arc<Waker>) {
        let poll = Poll::new().expect("epoll");
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).expect("eventfd"));
        let side = AnonSide {
            poll,
            events: Events::with_capacity(8),
            waker: Arc::clone(&waker),
        };
        (side, waker)
    }
}

impl Side for AnonSide {
    type Remote = Waker;
    fn wake(remote: &Waker) {
        remote.wake().expect("wake");
    }
    fn wait(&mut self) {
        loop {
            self.poll.poll(&mut self.events, None).expect("poll");
            if self.events.iter().any(|e| e.token() == WAKE) {
                // Protocol: reset before looking for work (here: nothing more to look at).
                self.waker.reset();
                return;
            }
        }
    }
}

struct MioSide {
    poll: mio::Poll,
    events: mio::Events,
}

impl MioSide {
    fn new() -> (MioSide, Arc<mio::Waker>) {
        let poll = mio::Poll::new().expect("epoll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("eventfd"));
        let side = MioSide {
            poll,
            events: mio::Events::with_capacity(8),
        };
        (side, waker)
    }
}

impl Side for MioSide {
    type Remote = mio::Waker;
    fn wake(remote: &mio::Waker) {
        remote.wake().expect("wake");
    }
    fn wait(&mut self) {
        loop {
            self.poll.poll(&mut self.events, None).expect("poll");
            if self.events.iter().any(|e| e.token() == mio::Token(0)) {
                return;
            }
        }
    }
}

/// ns from a wake on one thread to the woken poll's return on another: two threads wake
/// each other `iters` times each; figure = wall time / (2 × iters).
fn ping_pong<S: Side>(make: fn() -> (S, Arc<S::Remote>), iters: u64) -> f64 {
    let (mut a, a_remote) = make();
    let (mut b, b_remote) = make();
    let start_line = Arc::new(Barrier::new(2));
    let line = Arc::clone(&start_line);
    let a_for_b = Arc::clone(&a_remote);
    let peer = std::thread::spawn(move || {
        line.wait();
        for _ in 0..iters {
            b.wait();
            S::wake(&a_for_b);
        }
    });
    start_line.wait();
    let start = Instant::now();
    for _ in 0..iters {
        S::wake(&b_remote);
        a.wait();
    }
    let elapsed = start.elapsed();
    peer.join().expect("peer thread");
    elapsed.as_nanos() as f64 / (2 * iters) as f64
}

/// ns per burst on one thread: `burst` wakes, then one zero-timeout poll that must see
/// the waker's event (then the reset). Shows what coalescing saves on repeated wakes.
fn burst_anon(iters: u64, burst: usize) -> f64 {
    let (mut side, waker) = AnonSide::new();
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..burst {
            waker.wake().expect("wake");
        }
        side.poll
            .poll(&mut side.events, Some(Duration::ZERO))
            .expect("poll");
        assert!(side.events.iter().any(|e| e.token() == WAKE), "wake lost");
        waker.reset();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn burst_mio(iters: u64, burst: usize) -> f64 {
    let (mut side, waker) = MioSide::new();
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..burst {
            waker.wake().expect("wake");
        }
        side.poll
            .poll(&mut side.events, Some(Duration::ZERO))
            .expect("poll");
        assert!(
            side.events.iter().any(|e| e.token() == mio::Token(0)),
            "wake lost"
        );
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// ns per `poll` with a zero timeout and nothing ready (16 idle registrations).
fn empty_poll_anon(iters: u64) -> f64 {
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(64);
    let wakers: Vec<Waker> = (0..16)
        .map(|i| Waker::new(poll.registry(), Token(i)).expect("eventfd"))
        .collect();
    let start = Instant::now();
    for _ in 0..iters {
        poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        black_box(events.len());
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    drop(wakers);
    ns
}

fn empty_poll_mio(iters: u64) -> f64 {
    let mut poll = mio::Poll::new().expect("epoll");
    let mut events = mio::Events::with_capacity(64);
    let wakers: Vec<mio::Waker> = (0..16)
        .map(|i| mio::Waker::new(poll.registry(), mio::Token(i)).expect("eventfd"))
        .collect();
    let start = Instant::now();
    for _ in 0..iters {
        poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        black_box(events.iter().count());
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    drop(wakers);
    ns
}

/// Deterministic pseudo-random offsets in 0..60 s (xorshift64*), the same for every
/// contender.
fn offsets(n: usize, seed: u64) -> Vec<Duration> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            Duration::from_micros(r % 60_000_000)
        })
        .collect()
}

/// ns per insert+cancel pair on a `TimerWheel` holding `TIMER_POPULATION` live timers.
fn timers_wheel(iters: u64, offs: &[Duration]) -> f64 {
    let t0 = Instant::now();
    let mut wheel = TimerWheel::new(t0);
    for (i, d) in offs.iter().take(TIMER_POPULATION).enumerate() {
        wheel.insert(t0 + *d, i as u64);
    }
    let start = Instant::now();
    for i in 0..iters {
        let d = offs[i as usize % offs.len()];
        let key = wheel.insert(t0 + d, i);
        black_box(wheel.cancel(key));
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// The same on a `BTreeMap<(deadline, seq), value>`.
fn timers_btree(iters: u64, offs: &[Duration]) -> f64 {
    let t0 = Instant::now();
    let mut map: BTreeMap<(Instant, u64), u64> = BTreeMap::new();
    for (i, d) in offs.iter().take(TIMER_POPULATION).enumerate() {
        map.insert((t0 + *d, i as u64), i as u64);
    }
    let mut seq = TIMER_POPULATION as u64;
    let start = Instant::now();
    for i in 0..iters {
        let d = offs[i as usize % offs.len()];
        seq += 1;
        let key = (t0 + d, seq);
        map.insert(key, i);
        black_box(map.remove(&key));
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Runs the suite.
pub fn run(args: &[String]) -> Result<(), String> {
    let (rounds, scale) = parse(args)?;
    let mut report = Report::new("reactor");
    report.notes.push(format!(
        "{rounds} interleaved rounds, medians; threads not pinned (2 shared cores)"
    ));
    report.notes.push(
        "waker: two threads each with its own Poll + Waker wake each other in turn; \
         figure = wall time / wakes (one wake -> the other thread's poll returns)"
            .into(),
    );
    report.notes.push(format!(
        "timers: insert at a random deadline in 0..60 s then cancel it, with \
         {TIMER_POPULATION} other live timers; BTreeMap<(Instant, seq), u64> as reference"
    ));
    report.notes.push(
        "same thread: N wakes then poll(timeout 0) that sees the event (anon then resets); \
         anon's wakes after the first are one atomic swap, mio writes the eventfd each time"
            .into(),
    );
    report.notes.push(
        "empty poll: poll(timeout 0) with 16 idle eventfd registrations, nothing ready".into(),
    );

    let n = 20_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-reactor", Box::new(|| ping_pong(AnonSide::new, n))),
        ("mio 1", Box::new(|| ping_pong(MioSide::new, n))),
    ];
    report.rows.extend(interleaved(
        "Waker wake -> poll return, cross-thread",
        "ns",
        None,
        rounds,
        &mut c,
    ));
    drop(c);

    let n = 200_000 / scale;
    for burst in [1, 8] {
        let mut c: Vec<Contender<'_>> = vec![
            ("anon-reactor", Box::new(move || burst_anon(n, burst))),
            ("mio 1", Box::new(move || burst_mio(n, burst))),
        ];
        report.rows.extend(interleaved(
            &format!("{burst} wake(s) + poll(0), same thread"),
            "ns",
            None,
            rounds,
            &mut c,
        ));
        drop(c);
    }

    let offs = offsets(1 << 16, 0x9E37_79B9_7F4A_7C15);
    let n = 2_000_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        (
            "anon-reactor TimerWheel",
            Box::new(|| timers_wheel(n, &offs)),
        ),
        ("BTreeMap (reference)", Box::new(|| timers_btree(n, &offs))),
    ];
    report.rows.extend(interleaved(
        "timer insert+cancel",
        "ns",
        None,
        rounds,
        &mut c,
    ));
    drop(c);

    let n = 1_000_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-reactor", Box::new(|| empty_poll_anon(n))),
        ("mio 1", Box::new(|| empty_poll_mio(n))),
    ];
    report.rows.extend(interleaved(
        "epoll_wait, nothing ready (timeout 0)",
        "ns",
        None,
        rounds,
        &mut c,
    ));
    drop(c);

    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}
