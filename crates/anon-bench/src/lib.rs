//! Benchmark suites for Anon, each comparing our crates with their peers side by side.
//!
//! This crate is benchmark-only: no library crate depends on it, and its peers (other
//! queues, runtimes, parsers) never enter the library's dependency graph. The binary
//! `anon-bench` is run through `cargo xtask bench SUITE`.
//!
//! ```
//! use anon_bench::report::median;
//! assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
//! ```

#![forbid(unsafe_code)]

pub mod conns;
pub mod fiber;
pub mod http;
pub mod overload;
pub mod peers;
pub mod queue;
pub mod reactor;
pub mod report;

/// A suite's entry point: takes the arguments after the suite name.
pub type SuiteFn = fn(&[String]) -> Result<(), String>;

/// `(name, what it measures, entry point)` for every suite.
pub const SUITES: &[(&str, &str, SuiteFn)] = &[
    (
        "fiber",
        "anon-fiber vs may: yield+resume, spawn+join (warm pool), cross-worker unpark, TCP echo on one worker, RSS per parked fiber",
        fiber::run,
    ),
    (
        "http",
        "anon-http request-head parse vs httparse: minimal GET and a ~700-byte browser request",
        http::run,
    ),
    (
        "queue",
        "anon-queue's ring vs crossbeam ArrayQueue and concurrent-queue; admission decision cost",
        queue::run,
    ),
    (
        "reactor",
        "Waker wake->poll, timer insert+cancel, empty epoll_wait; mio and BTreeMap alongside",
        reactor::run,
    ),
    (
        "peers",
        "hello vs may_minihttp, hyper, actix-web, nginx on /plaintext (wrk, pinned; req/s, CPU/req, syscalls/req)",
        peers::run,
    ),
    (
        "overload",
        "open-loop overload: capacity, 0.5-10x C sweep, steps (with hello's admission limit over time), stall with retries, I/O-bound /sleep, 90/10 mix; hello (defaults, fixed limit) vs hyper (unbounded, tower limit); --workers 1,2 --only sweep,step,stall,io,mix",
        overload::run,
    ),
    (
        "conns",
        "RSS per idle keep-alive connection at 1k/5k/10k/19.9k: hello vs may_minihttp, hyper, nginx",
        conns::run,
    ),
];
