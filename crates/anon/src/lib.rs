//! Anon: blocking-style network servers on pinned stackful fibers, where every bound
//! answers "try again".
//!
//! Each core runs one worker thread with its own epoll reactor and run queue; a handler is
//! ordinary blocking Rust running on a fiber that parks instead of blocking the thread.
//! Every queue is bounded, and a request past a bound gets an immediate "try again"
//! (HTTP `503` + `Retry-After`, a banner for raw TCP) instead of waiting in a queue
//! that grows until every client times out.
//!
//! This crate is the facade. It re-exports the layers ([`reactor`], [`queue`], [`fiber`],
//! [`http`]) and adds the [`Server`]: listeners on several addresses, each with its
//! protocol [`Engine`] ([`Http`], [`Tcp`]), the worker count, the limits
//! ([`Limits`]: connections, requests in flight, live fibers, queue delay), the timeouts,
//! busy mode with hysteresis on the accept path, per-request admission, a graceful drain
//! on `SIGTERM`/`SIGINT`, and Prometheus metrics on an optional admin listener.
//!
//! Admission needs no tuning: by default each worker runs an adaptive concurrency limit
//! ([`Limits::adaptive`]) that admits requests only while the time they wait for the CPU
//! stays near twice what they take unloaded, and schedules admitted requests oldest
//! first; `max_in_flight` is only a hard ceiling above it.
//!
//! ```
//! use anon::{Http, Response, Server};
//!
//! let running = Server::new()
//!     .workers(2)
//!     .listen("127.0.0.1:0", Http::from_fn(|_req| Ok(Response::new("Hello, World!"))))
//!     .start()?;
//! let addr = running.local_addrs()[0];
//!
//! // Any HTTP client will do; this one is anon's own.
//! let client = anon::http::client::Client::new(Default::default());
//! let resp = client.get(&format!("http://{addr}/"))?;
//! assert_eq!(resp.body(), b"Hello, World!");
//!
//! // `run()` would block until SIGTERM or SIGINT; here the drain is asked for directly.
//! let report = running.shutdown();
//! assert_eq!(report.unfinished, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A complete server binary is `cargo xtask run hello` (the `hello` example).

#![forbid(unsafe_code)]

mod accept;
mod admit;
mod engine;
mod metrics;
mod ratelog;
mod server;

pub use engine::{DrainSignal, Engine, EngineContext, Http, HttpFn, IntoEngine, Tcp};
pub use metrics::Prom;
pub use server::{
    AcceptMode, DrainReport, Limits, Running, Server, ShutdownHandle, StartError, Timeouts,
};

/// The HTTP types handlers take and return (the `http` crate's).
pub use ::http::{header, Method, Request, Response, StatusCode};
/// The handler's request body and error types.
pub use anon_http::server::Body;
pub use anon_http::{Again, HandlerError};

/// The reactor layer (`anon-reactor`): epoll, timers, signals, pidfds.
pub mod reactor {
    pub use anon_reactor::*;
}

/// The backpressure layer (`anon-queue`): bounded queues, admission, per-device I/O limits.
pub mod queue {
    pub use anon_queue::*;
}

/// The fiber layer (`anon-fiber`): workers, fibers, fiber-blocking sockets and sync.
pub mod fiber {
    pub use anon_fiber::*;
}

/// HTTP/1.1 (`anon-http`): the sans-IO codec, the fiber server driver and the client.
pub mod http {
    pub use anon_http::*;
}
