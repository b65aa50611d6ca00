//! The accept path: one accept fiber per listener socket and worker, busy mode with
//! hysteresis, the "try again" reply to refused connections, and descriptor shortage.
//!
//! - A connection accepted while a bound is reached (open connections, live fibers) gets
//!   its engine's busy reply and is closed at once; no fiber is spawned for it.
//! - Busy mode has hysteresis: it starts when a level reaches its bound and ends only when
//!   the level falls below the low watermark (90 % of the bound), so the accept path does
//!   not flap at the edge. Entering and leaving are logged, at most once a second.
//! - `EMFILE`/`ENFILE`: first the oldest idle keep-alive connections of this worker are
//!   closed ([`SHED_BATCH`] at a time, `anon_http::server::shed_idle`) and the accept is
//!   retried at once: the new client is served, an idle one reconnects later. Each retry
//!   follows a shed, so this loop ends when the accept succeeds or nothing idle is left.
//!   With nothing idle, a spare descriptor (an open `/dev/null`) is closed to accept the
//!   waiting connection, which gets the busy reply and is closed; then the spare is
//!   reopened. When even that fails the fiber sleeps (10 ms, doubling up to 200 ms) before
//!   the next attempt: the accept loop never spins. Logged at most once a second.

use crate::engine::Engine;
use crate::metrics::{ListenerStats, Refusal};
use crate::ratelog::{ratelog, RateLimit};
use crate::server::Shared;
use anon_fiber::net::{TcpListener, TcpStream};
use anon_fiber::Awakened;
use anon_queue::{BusyChange, Hysteresis};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

static FD_LOG: RateLimit = RateLimit::new(Duration::from_secs(1));
static BUSY_LOG: RateLimit = RateLimit::new(Duration::from_secs(1));
static ERR_LOG: RateLimit = RateLimit::new(Duration::from_secs(1));

/// Idle keep-alive connections closed per `EMFILE`/`ENFILE` before accepting again: a few,
/// so that a burst of waiting clients does not cost one failed `accept` each, without
/// closing many idle clients for one new one.
const SHED_BATCH: usize = 4;

/// Bytes a lingering close reads and discards at most.
const LINGER_BYTES: usize = 64 * 1024;

/// A bound with busy-mode hysteresis.
#[derive(Debug)]
pub(crate) struct Gate {
    max: usize,
    /// `None` for bounds too small for a band (below 3).
    hyst: Option<Hysteresis>,
}

impl Gate {
    pub(crate) fn new(max: usize) -> Gate {
        let max = max.max(1);
        let high = max - 1;
        let low = (max - max / 10).min(max.saturating_sub(2));
        let hyst = (low >= 1 && low < high).then(|| Hysteresis::new(low, high));
        Gate { max, hyst }
    }

    /// Feeds the level before one more is admitted: whether to refuse, and whether busy
    /// mode started or ended now.
    pub(crate) fn check(&self, level: usize) -> (bool, BusyChange) {
        match &self.hyst {
            Some(h) => {
                let change = h.update(level);
                (h.is_busy() || level >= self.max, change)
            }
            None => (level >= self.max, BusyChange::Unchanged),
        }
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.hyst.as_ref().is_some_and(Hysteresis::is_busy)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

/// One listener as the accept fibers see it.
pub(crate) struct Bound {
    /// The address the listener is bound to (port 0 resolved).
    pub(crate) local: std::net::SocketAddr,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) stats: ListenerStats,
    /// Its sockets: one per worker (`SO_REUSEPORT`) or one shared.
    pub(crate) sockets: Vec<Arc<TcpListener>>,
}

/// Whether a refused connection should be counted as busy for `reason`: checks both
/// gates and logs busy-mode changes.
fn busy(shared: &Shared) -> Option<Refusal> {
    let conns: u64 = shared.listeners().iter().map(|l| l.engine.open()).sum();
    let (refuse_c, change_c) = shared
        .conn_gate
        .check(usize::try_from(conns).unwrap_or(usize::MAX));
    log_change(change_c, "open connections", conns, shared.conn_gate.max());
    let fibers = shared.handle().map_or(0, |h| h.live_fibers());
    let (refuse_f, change_f) = shared.fiber_gate.check(fibers);
    log_change(
        change_f,
        "live fibers",
        fibers as u64,
        shared.fiber_gate.max(),
    );
    if refuse_c {
        Some(Refusal::Connections)
    } else if refuse_f {
        Some(Refusal::Fibers)
    } else {
        None
    }
}

fn log_change(change: BusyChange, what: &str, level: u64, max: usize) {
    match change {
        BusyChange::Entered => ratelog!(
            BUSY_LOG,
            log::Level::Warn,
            "busy mode: {what} at {level} (bound {max}); new connections get \"try again\""
        ),
        BusyChange::Left => ratelog!(
            BUSY_LOG,
            log::Level::Info,
            "busy mode over: {what} down to {level}"
        ),
        BusyChange::Unchanged => {}
    }
}

/// The accept fiber of one listener socket on one worker.
pub(crate) fn accept_loop(shared: Arc<Shared>, bound: Arc<Bound>, socket: Arc<TcpListener>) {
    let mut spare = Spare::open();
    let mut backoff = Duration::from_millis(10);
    loop {
        match socket.accept() {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                bound.stats.accepted.inc();
                if shared.is_stopping() {
                    // Past the drain: nobody will serve it.
                    refuse(stream, bound.engine.busy_reply(), Duration::ZERO);
                    continue;
                }
                match busy(&shared) {
                    Some(reason) => {
                        bound.stats.refused[reason as usize].inc();
                        refuse(stream, bound.engine.busy_reply(), shared.timeouts.linger);
                    }
                    None => bound.engine.start(stream),
                }
            }
            Err(_) if shared.is_draining() => return,
            Err(e) if is_per_connection_error(&e) => {}
            Err(e) if is_fd_shortage(&e) => {
                let shed = if is_descriptor_limit(&e) {
                    anon_http::server::shed_idle(SHED_BATCH)
                } else {
                    0
                };
                if shed > 0 {
                    ratelog!(
                        FD_LOG,
                        log::Level::Warn,
                        "accept on {}: {e}; closed the {shed} oldest idle keep-alive \
                         connection(s) of this worker to accept new ones",
                        bound.local
                    );
                    continue;
                }
                ratelog!(
                    FD_LOG,
                    log::Level::Warn,
                    "accept on {}: {e}; refusing new connections until descriptors free up",
                    bound.local
                );
                if spare.refuse_one(&socket, &bound) {
                    bound.stats.accepted.inc();
                    bound.stats.refused[Refusal::Descriptors as usize].inc();
                } else {
                    anon_fiber::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
            }
            Err(e) => {
                ratelog!(
                    ERR_LOG,
                    log::Level::Error,
                    "accept on {}: {e}; retrying",
                    bound.local
                );
                anon_fiber::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Out of descriptors or socket memory (Linux numbering: EMFILE, ENFILE, ENOBUFS, ENOMEM).
fn is_fd_shortage(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::OutOfMemory || matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// Out of descriptors proper (EMFILE, ENFILE): closing idle connections helps.
fn is_descriptor_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23))
}

/// A descriptor held in reserve so that a connection can still be accepted (and told to
/// try again) when the process is out of descriptors.
struct Spare(Option<std::fs::File>);

impl Spare {
    fn open() -> Spare {
        Spare(std::fs::File::open("/dev/null").ok())
    }

    /// Frees the spare, accepts one connection, refuses it, takes the spare back.
    /// `false` if there was no spare or nothing could be accepted.
    fn refuse_one(&mut self, socket: &TcpListener, bound: &Bound) -> bool {
        if self.0.take().is_none() {
            *self = Spare::open();
            return false;
        }
        let accepted = socket2::SockRef::from(socket).accept();
        let done = match accepted {
            Ok((s, _)) => {
                let s = std::net::TcpStream::from(s);
                let _ = s.set_nonblocking(true);
                let mut budget = LINGER_BYTES;
                drain_now(&s, &mut budget);
                let _ = (&s).write(bound.engine.busy_reply());
                let _ = s.shutdown(Shutdown::Write);
                // Closed at once: the descriptor is needed back for the spare.
                true
            }
            Err(_) => false,
        };
        *self = Spare::open();
        done
    }
}

/// Sends `reply` to a refused connection without waiting, then closes it: our half at
/// once, the rest after a lingering read (without a fiber, at most `linger`) so that a
/// reset does not destroy the reply while the client is still sending.
pub(crate) fn refuse(stream: TcpStream, reply: &[u8], linger: Duration) {
    let mut budget = LINGER_BYTES;
    {
        let sock = socket2::SockRef::from(&stream);
        drain_now(&*sock, &mut budget);
        let _ = (&*sock).write(reply);
    }
    let _ = stream.shutdown(Shutdown::Write);
    if linger.is_zero() || anon_fiber::worker_index().is_none() {
        return;
    }
    if let Some(deadline) = Instant::now().checked_add(linger) {
        linger_until(stream, deadline, budget);
    }
}

fn linger_until(stream: TcpStream, deadline: Instant, mut budget: usize) {
    {
        let sock = socket2::SockRef::from(&stream);
        if !drain_now(&*sock, &mut budget) {
            return;
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    let _ = stream.on_readable(Some(left), move |s, why| {
        if why == Awakened::Readable {
            linger_until(s, deadline, budget);
        }
    });
}

/// Reads and discards what is readable now, within `budget`: `true` if the socket may
/// have more later (it would block), `false` at end of stream, error or budget spent.
fn drain_now(mut sock: impl Read, budget: &mut usize) -> bool {
    let mut tmp = [0u8; 2048];
    loop {
        match sock.read(&mut tmp) {
            Ok(0) => return false,
            Ok(n) if n >= *budget => return false,
            Ok(n) => *budget -= n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_refuse_at_the_bound_and_leave_busy_mode_below_the_band() {
        let g = Gate::new(10);
        assert_eq!(g.check(8), (false, BusyChange::Unchanged));
        assert_eq!(g.check(10), (true, BusyChange::Entered));
        // Inside the band busy mode holds even below the bound.
        assert_eq!(g.check(9), (true, BusyChange::Unchanged));
        assert_eq!(g.check(8), (true, BusyChange::Unchanged));
        assert_eq!(g.check(7), (false, BusyChange::Left));
        // Tiny bounds have no band but still refuse at the bound.
        let g = Gate::new(1);
        assert!(!g.check(0).0);
        assert!(g.check(1).0);
        assert!(!g.check(0).0);
    }
}
