//! `hello`: the TechEmpower-style HTTP server, with the knobs of every bound.
//!
//! ```text
//! cargo xtask run hello -- --port 8080
//! curl http://127.0.0.1:8080/plaintext        # Hello, World!
//! curl http://127.0.0.1:8080/json             # {"message":"Hello, World!"}
//! curl -d 'some body' http://127.0.0.1:8080/echo
//! curl 'http://127.0.0.1:8080/work?us=2000'   # 2 ms of CPU, in 50 µs slices
//! curl 'http://127.0.0.1:8080/sleep?ms=100'   # parks the fiber 100 ms
//! ```
//!
//! Routes:
//! - `GET /plaintext`: `Hello, World!` as `text/plain`.
//! - `GET /json`: `{"message":"Hello, World!"}`, serialized per request.
//! - `POST /echo`: the request body back (`application/octet-stream`).
//! - `GET /work?us=N`: spins the CPU for N µs (at most 1 s) in slices of 50 µs,
//!   yielding to the worker's other fibers between slices, as a CPU-bound handler on a
//!   fiber should (the peers of the `overload` benchmark do the same); so N µs of CPU is
//!   spent per request; the adaptive admission limit (or `--max-inflight` with
//!   `--adaptive off`) bounds how many share a worker.
//! - `GET /sleep?ms=N`: parks the fiber N ms (at most 60 s).
//! - `GET /panic`: the handler panics (the client gets `500`, the server goes on).
//!
//! SIGTERM or SIGINT drain the server (requests in flight are answered) and exit 0.
//! The first line on stdout is `hello listening on ADDR`; with `--admin-port`, the
//! second is `hello admin on ADDR` (`/metrics`, `/fibers`).

#![forbid(unsafe_code)]

use anon::header::{HeaderValue, CONTENT_TYPE, SERVER};
use anon::{
    AcceptMode, Body, HandlerError, Http, Limits, Request, Response, Server, StatusCode, Timeouts,
};
use anon_examples::{init_logging, FlagSpec, Flags};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const ABOUT: &str =
    "hello: Anon's HTTP example (/plaintext, /json, /echo, /work?us=N, /sleep?ms=N, /panic)";

const FLAGS: &[FlagSpec] = &[
    (
        "--addr",
        Some("IP"),
        "address to listen on (default 127.0.0.1)",
    ),
    (
        "--port",
        Some("N"),
        "port (default 8080; 0 picks a free one)",
    ),
    (
        "--workers",
        Some("N"),
        "worker threads (default: one per core)",
    ),
    (
        "--max-inflight",
        Some("N"),
        "hard ceiling on requests handled at once; past it 503 (default 1024)",
    ),
    (
        "--adaptive",
        Some("on|off"),
        "adaptive concurrency limit under the ceiling (default on)",
    ),
    (
        "--max-conns",
        Some("N"),
        "open connections; past it new ones get 503 (default: fd limit - 64)",
    ),
    (
        "--max-fibers",
        Some("N"),
        "live fibers (default: from vm.max_map_count)",
    ),
    (
        "--queue-delay-ms",
        Some("N"),
        "queue-delay target, 0 = off (default 5)",
    ),
    (
        "--backlog",
        Some("N"),
        "listen backlog per socket (default 128)",
    ),
    (
        "--head-timeout-ms",
        Some("N"),
        "request head timeout (default 2000)",
    ),
    (
        "--idle-timeout-ms",
        Some("N"),
        "keep-alive idle timeout (default 15000)",
    ),
    (
        "--write-timeout-ms",
        Some("N"),
        "each write (default 10000)",
    ),
    (
        "--drain-timeout-ms",
        Some("N"),
        "how long a drain waits for requests in flight (default 10000)",
    ),
    (
        "--admin-port",
        Some("N"),
        "serve /metrics and /fibers on this port (same address)",
    ),
    (
        "--accept",
        Some("MODE"),
        "reuseport (default) or shared: how workers share the port",
    ),
    ("--pin", None, "pin worker i to CPU i"),
    (
        "--nofile",
        Some("N"),
        "lower the soft descriptor limit to N first (for tests)",
    ),
];

/// Longest `/work` spin and `/sleep` park accepted.
const MAX_WORK_US: u64 = 1_000_000;
const MAX_SLEEP_MS: u64 = 60_000;
/// Largest `/echo` body.
const MAX_ECHO: u64 = 8 * 1024 * 1024;
/// `/work` yields to the other fibers after each slice of this much CPU.
const WORK_SLICE: Duration = Duration::from_micros(50);

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

fn main() -> ExitCode {
    init_logging();
    match run(std::env::args().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> Result<(), String> {
    let Some(f) = Flags::parse("hello", ABOUT, FLAGS, args)? else {
        return Ok(());
    };
    if let Some(n) = f.opt::<u64>("--nofile")? {
        let (_, hard) = rlimit::Resource::NOFILE
            .get()
            .map_err(|e| format!("getrlimit: {e}"))?;
        rlimit::Resource::NOFILE
            .set(n.min(hard), hard)
            .map_err(|e| format!("--nofile {n}: {e}"))?;
    }
    let addr: std::net::IpAddr = f.get("--addr", std::net::IpAddr::from([127, 0, 0, 1]))?;
    let port: u16 = f.get("--port", 8080)?;
    let defaults = Limits::default();
    let queue_delay_ms: u64 = f.get("--queue-delay-ms", 5)?;
    let limits = Limits {
        max_connections: positive(&f, "--max-conns", defaults.max_connections)?,
        max_in_flight: positive(&f, "--max-inflight", defaults.max_in_flight)?,
        adaptive: match f.get("--adaptive", "on".to_string())?.as_str() {
            "on" => defaults.adaptive,
            "off" => None,
            other => return Err(format!("--adaptive {other:?}: expected on or off")),
        },
        max_fibers: match f.opt::<usize>("--max-fibers")? {
            Some(0) => return Err("--max-fibers must be at least 1".into()),
            n => n,
        },
        queue_delay: (queue_delay_ms > 0).then(|| Duration::from_millis(queue_delay_ms)),
        backlog: positive(&f, "--backlog", defaults.backlog as usize)? as u32,
    };
    let t = Timeouts::default();
    let timeouts = Timeouts {
        head: ms(&f, "--head-timeout-ms", t.head)?,
        idle: ms(&f, "--idle-timeout-ms", t.idle)?,
        write: ms(&f, "--write-timeout-ms", t.write)?,
        drain: ms(&f, "--drain-timeout-ms", t.drain)?,
        ..t
    };
    let accept = match f.get("--accept", "reuseport".to_string())?.as_str() {
        "reuseport" => AcceptMode::ReusePort,
        "shared" => AcceptMode::Shared,
        other => return Err(format!("--accept {other:?}: expected reuseport or shared")),
    };
    let mut server = Server::new()
        .listen(
            std::net::SocketAddr::new(addr, port).to_string(),
            Http::from_fn(handle),
        )
        .limits(limits)
        .timeouts(timeouts)
        .accept_mode(accept)
        .pin_workers(f.has("--pin"));
    if let Some(n) = f.opt::<usize>("--workers")? {
        if n == 0 {
            return Err("--workers must be at least 1".into());
        }
        server = server.workers(n);
    }
    if let Some(p) = f.opt::<u16>("--admin-port")? {
        server = server.admin(std::net::SocketAddr::new(addr, p).to_string());
    }
    let running = server.start().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "hello listening on {}", running.local_addrs()[0]);
    if let Some(a) = running.admin_addr() {
        let _ = writeln!(out, "hello admin on {a}");
    }
    let _ = out.flush();
    drop(out);
    let report = running.wait().map_err(|e| e.to_string())?;
    if report.unfinished > 0 {
        log::warn!(
            "{} connection(s) were cut at the drain deadline",
            report.unfinished
        );
    }
    Ok(())
}

fn positive(f: &Flags, name: &str, default: usize) -> Result<usize, String> {
    match f.get(name, default)? {
        0 => Err(format!("{name} must be at least 1")),
        n => Ok(n),
    }
}

fn ms(f: &Flags, name: &str, default: Duration) -> Result<Duration, String> {
    match f.opt::<u64>(name)? {
        None => Ok(default),
        Some(0) => Err(format!("{name} must be at least 1")),
        Some(n) => Ok(Duration::from_millis(n)),
    }
}

/// The router.
fn handle(req: Request<Body<'_>>) -> Result<Response<Vec<u8>>, HandlerError> {
    let get = req.method() == anon::Method::GET;
    match req.uri().path() {
        "/plaintext" if get => Ok(reply("text/plain", b"Hello, World!".to_vec())),
        "/json" => {
            let body = serde_json::to_vec(&Message {
                message: "Hello, World!",
            })
            .map_err(HandlerError::internal)?;
            Ok(reply("application/json", body))
        }
        "/echo" if req.method() == anon::Method::POST => {
            let mut body = Vec::new();
            req.into_body().take(MAX_ECHO).read_to_end(&mut body)?;
            Ok(reply("application/octet-stream", body))
        }
        "/work" if get => {
            let us = query_number(&req, "us", MAX_WORK_US)?;
            spin(Duration::from_micros(us));
            Ok(reply(
                "text/plain",
                format!("worked {us} us\n").into_bytes(),
            ))
        }
        "/sleep" if get => {
            let ms = query_number(&req, "ms", MAX_SLEEP_MS)?;
            anon::fiber::sleep(Duration::from_millis(ms));
            Ok(reply("text/plain", format!("slept {ms} ms\n").into_bytes()))
        }
        "/panic" if get => panic!("the /panic route panics on purpose"),
        "/plaintext" | "/work" | "/sleep" | "/panic" | "/echo" => {
            Err(StatusCode::METHOD_NOT_ALLOWED.into())
        }
        _ => Err(StatusCode::NOT_FOUND.into()),
    }
}

fn reply(kind: &'static str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(SERVER, HeaderValue::from_static("anon"));
    r
}

/// `name=N` from the query string, at most `max`; `400` otherwise.
fn query_number(req: &Request<Body<'_>>, name: &str, max: u64) -> Result<u64, HandlerError> {
    let q = req.uri().query().unwrap_or("");
    let v = q
        .split('&')
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .ok_or(StatusCode::BAD_REQUEST)?;
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(StatusCode::BAD_REQUEST.into()),
    }
}

/// Burns `d` of CPU, yielding to the worker's other fibers after every slice.
fn spin(d: Duration) {
    // Count only the time this request actually spun: while it is yielded, other
    // requests spin, so a wall-clock deadline would give each less than `d` of CPU.
    let mut spun = Duration::ZERO;
    loop {
        let slice = (d - spun).min(WORK_SLICE);
        let t = Instant::now();
        while t.elapsed() < slice {
            std::hint::spin_loop();
        }
        spun += slice;
        if spun >= d {
            return;
        }
        anon::fiber::yield_now();
    }
}
