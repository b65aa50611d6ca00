//! Suite `queue`: anon-queue's ring against `crossbeam_queue::ArrayQueue` and
//! `concurrent_queue::ConcurrentQueue::bounded`, and the cost of an admission decision.
//!
//! Every contender runs the same workload on a queue of the same capacity, in interleaved
//! rounds; the table shows medians. Arguments: `--rounds N` (default 11), `--quick`
//! (a tenth of the iterations, for a smoke run).

use crate::report::{interleaved, Contender, Report};
use anon_queue::{Admission, AdmissionConfig, Ioq, Queue};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const CAPACITY: usize = 1024;

/// The operations every contender offers, so one generic workload drives them all.
trait Bounded: Sync {
    fn push(&self, v: u64) -> bool;
    fn pop(&self) -> Option<u64>;
}

impl Bounded for Queue<u64> {
    #[inline]
    fn push(&self, v: u64) -> bool {
        self.try_push(v).is_ok()
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        self.try_pop().ok()
    }
}

impl Bounded for crossbeam_queue::ArrayQueue<u64> {
    #[inline]
    fn push(&self, v: u64) -> bool {
        crossbeam_queue::ArrayQueue::push(self, v).is_ok()
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        crossbeam_queue::ArrayQueue::pop(self)
    }
}

impl Bounded for concurrent_queue::ConcurrentQueue<u64> {
    #[inline]
    fn push(&self, v: u64) -> bool {
        concurrent_queue::ConcurrentQueue::push(self, v).is_ok()
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        concurrent_queue::ConcurrentQueue::pop(self).ok()
    }
}

/// ns per push+pop pair on one thread (the queue stays nearly empty).
fn one_thread<Q: Bounded>(q: &Q, iters: u64) -> f64 {
    let start = Instant::now();
    for i in 0..iters {
        let pushed = q.push(black_box(i));
        black_box(pushed);
        black_box(q.pop());
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Two threads each doing push+pop pairs on the same queue: ns per pair, per thread
/// (wall time / pairs done by one thread).
fn two_threads_mixed<Q: Bounded>(q: &Q, iters: u64) -> f64 {
    let barrier = Barrier::new(2);
    let times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        while !q.push(black_box(i)) {
                            std::hint::spin_loop();
                        }
                        black_box(q.pop());
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    while q.pop().is_some() {}
    let wall = times.into_iter().max().unwrap_or_default();
    wall.as_nanos() as f64 / iters as f64
}

/// One producer thread and one consumer thread: ns per item handed over.
fn producer_consumer<Q: Bounded>(q: &Q, items: u64) -> f64 {
    let barrier = Barrier::new(2);
    let start = std::thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            for i in 0..items {
                while !q.push(i) {
                    std::hint::spin_loop();
                }
            }
        });
        barrier.wait();
        let start = Instant::now();
        let mut got = 0;
        while got < items {
            match q.pop() {
                Some(v) => {
                    black_box(v);
                    got += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        start
    });
    start.elapsed().as_nanos() as f64 / items as f64
}

fn parse(args: &[String]) -> Result<(usize, u64), String> {
    let mut rounds = 11;
    let mut scale = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .ok_or("--rounds needs a positive number")?;
            }
            "--quick" => scale = 10,
            other => return Err(format!("queue: unknown argument {other:?}")),
        }
    }
    Ok((rounds, scale))
}

/// Runs the suite.
pub fn run(args: &[String]) -> Result<(), String> {
    let (rounds, scale) = parse(args)?;
    let mut report = Report::new("queue");
    report.notes.push(format!(
        "capacity {CAPACITY} for every queue, u64 items; {rounds} interleaved rounds, medians"
    ));
    report.notes.push(
        "anon-queue's ring keeps each slot's value in an uncontended Mutex<Option<T>> \
         because the crate forbids unsafe; the peers use UnsafeCell"
            .into(),
    );
    report.notes.push(
        "2 threads mixed: both threads push then pop in a loop, figure = wall time / pairs \
         per thread; producer->consumer: one thread pushes, one pops, figure = ns per item"
            .into(),
    );

    report.notes.push(format!(
        "load average at start (2-core machine shared with other builds): {}; the 2-thread \
         rows mean little when it is above ~0.5",
        load_average()
    ));

    let anon: Queue<u64> = Queue::new(CAPACITY);
    let cb = crossbeam_queue::ArrayQueue::new(CAPACITY);
    let cq = concurrent_queue::ConcurrentQueue::bounded(CAPACITY);

    let n1 = 2_000_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-queue Queue", Box::new(|| one_thread(&anon, n1))),
        ("crossbeam ArrayQueue", Box::new(|| one_thread(&cb, n1))),
        ("concurrent-queue bounded", Box::new(|| one_thread(&cq, n1))),
    ];
    report.rows.extend(interleaved(
        "push+pop, 1 thread",
        "ns",
        Some("parity with peers"),
        rounds,
        &mut c,
    ));
    drop(c);

    let n2 = 500_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        (
            "anon-queue Queue",
            Box::new(|| two_threads_mixed(&anon, n2)),
        ),
        (
            "crossbeam ArrayQueue",
            Box::new(|| two_threads_mixed(&cb, n2)),
        ),
        (
            "concurrent-queue bounded",
            Box::new(|| two_threads_mixed(&cq, n2)),
        ),
    ];
    report.rows.extend(interleaved(
        "push+pop, 2 threads contended",
        "ns",
        Some("parity with peers"),
        rounds,
        &mut c,
    ));
    drop(c);

    let n3 = 1_000_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        (
            "anon-queue Queue",
            Box::new(|| producer_consumer(&anon, n3)),
        ),
        (
            "crossbeam ArrayQueue",
            Box::new(|| producer_consumer(&cb, n3)),
        ),
        (
            "concurrent-queue bounded",
            Box::new(|| producer_consumer(&cq, n3)),
        ),
    ];
    report.rows.extend(interleaved(
        "producer->consumer, 2 threads",
        "ns/item",
        Some("parity with peers"),
        rounds,
        &mut c,
    ));
    drop(c);

    admission_rows(&mut report, rounds, 5_000_000 / scale);
    report
        .notes
        .push(format!("load average at end: {}", load_average()));
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// `/proc/loadavg`'s first three fields, or `"unknown"`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The cost of one admission decision, on one thread, with `now` handed in.
fn admission_rows(report: &mut Report, rounds: usize, iters: u64) {
    let t0 = Instant::now();
    // The defaults: CoDel and the adaptive limit on.
    let adm = Admission::new_at(AdmissionConfig::default(), t0);
    let full = Admission::new_at(
        AdmissionConfig {
            max_in_flight: 1,
            ..AdmissionConfig::default()
        },
        t0,
    );
    let _held = full.admit(t0, t0);
    let ioq = Ioq::new(4, 4);
    let per = |start: Instant| start.elapsed().as_nanos() as f64 / iters as f64;
    let mut c: Vec<Contender<'_>> = vec![
        (
            "admit + drop permit (CoDel on, limit 1024)",
            Box::new(|| {
                let start = Instant::now();
                for i in 0..iters {
                    let arrived = t0 + Duration::from_nanos(i & 1023);
                    let now = black_box(arrived + Duration::from_micros(3));
                    black_box(adm.admit(arrived, now).is_ok());
                }
                per(start)
            }),
        ),
        (
            "reject (limit reached)",
            Box::new(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(full.admit(black_box(t0), black_box(t0)).is_err());
                }
                per(start)
            }),
        ),
        (
            "admit + drop, reading Instant::now()",
            Box::new(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    let now = Instant::now();
                    black_box(adm.admit(now, now).is_ok());
                }
                per(start)
            }),
        ),
        (
            "admit_kind + finish with usage (adaptive, kind known)",
            Box::new(|| {
                let kind = anon_queue::kind_key(b"/work");
                let usage = anon_queue::Usage {
                    service: Duration::from_micros(100),
                    ..anon_queue::Usage::default()
                };
                let start = Instant::now();
                for i in 0..iters {
                    let now = black_box(t0 + Duration::from_nanos(i * 1000));
                    if let Ok(p) = adm.admit_kind(kind, now, now, 0) {
                        p.finish(now + Duration::from_micros(100), usage);
                    }
                }
                per(start)
            }),
        ),
        (
            "ioq try_acquire + drop (mutex)",
            Box::new(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(ioq.try_acquire().is_ok());
                }
                per(start)
            }),
        ),
    ];
    report.rows.extend(interleaved(
        "admission decision, 1 thread",
        "ns",
        Some("well under 50 ns"),
        rounds,
        &mut c,
    ));
}
