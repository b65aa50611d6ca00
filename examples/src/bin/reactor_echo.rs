//! `reactor_echo`: a single-threaded TCP echo server on the raw `anon-reactor`.
//!
//! ```text
//! cargo xtask run reactor_echo -- --port 7007
//! printf 'hello\n' | nc -q1 127.0.0.1 7007
//! ```
//!
//! Flags: `--addr IP` (default 127.0.0.1), `--port N` (default 7007; 0 picks a free port),
//! `--max-conns N` (default 1024). SIGINT or SIGTERM close every connection and exit 0.
//!
//! It shows the reactor's contract in ~200 lines: connections live in a `Slab` whose keys
//! are the tokens; every socket is registered once, edge-triggered, for reading and writing;
//! on each event the connection is driven until `WouldBlock`. Each connection owns a fixed
//! 4 KiB buffer: when the peer does not read its echo, the server stops reading from it
//! (TCP backpressure) instead of buffering more. A connection is served at most
//! `BUDGET` rounds per event and then requeued, so one fast client cannot starve the rest.
//! When `--max-conns` connections are open, new ones are accepted and closed at once.

#![forbid(unsafe_code)]

use anon_reactor::{Events, Interest, Poll, Signal, Signals, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

const LISTENER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Per-connection echo buffer.
const BUF: usize = 4096;
/// Read/write rounds per connection per turn before it is requeued.
const BUDGET: usize = 16;
/// Connections accepted per listener turn before other work runs.
const ACCEPT_BUDGET: usize = 64;

struct Config {
    addr: IpAddr,
    port: u16,
    max_conns: usize,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut cfg = Config {
        addr: IpAddr::from([127, 0, 0, 1]),
        port: 7007,
        max_conns: 1024,
    };
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                cfg.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--port" => {
                let v = value("--port")?;
                cfg.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "--max-conns" => {
                let v = value("--max-conns")?;
                cfg.max_conns = v.parse().map_err(|e| format!("--max-conns {v}: {e}"))?;
                if cfg.max_conns == 0 || cfg.max_conns >= SIGNALS.0 {
                    return Err(format!("--max-conns {v}: out of range"));
                }
            }
            "-h" | "--help" => {
                return Err("usage: reactor_echo [--addr IP] [--port N] [--max-conns N]".into())
            }
            other => return Err(format!("unknown flag {other} (try --help)")),
        }
    }
    Ok(cfg)
}

/// One client: its socket and the bytes read but not yet echoed back (`buf[start..end]`).
struct Conn {
    stream: TcpStream,
    buf: Box<[u8; BUF]>,
    start: usize,
    end: usize,
    /// The peer closed its sending side: finish echoing, then close.
    eof: bool,
}

/// What to do with a connection after driving it.
enum Next {
    /// Blocked on the socket: wait for the next event.
    Wait,
    /// Budget used up with work left: run again soon.
    Requeue,
    /// Done or failed: deregister and drop.
    Close,
}

impl Conn {
    /// Echoes until the socket would block, the budget runs out, or the connection ends.
    fn drive(&mut self) -> Next {
        for _ in 0..BUDGET {
            // Flush what we hold.
            while self.start < self.end {
                match self.stream.write(&self.buf[self.start..self.end]) {
                    Ok(0) => return Next::Close,
                    Ok(n) => self.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::Close,
                }
            }
            self.start = 0;
            self.end = 0;
            if self.eof {
                return Next::Close;
            }
            // Buffer empty: read more.
            match self.stream.read(&mut self.buf[..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        Next::Requeue
    }
}

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reactor_echo: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reactor_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cfg: &Config) -> io::Result<()> {
    // First, while this is the only thread: block the signals so they become events.
    let signals = Signals::new(&[Signal::Int, Signal::Term])?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let listener = TcpListener::bind(SocketAddr::new(cfg.addr, cfg.port))?;
    listener.set_nonblocking(true)?;
    poll.registry()
        .register(listener.as_raw_fd(), LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(signals.as_raw_fd(), SIGNALS, Interest::READABLE)?;
    println!("reactor_echo listening on {}", listener.local_addr()?);

    let mut conns: Slab<Conn> = Slab::with_capacity(cfg.max_conns);
    // Tokens with work left over from their budget (listener included).
    let mut requeued: Vec<Token> = Vec::new();
    let mut turn: Vec<Token> = Vec::new();
    loop {
        let timeout = if requeued.is_empty() {
            None
        } else {
            Some(Duration::ZERO)
        };
        poll.poll(&mut events, timeout)?;
        turn.clear();
        turn.append(&mut requeued);
        turn.extend(events.iter().map(|e| e.token()));
        for &token in &turn {
            match token {
                SIGNALS => {
                    // Only SIGINT and SIGTERM are asked for: either one ends the server.
                    if let Some(info) = signals.receive()? {
                        println!(
                            "reactor_echo: got {:?} from pid {}, shutting down ({} connections)",
                            info.signal,
                            info.pid,
                            conns.len()
                        );
                        for conn in conns.drain() {
                            let _ = poll.registry().deregister(conn.stream.as_raw_fd());
                        }
                        return Ok(());
                    }
                }
                LISTENER => {
                    if accept_some(&listener, &poll, &mut conns, cfg.max_conns)? {
                        requeued.push(LISTENER);
                    }
                }
                Token(key) => {
                    // A stale token (connection closed earlier in this turn) is skipped.
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    match conn.drive() {
                        Next::Wait => {}
                        Next::Requeue => {
                            if !requeued.contains(&token) {
                                requeued.push(token);
                            }
                        }
                        Next::Close => {
                            let conn = conns.remove(key);
                            poll.registry().deregister(conn.stream.as_raw_fd())?;
                        }
                    }
                }
            }
        }
    }
}

/// Accepts up to `ACCEPT_BUDGET` connections; returns whether more may be waiting.
fn accept_some(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut Slab<Conn>,
    max_conns: usize,
) -> io::Result<bool> {
    for _ in 0..ACCEPT_BUDGET {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Per-connection failures (reset before accept, fd limit) must not stop the
            // server; the listener stays registered and the loop goes on.
            Err(e) => {
                eprintln!("reactor_echo: accept: {e}");
                return Ok(false);
            }
        };
        if conns.len() >= max_conns {
            // Full: refuse at once rather than queue without bound.
            drop(stream);
            continue;
        }
        let entry = conns.vacant_entry();
        let token = Token(entry.key());
        let setup = stream
            .set_nonblocking(true)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| {
                let both = Interest::READABLE | Interest::WRITABLE;
                poll.registry().register(stream.as_raw_fd(), token, both)
            });
        if let Err(e) = setup {
            eprintln!("reactor_echo: connection setup: {e}");
            continue;
        }
        entry.insert(Conn {
            stream,
            buf: Box::new([0; BUF]),
            start: 0,
            end: 0,
            eof: false,
        });
    }
    Ok(true)
}
