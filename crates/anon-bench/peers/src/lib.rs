//! Helpers shared by the peer servers: flags, the CPU spin of `GET /work?us=N`, routing.
//!
//! Every peer serves the same endpoints and payloads as Anon's `hello` example:
//! `GET /plaintext` answers `Hello, World!` (text/plain) and `GET /work?us=N` spins the
//! CPU for N microseconds (at most [`MAX_SPIN_US`]) before answering `done`.

use std::time::{Duration, Instant};

/// The plaintext payload (TechEmpower).
pub const PLAINTEXT: &str = "Hello, World!";

/// The body answered by `/work` once the spin is over.
pub const WORK_BODY: &str = "done";

/// Upper bound of one `/work` spin, so a mistyped query cannot hold a worker for long.
pub const MAX_SPIN_US: u64 = 1_000_000;

/// Command-line flags common to every peer.
#[derive(Debug, Clone)]
pub struct Flags {
    /// Address to listen on (`--addr`, default 127.0.0.1).
    pub addr: String,
    /// Port to listen on (`--port`, default 8080).
    pub port: u16,
    /// Concurrency limit with load shedding (`--max-inflight K`); `None` = unbounded.
    pub max_inflight: Option<usize>,
}

impl Flags {
    /// Parses `--addr A --port P --max-inflight K --workers 1` from the process arguments.
    /// `--workers` is accepted for symmetry with `hello` but only 1 is supported.
    pub fn from_env() -> Flags {
        let mut f = Flags {
            addr: "127.0.0.1".into(),
            port: 8080,
            max_inflight: None,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            let v = args.get(i + 1).cloned().unwrap_or_default();
            match args[i].as_str() {
                "--addr" => f.addr = v,
                "--port" => f.port = v.parse().unwrap_or_else(|_| die("bad --port")),
                "--max-inflight" => {
                    f.max_inflight = Some(v.parse().unwrap_or_else(|_| die("bad --max-inflight")))
                }
                "--workers" => {
                    if v != "1" {
                        die("only --workers 1 is supported by the peers");
                    }
                }
                other => die(&format!("unknown flag {other}")),
            }
            i += 2;
        }
        f
    }

    /// `addr:port`.
    pub fn socket_addr(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }
}

fn die(msg: &str) -> ! {
    eprintln!("peer: {msg}");
    std::process::exit(2)
}

/// What a request path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /plaintext`.
    Plaintext,
    /// `GET /work?us=N`: spin N µs.
    Work(u64),
    /// Anything else: 404.
    NotFound,
}

/// Routes a request target (path with optional query).
pub fn route(target: &str) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/plaintext" => Route::Plaintext,
        "/work" => {
            let us = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("us="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .min(MAX_SPIN_US);
            Route::Work(us)
        }
        _ => Route::NotFound,
    }
}

/// Spins the CPU for `us` microseconds (busy loop reading the monotonic clock).
pub fn spin(us: u64) {
    let end = Instant::now() + Duration::from_micros(us);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/plaintext"), Route::Plaintext);
        assert_eq!(route("/work?us=1000"), Route::Work(1000));
        assert_eq!(route("/work?x=1&us=7"), Route::Work(7));
        assert_eq!(route("/work?us=99999999"), Route::Work(MAX_SPIN_US));
        assert_eq!(route("/nope"), Route::NotFound);
    }
}
