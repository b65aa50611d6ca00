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

pub mod queue;
pub mod reactor;
pub mod report;

/// A suite's entry point: takes the arguments after the suite name.
pub type SuiteFn = fn(&[String]) -> Result<(), String>;

/// `(name, what it measures, entry point)` for every suite.
pub const SUITES: &[(&str, &str, SuiteFn)] = &[
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
];
