//! Hold mode: open many keep-alive connections, make one request on each, then keep them
//! idle (for measuring a server's memory per idle connection).

use crate::config::MAX_CONNECTIONS;
use crate::http::{parse_response, request_bytes};
use crate::run::{connect_nonblocking, connect_result};
use anon_reactor::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What to hold.
#[derive(Debug, Clone)]
pub struct HoldConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// Request made once on each connection (`GET`), e.g. `/plaintext`.
    pub path: String,
    /// Connections to establish (at most [`MAX_CONNECTIONS`]).
    pub count: usize,
    /// Local addresses to connect from, used in turn (e.g. 127.0.0.2, 127.0.0.3); empty =
    /// let the kernel choose.
    pub sources: Vec<IpAddr>,
    /// Most connections being set up at once (connect + first request).
    pub max_in_setup: usize,
    /// Give up setting up after this long.
    pub deadline: Duration,
}

/// The held connections and how the setup went.
#[derive(Debug)]
pub struct Held {
    /// Established connections whose first request got a complete 2xx answer; dropping
    /// them closes them.
    pub streams: Vec<TcpStream>,
    /// Connections that failed (refused, reset, bad or non-2xx answer) or were not set up
    /// before the deadline.
    pub failed: usize,
    /// Time the setup took.
    pub elapsed: Duration,
    /// The last error seen, if any.
    pub last_error: Option<String>,
}

impl Held {
    /// The driver-process protocol shared by `anon-loadgen hold` and the `conns` bench:
    /// prints `held N failed F setup_ms T` on stdout (the last error, if any, on stderr
    /// after `who`), then keeps the connections until stdin reaches end of file or `keep`
    /// has passed, and closes them.
    pub fn report_and_keep(self, who: &str, keep: Duration) {
        println!(
            "held {} failed {} setup_ms {}",
            self.streams.len(),
            self.failed,
            self.elapsed.as_millis()
        );
        if let Some(e) = &self.last_error {
            eprintln!("{who}: last error: {e}");
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            while matches!(io::stdin().read(&mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(keep);
        drop(self);
    }
}

/// A hold request outside the bounds.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// Zero or more than [`MAX_CONNECTIONS`] connections.
    #[error("count must be 1..={MAX_CONNECTIONS}, got {0}")]
    Count(usize),
    /// epoll failed.
    #[error("reactor: {0}")]
    Reactor(io::Error),
}

struct Setup {
    stream: TcpStream,
    connected: bool,
    written: usize,
    buf: Vec<u8>,
}

/// Opens `cfg.count` connections, one request each, and returns them idle.
pub fn hold(cfg: &HoldConfig) -> Result<Held, HoldError> {
    if cfg.count == 0 || cfg.count > MAX_CONNECTIONS {
        return Err(HoldError::Count(cfg.count));
    }
    let start = Instant::now();
    let deadline = start + cfg.deadline;
    let poll = Poll::new().map_err(HoldError::Reactor)?;
    let mut poll = poll;
    let mut events = Events::with_capacity(1024);
    let request = request_bytes(&cfg.path, &cfg.addr.to_string(), false);
    let width = cfg.max_in_setup.clamp(1, 4096);
    let mut slots: Vec<Option<Setup>> = (0..width).map(|_| None).collect();
    let mut free: Vec<usize> = (0..width).rev().collect();
    let mut held = Vec::with_capacity(cfg.count);
    let mut failed = 0usize;
    let mut started = 0usize;
    let mut last_error = None;
    let mut in_setup = 0usize;
    while held.len() + failed < cfg.count && Instant::now() < deadline {
        // Start new connects while there is room.
        while started < cfg.count {
            let Some(slot) = free.pop() else { break };
            let source =
                (!cfg.sources.is_empty()).then(|| cfg.sources[started % cfg.sources.len()]);
            started += 1;
            match connect_nonblocking(cfg.addr, source).and_then(|s| {
                poll.registry()
                    .register(
                        s.as_raw_fd(),
                        Token(slot),
                        Interest::READABLE.add(Interest::WRITABLE),
                    )
                    .map(|()| s)
            }) {
                Ok(stream) => {
                    slots[slot] = Some(Setup {
                        stream,
                        connected: false,
                        written: 0,
                        buf: Vec::new(),
                    });
                    in_setup += 1;
                }
                Err(e) => {
                    failed += 1;
                    last_error = Some(e.to_string());
                    free.push(slot);
                }
            }
        }
        if in_setup == 0 {
            continue;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .map_err(HoldError::Reactor)?;
        for ev in events.iter() {
            let slot = ev.token().0;
            let Some(s) = slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            match step(s, &request) {
                Ok(false) => {}
                Ok(true) => {
                    let s = slots[slot].take().expect("slot in use");
                    let _ = poll.registry().deregister(s.stream.as_raw_fd());
                    held.push(s.stream);
                    free.push(slot);
                    in_setup -= 1;
                }
                Err(e) => {
                    let s = slots[slot].take().expect("slot in use");
                    let _ = poll.registry().deregister(s.stream.as_raw_fd());
                    last_error = Some(e.to_string());
                    failed += 1;
                    free.push(slot);
                    in_setup -= 1;
                }
            }
        }
    }
    failed += cfg.count - held.len() - failed;
    Ok(Held {
        streams: held,
        failed,
        elapsed: start.elapsed(),
        last_error,
    })
}

/// Advances one connection's setup: `Ok(true)` when its answer is complete.
fn step(s: &mut Setup, request: &[u8]) -> io::Result<bool> {
    if !s.connected {
        if !connect_result(&s.stream)? {
            return Ok(false);
        }
        s.connected = true;
    }
    while s.written < request.len() {
        match s.stream.write(&request[s.written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => s.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut chunk = [0u8; 1024];
    loop {
        match s.stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                s.buf.extend_from_slice(&chunk[..n]);
                match parse_response(&s.buf, 64 * 1024) {
                    Ok(Some(r)) if (200..300).contains(&r.status) && !r.close => {
                        s.buf = Vec::new();
                        return Ok(true);
                    }
                    Ok(Some(r)) => {
                        return Err(io::Error::other(format!(
                            "answer {} (close: {}) to the first request",
                            r.status, r.close
                        )))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
