//! `anon-loadgen`: an open-loop HTTP/1.1 load generator for Anon's benchmarks.
//!
//! Closed-loop tools (wrk) send the next request when the previous answer arrives, so a
//! slow server slows the load and its queue stays hidden ("coordinated omission"). Here
//! requests follow a schedule fixed in advance — constant or Poisson arrivals at a set
//! rate, in phases — and latency is measured from each request's **intended** send time:
//! a request whose connections are all busy waits in the generator's queue, and that wait
//! counts.
//!
//! - [`Config`]: target (one path, or a weighted mix of up to [`MAX_PATHS`]
//!   [`WeightedPath`]s picked by smooth weighted round robin: exact proportions,
//!   deterministic), [`Phase`]s, [`Arrival`], [`ConnMode`] (keep-alive pool or one request
//!   per connection), timeout, SLO, naive retries; every quantity bounded.
//! - [`run`] drives the schedule on one thread (non-blocking sockets on an `anon-reactor`
//!   epoll instance) and returns a [`Report`]: a count and an HDR latency summary per
//!   [`Outcome`] (2xx, 503 "try again", other status, timeout, reset/refused/closed), a
//!   100 ms time series, the outcomes and latencies per target ([`PathStats`]), and a
//!   [`Verdict`] saying whether the schedule was kept — more than 1 % of requests leaving
//!   over 1 ms late means the figures are not what was asked for, and the report says so
//!   and why; and the generator's own load ([`GeneratorLoad`]: the share of its core it
//!   spent working rather than polling idle — near 100 % it reads answers late).
//! - [`hold()`] opens many keep-alive connections, one request each, and keeps them idle.
//!
//! Responses are read with `httparse` for the head and Content-Length for the body; a
//! response without Content-Length (or chunked) counts as an error.
//!
//! ```
//! use anon_loadgen::{run, Config, Outcome};
//! use std::io::{Read, Write};
//! use std::net::TcpListener;
//! use std::time::Duration;
//!
//! // A tiny keep-alive server answering every request with 200.
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! std::thread::spawn(move || {
//!     for s in listener.incoming().take(4) {
//!         let Ok(mut s) = s else { break };
//!         std::thread::spawn(move || {
//!             let mut buf = [0u8; 1024];
//!             while let Ok(n) = s.read(&mut buf) {
//!                 if n == 0 { break; }
//!                 let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
//!             }
//!         });
//!     }
//! });
//!
//! let mut cfg = Config::new(addr, "/").rate(200.0, Duration::from_millis(250));
//! cfg.connections = 4;
//! let report = run(&cfg)?;
//! assert_eq!(report.requests, 50);
//! assert_eq!(report.outcomes.total(), report.requests);
//! assert_eq!(report.outcomes.get(Outcome::Success), 50);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod config;
mod hold;
pub mod http;
mod mix;
mod report;
mod run;
mod schedule;

pub use config::{
    Arrival, Config, ConfigError, ConnMode, Phase, WeightedPath, MAX_CONNECTIONS, MAX_DURATION,
    MAX_PATHS, MAX_RATE, MAX_REQUESTS, MAX_RESPONSE_BYTES, MAX_TIMEOUT,
};
pub use hold::{hold, Held, HoldConfig, HoldError};
pub use report::{
    Bucket, Counts, ErrorCounts, ErrorKind, GeneratorLoad, Latencies, Outcome, PathStats, Report,
    Summary, Verdict, BUCKET,
};
pub use run::{run, run_with, RunError};
