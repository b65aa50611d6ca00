//! Anon's backpressure core: every handoff is bounded, and "full" is an answer.
//!
//! This crate holds the primitives that let the consumer of work stop its producer, free of
//! any runtime (it knows no fibers, sockets or clocks of its own):
//!
//! - [`Queue`]: a bounded MPMC array ring. [`Queue::try_push`] never waits: it returns
//!   [`PushError::Full`] (the backpressure signal) or [`PushError::Closed`], handing the
//!   value back.
//! - [`Park`], [`WaitList`]: the hook through which a runtime lets this crate park a caller
//!   and wake it, and [`Channel`], a queue whose callers may wait through it.
//! - [`Admission`]: one decision per request, [`Admission::admit`], giving an RAII
//!   [`Permit`] or [`Rejected`] with a [`Reason`] and a suggested retry-after. It combines
//!   queue-delay shedding after Facebook's "Fail at Scale" ([`CodelConfig`]), a hard
//!   ceiling, and an adaptive concurrency limit, on by default ([`AdaptiveConfig`]),
//!   driven by the queueing delay each request suffered after admission ([`Usage`]).
//!   [`Hysteresis`] keeps a busy mode from flapping.
//! - [`Ioq`]: a per-device semaphore with a bounded FIFO wait list that answers [`Again`]
//!   when the list is full, after cmogstored.
//! - Counters ([`QueueStats`], [`AdmissionStats`], [`IoqStats`], [`Histogram`]) are atomics,
//!   read without locks.
//!
//! No function here reads the clock on its own: [`Admission`] takes `Instant`s from the
//! caller and [`Ioq`] takes a [`Clock`], so tests drive time by hand.
//!
//! # The EAGAIN pattern
//!
//! A producer that meets a full queue does not wait: it answers "try again" at once, so the
//! client backs off and the server's memory stays bounded.
//!
//! ```
//! use anon_queue::{PushError, Queue};
//!
//! /// What a server answers a request with.
//! #[derive(Debug, PartialEq)]
//! enum Reply {
//!     Accepted,
//!     TryAgain, // HTTP 503 + Retry-After, RESP -TRYAGAIN
//!     ShuttingDown,
//! }
//!
//! fn submit(work: &Queue<u32>, job: u32) -> Reply {
//!     match work.try_push(job) {
//!         Ok(()) => Reply::Accepted,
//!         Err(PushError::Full(_job)) => Reply::TryAgain,
//!         Err(PushError::Closed(_job)) => Reply::ShuttingDown,
//!     }
//! }
//!
//! let work = Queue::new(2);
//! assert_eq!(submit(&work, 1), Reply::Accepted);
//! assert_eq!(submit(&work, 2), Reply::Accepted);
//! // The consumer is behind: the third producer is told to come back later.
//! assert_eq!(submit(&work, 3), Reply::TryAgain);
//! assert_eq!(work.stats().rejected_full, 1);
//! // The consumer catches up; the retry succeeds.
//! assert_eq!(work.try_pop(), Ok(1));
//! assert_eq!(submit(&work, 3), Reply::Accepted);
//! work.close();
//! assert_eq!(submit(&work, 4), Reply::ShuttingDown);
//! ```
//!
//! # Testing
//!
//! Algorithm code takes its atomics and locks from a private `sync` facade that switches to
//! loom under `--cfg anon_loom`; `tests/loom.rs` holds the models (`cargo xtask loom`).

#![forbid(unsafe_code)]

mod adaptive;
mod admit;
mod chan;
mod ioq;
mod park;
mod ring;
mod stats;
mod sync;

pub use adaptive::{kind_key, AdaptiveConfig, Usage};
pub use admit::{
    Admission, AdmissionConfig, AdmissionStats, BusyChange, CodelConfig, Hysteresis, Permit,
    Reason, Rejected,
};
pub use ioq::{Ioq, IoqPermit, IoqStats};
pub use stats::{Clock, Histogram, HistogramSnapshot, StdClock, BUCKETS};

pub use chan::{Channel, RecvError, SendError};
pub use park::{Again, Park, ThreadParker, WaitList, WaitTicket};
pub use ring::{PopError, PushError, Queue, QueueStats};
