//! `anon-fiber`: stackful fibers pinned to one worker thread per core, with fiber-blocking
//! I/O driven by each worker's epoll reactor.
//!
//! - A [`Runtime`] starts N workers (default: one per core, optionally pinned). Each owns an
//!   `anon_reactor` epoll instance, a timer wheel, a run queue and a pool of fiber stacks.
//! - [`spawn`] / [`Runtime::spawn`] start a fiber (a `generator` 0.8 coroutine on a guarded
//!   stack from the pool) and return a [`JoinHandle`]; [`yield_now`], [`sleep`], [`park`]
//!   and [`Fiber::unpark`] switch fibers; a fiber unparked from another thread is queued
//!   back on its own worker through that worker's eventfd.
//! - **Fibers never migrate.** A fiber runs on the worker it was spawned on until it ends,
//!   so `thread_local!` values are sound inside fibers (they are per worker, shared by its
//!   fibers); [`FiberLocal`] gives per-fiber values.
//! - **Everything is bounded.** The number of live fibers per worker is configured
//!   ([`Builder::max_fibers`]); past it spawning answers [`SpawnError::Again`] instead of
//!   dying at the kernel's memory-map limit. The blocking pool's queue and the channel are
//!   bounded too, and "full" is an answer.
//! - [`net`] sockets implement `Read`/`Write`: on `EAGAIN` they register with the worker's
//!   reactor (edge-triggered), park, and retry on readiness; outside fibers they block like
//!   std sockets. [`net::TcpStream::on_readable`] parks a connection without a fiber.
//! - **Scheduling.** Each worker turn resumes the runnable fibers that serve no admitted
//!   request first, in FIFO order, then fibers serving an admitted request
//!   ([`begin_request`]) oldest admission first, then polls its reactor: under overload a
//!   request's latency is its queueing behind older requests plus its own service time,
//!   not (requests in flight) × (service time). The worker measures each admitted
//!   request's CPU time and queueing delay ([`RequestUsage`]) for admission control.
//! - A panicking fiber unwinds only its own stack; [`JoinHandle::join`] returns the panic.
//!   A stack overflow aborts with a message naming the fiber.
//!
//! ```
//! use anon_fiber::{channel::channel, Runtime};
//!
//! let rt = Runtime::builder().workers(2).build()?;
//! let (tx, rx) = channel(4);
//! let producer = rt.spawn_on(0, move || {
//!     for i in 1..=10 {
//!         tx.send(i).unwrap(); // parks this fiber while the channel is full
//!     }
//! })?;
//! let consumer = rt.spawn_on(1, move || {
//!     anon_fiber::yield_now();
//!     rx.iter().sum::<u32>()
//! })?;
//! producer.join().unwrap();
//! assert_eq!(consumer.join().unwrap(), 55);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod blocking;
pub mod channel;
mod fiber;
mod io;
mod join;
pub mod lock;
pub mod net;
mod park;
mod remote;
mod runtime;
mod state;
mod sync;
// The only module allowed `unsafe` (poll(2), sched_setaffinity).
#[allow(unsafe_code)]
mod sys;
mod worker;

pub use blocking::{spawn_blocking, BlockingHandle};
pub use fiber::{
    current, in_fiber, park, park_timeout, sleep, worker_index, yield_now, Fiber, FiberId,
    FiberInfo, FiberLocal, FiberState, WaitOn,
};
pub use io::{Awakened, HibernateError, Hibernation};
pub use join::{JoinError, JoinHandle};
pub use park::Parker;
pub use runtime::{spawn, try_spawn, Builder, FiberBuilder, Handle, Runtime, TrySpawnError};
pub use worker::{admitted_waiting, begin_request, end_request, end_request_at, RequestUsage};

/// Why a fiber could not be spawned.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// The worker's live-fiber bound is reached (or no stack could be mapped): try again
    /// later. The backpressure answer, not a bug.
    #[error("too many live fibers: try again")]
    Again,
    /// The runtime is shutting down.
    #[error("runtime is shutting down")]
    Shutdown,
    /// Not called from a worker thread (use [`Runtime::spawn`] or a [`Handle`]).
    #[error("not on a runtime worker thread")]
    NoRuntime,
    /// No worker has this index.
    #[error("no worker {0}")]
    NoSuchWorker(usize),
}

/// Whether a panic payload (from `catch_unwind`, or a [`JoinError::Panicked`]) is the
/// runtime's own unwind of a fiber it cancels at shutdown rather than a panic of user code.
/// Code that catches panics inside a fiber must let this one go on
/// (`std::panic::resume_unwind(payload)`) so the fiber's stack finishes unwinding.
///
/// Accepts the payload itself (`&*payload`) or, forgivingly, a reference to its box.
///
/// ```
/// let p = std::panic::catch_unwind(|| panic!("handler bug")).unwrap_err();
/// assert!(!anon_fiber::is_cancellation(&*p));
/// assert!(!anon_fiber::is_cancellation(&p));
/// ```
pub fn is_cancellation(payload: &(dyn std::any::Any + Send)) -> bool {
    match payload.downcast_ref::<Box<dyn std::any::Any + Send>>() {
        Some(inner) => inner.is::<generator::Error>(),
        None => payload.is::<generator::Error>(),
    }
}

/// Why [`spawn_blocking`] has no value.
#[derive(thiserror::Error, Debug)]
pub enum BlockingError {
    /// The blocking pool's queue is full: try again later.
    #[error("blocking pool queue is full: try again")]
    Again,
    /// The runtime shut down before the closure ran.
    #[error("runtime is shutting down")]
    Shutdown,
    /// The closure panicked; the payload is the panic's.
    #[error("blocking closure panicked")]
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Internals exposed only to the loom models (`--cfg anon_loom`).
#[cfg(anon_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::remote::{Notifier, Remote};
    pub use crate::state::ParkState;
}
