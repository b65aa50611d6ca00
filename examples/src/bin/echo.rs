//! `echo`: a raw TCP echo server on fibers, with a busy banner.
//!
//! ```text
//! cargo xtask run echo -- --port 7008 --max-conns 100
//! printf 'hello\n' | nc -q1 127.0.0.1 7008
//! ```
//!
//! Each connection runs a plain blocking loop (read, write back) on its own fiber; reads
//! and writes park the fiber, not the thread. Past `--max-conns` open connections (busy
//! mode, with hysteresis) a new connection gets the banner (`--banner`, default
//! `-TRYAGAIN server busy`) and is closed. A connection silent for `--idle-timeout-ms`
//! is closed. SIGTERM or SIGINT stop accepting, wait for the open connections (at most
//! `--drain-timeout-ms`) and exit 0.

#![forbid(unsafe_code)]

use anon::fiber::net::TcpStream;
use anon::{Limits, Server, Tcp, Timeouts};
use anon_examples::{init_logging, FlagSpec, Flags};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

const ABOUT: &str = "echo: a raw TCP echo server on fibers, with a busy banner";

const FLAGS: &[FlagSpec] = &[
    (
        "--addr",
        Some("IP"),
        "address to listen on (default 127.0.0.1)",
    ),
    (
        "--port",
        Some("N"),
        "port (default 7008; 0 picks a free one)",
    ),
    (
        "--workers",
        Some("N"),
        "worker threads (default: one per core)",
    ),
    (
        "--max-conns",
        Some("N"),
        "open connections; past it the banner (default 10000)",
    ),
    (
        "--max-fibers",
        Some("N"),
        "live fibers (one per connection)",
    ),
    (
        "--banner",
        Some("TEXT"),
        "what a refused connection is told (default -TRYAGAIN server busy)",
    ),
    (
        "--idle-timeout-ms",
        Some("N"),
        "close a connection silent this long (default 15000)",
    ),
    (
        "--drain-timeout-ms",
        Some("N"),
        "how long a drain waits for connections (default 2000)",
    ),
    (
        "--admin-port",
        Some("N"),
        "serve /metrics and /fibers on this port",
    ),
];

fn main() -> ExitCode {
    init_logging();
    match run(std::env::args().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> Result<(), String> {
    let Some(f) = Flags::parse("echo", ABOUT, FLAGS, args)? else {
        return Ok(());
    };
    let addr: std::net::IpAddr = f.get("--addr", std::net::IpAddr::from([127, 0, 0, 1]))?;
    let port: u16 = f.get("--port", 7008)?;
    let max_conns: usize = f.get("--max-conns", 10_000)?;
    if max_conns == 0 {
        return Err("--max-conns must be at least 1".into());
    }
    let banner = f.get("--banner", "-TRYAGAIN server busy".to_string())? + "\r\n";
    let idle: u64 = f.get("--idle-timeout-ms", 15_000)?;
    let drain: u64 = f.get("--drain-timeout-ms", 2_000)?;
    if idle == 0 || drain == 0 {
        return Err("timeouts must be at least 1 ms".into());
    }
    let mut server = Server::new()
        .listen(
            std::net::SocketAddr::new(addr, port).to_string(),
            Tcp::new(echo).busy_banner(banner.into_bytes()),
        )
        .limits(Limits {
            max_connections: max_conns,
            max_fibers: f.opt("--max-fibers")?,
            ..Limits::default()
        })
        .timeouts(Timeouts {
            idle: Duration::from_millis(idle),
            drain: Duration::from_millis(drain),
            ..Timeouts::default()
        });
    if let Some(n) = f.opt::<usize>("--workers")? {
        server = server.workers(n.max(1));
    }
    if let Some(p) = f.opt::<u16>("--admin-port")? {
        server = server.admin(std::net::SocketAddr::new(addr, p).to_string());
    }
    let running = server.start().map_err(|e| e.to_string())?;
    println!("echo listening on {}", running.local_addrs()[0]);
    if let Some(a) = running.admin_addr() {
        println!("echo admin on {a}");
    }
    running.wait().map_err(|e| e.to_string())?;
    Ok(())
}

/// One connection: echo until end of stream, an error or the idle timeout.
fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
