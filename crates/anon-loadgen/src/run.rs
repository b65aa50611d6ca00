//! The engine: one thread, non-blocking sockets on an `anon-reactor` epoll instance.
//!
//! Each loop turn: move the requests that fell due into the generator's queue (FIFO by
//! intended time), hand queued requests to free connections, expire timeouts, then poll.
//! While requests are outstanding or the next arrival is less than 20 ms away the poll
//! does not sleep (`poll` rounds its timeout up to whole milliseconds, and a halted
//! virtual CPU can take milliseconds to wake), so sends leave within microseconds of their
//! intended time and answers are stamped when they arrive. The price: the generator keeps
//! its core busy during a run — give it a core of its own. Its CPU time thus says nothing
//! about its headroom; the report's `GeneratorLoad` counts only the turns that did work.

use crate::config::{Config, ConfigError, ConnMode, MAX_RESPONSE_BYTES};
use crate::http::{parse_response, request_bytes};
use crate::mix::Picker;
use crate::report::{
    Bucket, Counts, ErrorCounts, ErrorKind, GeneratorLoad, Latencies, Outcome, PathStats, Report,
    Summary, Verdict, BUCKET,
};
use crate::schedule::Schedule;
use anon_reactor::{Events, Interest, Poll, Token};
use hdrhistogram::Histogram;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is outside the bounds.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keep-alive pool could not be opened before the schedule started.
    #[error(
        "could not open the connection pool to {addr}: {opened} of {wanted} connected ({cause})"
    )]
    Pool {
        /// Target.
        addr: SocketAddr,
        /// Connections established.
        opened: usize,
        /// Pool size.
        wanted: usize,
        /// Last error seen, or "timed out".
        cause: String,
    },
    /// epoll itself failed.
    #[error("reactor: {0}")]
    Reactor(io::Error),
}

/// Poll without sleeping when the next request is due within this (see `Engine::run`).
const SPIN_WINDOW: Duration = Duration::from_millis(20);
/// How often busy connections are checked for timeouts.
const SWEEP: Duration = Duration::from_millis(5);
/// How long the keep-alive pool may take to open.
const POOL_DEADLINE: Duration = Duration::from_secs(10);
/// Read chunk.
const READ_CHUNK: usize = 4096;
/// Highest latency a histogram records (longer values are clamped), µs.
const HIST_MAX_US: u64 = 3_600_000_000;

/// One attempt at a request.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// Intended send time of the first attempt: latency is measured from here.
    origin: Instant,
    /// Intended send time of this attempt (lag and deadline are measured from here).
    intended: Instant,
    /// No complete answer by then: timeout.
    deadline: Instant,
    /// Retries still allowed after this attempt.
    retries_left: u32,
    /// Index of its target in `Engine::requests` (the mix's order).
    path: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No socket.
    Down,
    /// Non-blocking connect in progress.
    Connecting,
    /// Connected, no request.
    Idle,
    /// Connected, request written (or being written), answer awaited.
    Busy,
}

#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    state: State,
    req: Option<Attempt>,
    /// Bytes of the request written so far.
    written: usize,
    buf: Vec<u8>,
}

/// Runs the schedule of `cfg` and returns what it measured. Blocks for about the length of
/// the schedule plus the timeout.
pub fn run(cfg: &Config) -> Result<Report, RunError> {
    run_with(cfg, |_| {})
}

/// Like [`run`], and calls `on_start` with the instant the schedule starts (after the
/// keep-alive pool is open): offsets in the report's time series count from it. Use it
/// to time an event (a server stall, a restart) against the schedule.
pub fn run_with(cfg: &Config, on_start: impl FnOnce(Instant)) -> Result<Report, RunError> {
    cfg.validate()?;
    Engine::new(cfg)?.run(on_start)
}

struct Engine<'a> {
    cfg: &'a Config,
    poll: Poll,
    conns: Vec<Conn>,
    idle: Vec<usize>,
    down: Vec<usize>,
    queue: VecDeque<Attempt>,
    /// Request bytes per target of the mix (one without a mix).
    requests: Vec<Vec<u8>>,
    picker: Picker,
    start: Instant,
    // Measurements.
    scheduled: u64,
    retries: u64,
    counts: Counts,
    errors: ErrorCounts,
    hists: Vec<Histogram<u64>>,
    send_lag: Histogram<u64>,
    late: u64,
    generator_late: u64,
    unsent: u64,
    connects: u64,
    success_in_slo: u64,
    series: Vec<Bucket>,
    series_hist: Vec<Option<Histogram<u64>>>,
    last_outcome: Instant,
    /// Per target: outcome counts, successes within the SLO, success and 503 latencies.
    path_counts: Vec<Counts>,
    path_in_slo: Vec<u64>,
    path_hists: Vec<[Histogram<u64>; 2]>,
}

fn hist(sigfig: u8) -> Histogram<u64> {
    // Bounds are constants known to be valid.
    Histogram::new_with_bounds(1, HIST_MAX_US, sigfig).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HIST_MAX_US)
}

fn error_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
        io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
        _ => ErrorKind::Io,
    }
}

/// Starts a non-blocking connect to `addr`, optionally from `source` (port chosen by the
/// kernel). `Ok` means connected or in progress.
pub(crate) fn connect_nonblocking(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        sock.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    match sock.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from(sock))
}

/// Linux's EINPROGRESS (the one errno this crate needs; it has no libc dependency).
const EINPROGRESS: i32 = 115;

/// After a writable event on a connecting socket: `Ok(true)` connected, `Ok(false)` still
/// in progress, `Err` the connect failed.
pub(crate) fn connect_result(s: &TcpStream) -> io::Result<bool> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

impl<'a> Engine<'a> {
    fn new(cfg: &'a Config) -> Result<Engine<'a>, RunError> {
        let poll = Poll::new().map_err(RunError::Reactor)?;
        let n = cfg.connections;
        let conns = (0..n)
            .map(|_| Conn {
                stream: None,
                state: State::Down,
                req: None,
                written: 0,
                buf: Vec::new(),
            })
            .collect();
        // Every outcome lands in a bucket of its origin, at most timeout × attempts late.
        let horizon = cfg.schedule_len()
            + cfg.timeout * (cfg.retries.saturating_add(1)).min(1000)
            + Duration::from_secs(1);
        let buckets = (horizon.as_millis() / BUCKET.as_millis()) as usize + 1;
        let series = (0..buckets)
            .map(|i| Bucket {
                t_ms: i as u64 * BUCKET.as_millis() as u64,
                ..Bucket::default()
            })
            .collect();
        let now = Instant::now();
        let paths = cfg.paths();
        let weights: Vec<u32> = paths.iter().map(|p| p.weight).collect();
        let host = cfg.addr.to_string();
        let close = cfg.mode == ConnMode::PerRequest;
        Ok(Engine {
            cfg,
            poll,
            conns,
            idle: Vec::with_capacity(n),
            down: (0..n).rev().collect(),
            queue: VecDeque::new(),
            requests: paths
                .iter()
                .map(|p| request_bytes(&p.path, &host, close))
                .collect(),
            picker: Picker::new(&weights),
            start: now,
            scheduled: 0,
            retries: 0,
            counts: Counts::default(),
            errors: ErrorCounts::default(),
            hists: (0..Outcome::ALL.len()).map(|_| hist(3)).collect(),
            send_lag: hist(3),
            late: 0,
            generator_late: 0,
            unsent: 0,
            connects: 0,
            success_in_slo: 0,
            series,
            series_hist: vec![None; buckets],
            last_outcome: now,
            path_counts: vec![Counts::default(); paths.len()],
            path_in_slo: vec![0; paths.len()],
            path_hists: paths.iter().map(|_| [hist(3), hist(3)]).collect(),
        })
    }

    fn bucket_of(&self, t: Instant) -> usize {
        let i = (t.saturating_duration_since(self.start).as_millis() / BUCKET.as_millis()) as usize;
        i.min(self.series.len() - 1)
    }

    /// Opens the keep-alive pool before the schedule starts.
    fn open_pool(&mut self) -> Result<(), RunError> {
        let deadline = Instant::now() + POOL_DEADLINE;
        let mut events = Events::with_capacity(1024);
        let mut last_err = String::from("timed out");
        for i in 0..self.conns.len() {
            if let Err(e) = self.open(i) {
                last_err = e.to_string();
            }
        }
        self.down.clear();
        loop {
            let open = self.conns.iter().filter(|c| c.state == State::Idle).count();
            let pending = self
                .conns
                .iter()
                .filter(|c| c.state == State::Connecting)
                .count();
            if pending == 0 || Instant::now() >= deadline {
                if open == self.conns.len() {
                    self.idle = (0..self.conns.len()).rev().collect();
                    return Ok(());
                }
                return Err(RunError::Pool {
                    addr: self.cfg.addr,
                    opened: open,
                    wanted: self.conns.len(),
                    cause: last_err,
                });
            }
            self.poll
                .poll(&mut events, Some(Duration::from_millis(10)))
                .map_err(RunError::Reactor)?;
            for ev in events.iter() {
                let i = ev.token().0;
                let c = &mut self.conns[i];
                if c.state != State::Connecting {
                    continue;
                }
                let Some(s) = c.stream.as_ref() else { continue };
                match connect_result(s) {
                    Ok(true) => c.state = State::Idle,
                    Ok(false) => {}
                    Err(e) => {
                        last_err = e.to_string();
                        self.close(i);
                    }
                }
            }
        }
    }

    /// Starts connecting connection `i` (which must be down).
    fn open(&mut self, i: usize) -> io::Result<()> {
        let s = connect_nonblocking(self.cfg.addr, None)?;
        self.poll.registry().register(
            s.as_raw_fd(),
            Token(i),
            Interest::READABLE.add(Interest::WRITABLE),
        )?;
        self.connects += 1;
        let c = &mut self.conns[i];
        c.stream = Some(s);
        c.state = State::Connecting;
        c.written = 0;
        c.buf.clear();
        Ok(())
    }

    /// Closes connection `i` (deregistering first) and marks it down; does not touch its
    /// request nor the free lists.
    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(s) = c.stream.take() {
            let _ = self.poll.registry().deregister(s.as_raw_fd());
        }
        c.state = State::Down;
        c.written = 0;
        c.buf = Vec::new();
    }

    fn run(mut self, on_start: impl FnOnce(Instant)) -> Result<Report, RunError> {
        if self.cfg.mode == ConnMode::KeepAlive {
            self.open_pool()?;
        }
        let mut schedule = Schedule::new(&self.cfg.phases, self.cfg.arrival, self.cfg.seed);
        let mut events = Events::with_capacity(1024);
        let cpu_at_start = thread_cpu();
        self.start = Instant::now();
        self.last_outcome = self.start;
        on_start(self.start);
        // The generator's own load over the schedule: the time of the loop's idle turns
        // (see `GeneratorLoad`), until the schedule's end.
        let window_end = self.start + self.cfg.schedule_len();
        let mut idle = Duration::ZERO;
        let mut load: Option<GeneratorLoad> = None;
        let at = |start: Instant, off: f64| start + Duration::from_secs_f64(off);
        let mut next = schedule.next_offset().map(|o| at(self.start, o));
        let drain_deadline = self.start
            + self.cfg.schedule_len()
            + self.cfg.timeout * (self.cfg.retries.saturating_add(1)).min(1000)
            + Duration::from_millis(500);
        let mut next_sweep = self.start + SWEEP;
        loop {
            let now = Instant::now();
            if load.is_none() && now >= window_end {
                load = Some(generator_load(self.start, now, idle, cpu_at_start));
            }
            let before = (self.scheduled, self.queue.len());
            // 1. Requests that fell due join the queue.
            while let Some(t) = next {
                if t > now || self.scheduled + self.retries >= self.cfg.max_requests {
                    if self.scheduled + self.retries >= self.cfg.max_requests {
                        next = None;
                    }
                    break;
                }
                if now - t > self.cfg.lag_threshold {
                    self.generator_late += 1;
                }
                self.scheduled += 1;
                let b = self.bucket_of(t);
                self.series[b].sent += 1;
                self.queue.push_back(Attempt {
                    origin: t,
                    intended: t,
                    deadline: t + self.cfg.timeout,
                    retries_left: self.cfg.retries,
                    path: self.picker.next(),
                });
                next = schedule.next_offset().map(|o| at(self.start, o));
            }
            // 2. Queued requests go to free connections.
            self.dispatch(now);
            // 3. Timeouts.
            let swept = now >= next_sweep;
            if swept {
                self.sweep(now);
                next_sweep = now + SWEEP;
            }
            let outstanding = !self.queue.is_empty() || self.conns.iter().any(|c| c.req.is_some());
            if next.is_none() && !outstanding {
                break;
            }
            if now >= drain_deadline {
                self.expire_all(now);
                break;
            }
            // 4. Wait for I/O. While requests are outstanding or the next one is due
            //    within SPIN_WINDOW, poll without sleeping: a sleeping (virtual) CPU can
            //    take milliseconds to wake, which would make sends late and stamp answers
            //    late. Otherwise sleep, not past the next arrival nor the next sweep.
            let mut wake = next_sweep;
            if let Some(t) = next {
                wake = wake.min(t);
            }
            let next_due = next.map_or(Duration::MAX, |t| t.saturating_duration_since(now));
            let wait = wake.saturating_duration_since(now);
            let timeout =
                if outstanding || next_due < SPIN_WINDOW || wait < Duration::from_millis(2) {
                    Duration::ZERO
                } else {
                    wait - Duration::from_millis(1)
                };
            let slept_from = (!timeout.is_zero()).then(Instant::now);
            self.poll
                .poll(&mut events, Some(timeout))
                .map_err(RunError::Reactor)?;
            let top = now;
            let now = Instant::now();
            if load.is_none() {
                if events.is_empty() && !swept && (self.scheduled, self.queue.len()) == before {
                    // A turn that found nothing to do.
                    idle += now.saturating_duration_since(top);
                } else if let Some(t) = slept_from {
                    idle += now.saturating_duration_since(t);
                }
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if i < self.conns.len() {
                    self.on_event(
                        i,
                        ev.is_writable(),
                        ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        now,
                    );
                }
            }
        }
        let load =
            load.unwrap_or_else(|| generator_load(self.start, Instant::now(), idle, cpu_at_start));
        for i in 0..self.conns.len() {
            self.close(i);
        }
        Ok(self.report(load))
    }

    /// Hands queued requests to free connections (idle first, then reconnecting).
    fn dispatch(&mut self, now: Instant) {
        while !self.queue.is_empty() {
            let i = loop {
                match self.idle.pop() {
                    Some(i) if self.conns[i].state == State::Idle => break Some(i),
                    Some(i) => {
                        if self.conns[i].state == State::Down && self.conns[i].req.is_none() {
                            self.down.push(i);
                        }
                    }
                    None => break self.down.pop(),
                }
            };
            let Some(i) = i else { return };
            let Some(a) = self.queue.pop_front() else {
                return;
            };
            self.conns[i].req = Some(a);
            if self.conns[i].state == State::Down {
                if let Err(e) = self.open(i) {
                    self.conns[i].req = None;
                    self.close(i);
                    self.down.push(i);
                    self.finish(a, Outcome::Error, Some(error_kind(&e)), now);
                }
                // The request is written once the connect completes.
            } else {
                self.conns[i].state = State::Busy;
                self.write(i, now);
            }
        }
    }

    /// Length of the request bytes of attempt `a`.
    fn request_len(&self, a: &Attempt) -> usize {
        self.requests[a.path].len()
    }

    /// Length of the request on connection `i` (0 without one).
    fn conn_request_len(&self, i: usize) -> usize {
        self.conns[i].req.map_or(0, |a| self.request_len(&a))
    }

    /// Writes (the rest of) the request on connection `i`.
    fn write(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        let Some(s) = c.stream.as_mut() else { return };
        let Some(request) = c.req.map(|a| &self.requests[a.path]) else {
            return;
        };
        while c.written < request.len() {
            match s.write(&request[c.written..]) {
                Ok(0) => {
                    self.fail(i, ErrorKind::Closed, now);
                    return;
                }
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, error_kind(&e), now);
                    return;
                }
            }
        }
        if let Some(a) = c.req {
            let lag = now.saturating_duration_since(a.intended);
            let _ = self.send_lag.record(micros(lag));
            if lag > self.cfg.lag_threshold {
                self.late += 1;
            }
        }
    }

    /// The request on connection `i` failed: close the connection, record, free it.
    fn fail(&mut self, i: usize, kind: ErrorKind, now: Instant) {
        let req = self.conns[i].req.take();
        self.close(i);
        self.down.push(i);
        if let Some(a) = req {
            self.finish(a, Outcome::Error, Some(kind), now);
        }
    }

    fn on_event(&mut self, i: usize, writable: bool, readable: bool, now: Instant) {
        match self.conns[i].state {
            State::Down | State::Idle if !readable => {}
            State::Connecting => {
                let Some(s) = self.conns[i].stream.as_ref() else {
                    return;
                };
                match connect_result(s) {
                    Ok(true) => {
                        if self.conns[i].req.is_some() {
                            self.conns[i].state = State::Busy;
                            self.write(i, now);
                        } else {
                            self.conns[i].state = State::Idle;
                            self.idle.push(i);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let k = error_kind(&e);
                        self.fail(i, k, now);
                    }
                }
            }
            State::Busy if writable && self.conns[i].written < self.conn_request_len(i) => {
                self.write(i, now);
                if readable {
                    self.read(i, now);
                }
            }
            _ => self.read(i, now),
        }
    }

    /// Drains connection `i` and completes its request if the answer is whole.
    fn read(&mut self, i: usize, now: Instant) {
        let mut eof = false;
        loop {
            let c = &mut self.conns[i];
            let Some(s) = c.stream.as_mut() else { return };
            let len = c.buf.len();
            if len >= MAX_RESPONSE_BYTES {
                break;
            }
            c.buf.resize(len + READ_CHUNK, 0);
            match s.read(&mut c.buf[len..]) {
                Ok(0) => {
                    c.buf.truncate(len);
                    eof = true;
                    break;
                }
                Ok(n) => c.buf.truncate(len + n),
                Err(e) => {
                    c.buf.truncate(len);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => {}
                        _ => {
                            let k = error_kind(&e);
                            if self.conns[i].req.is_some() {
                                self.fail(i, k, now);
                            } else {
                                self.close(i);
                                self.down.push(i);
                            }
                            return;
                        }
                    }
                }
            }
        }
        let c = &mut self.conns[i];
        let Some(a) = c.req else {
            // Bytes or a close on a connection with no request: drop the connection.
            if eof || !c.buf.is_empty() {
                let was_idle = c.state == State::Idle;
                self.close(i);
                // An idle connection stays in `idle` and is moved to `down` lazily.
                if !was_idle {
                    self.down.push(i);
                }
            }
            return;
        };
        match parse_response(&c.buf, MAX_RESPONSE_BYTES) {
            Ok(Some(r)) => {
                let extra = c.buf.len() > r.len;
                c.req = None;
                c.written = 0;
                c.buf.clear();
                let reuse = !r.close && !eof && !extra && self.cfg.mode == ConnMode::KeepAlive;
                if reuse {
                    c.state = State::Idle;
                    self.idle.push(i);
                } else {
                    self.close(i);
                    self.down.push(i);
                }
                self.finish(a, Outcome::of_status(r.status), None, now);
            }
            Ok(None) if eof => self.fail(i, ErrorKind::Closed, now),
            Ok(None) => {}
            Err(_) => self.fail(i, ErrorKind::Malformed, now),
        }
    }

    /// Expires queued requests and answers overdue on connections.
    fn sweep(&mut self, now: Instant) {
        while self.queue.front().is_some_and(|a| a.deadline <= now) {
            if let Some(a) = self.queue.pop_front() {
                self.unsent += 1;
                self.late += 1;
                self.finish(a, Outcome::Timeout, None, now);
            }
        }
        for i in 0..self.conns.len() {
            if let Some(a) = self.conns[i].req {
                if a.deadline <= now {
                    if self.conns[i].written < self.request_len(&a) {
                        self.unsent += 1;
                        self.late += 1;
                    }
                    self.conns[i].req = None;
                    self.close(i);
                    self.down.push(i);
                    self.finish(a, Outcome::Timeout, None, now);
                }
            }
        }
    }

    /// The run is over: whatever is still outstanding timed out.
    fn expire_all(&mut self, now: Instant) {
        while let Some(mut a) = self.queue.pop_front() {
            self.unsent += 1;
            self.late += 1;
            a.retries_left = 0;
            self.finish(a, Outcome::Timeout, None, now);
        }
        for i in 0..self.conns.len() {
            if let Some(mut a) = self.conns[i].req.take() {
                if self.conns[i].written < self.request_len(&a) {
                    self.unsent += 1;
                    self.late += 1;
                }
                self.close(i);
                a.retries_left = 0;
                self.finish(a, Outcome::Timeout, None, now);
            }
        }
    }

    /// Records the outcome of attempt `a` and schedules a retry when allowed.
    fn finish(&mut self, a: Attempt, o: Outcome, kind: Option<ErrorKind>, now: Instant) {
        let lat = micros(now.saturating_duration_since(a.origin));
        self.counts.add(o);
        if let Some(k) = kind {
            self.errors.add(k);
        }
        let _ = self.hists[o.index()].record(lat);
        self.path_counts[a.path].add(o);
        match o {
            Outcome::Success => {
                let _ = self.path_hists[a.path][0].record(lat);
            }
            Outcome::TryAgain => {
                let _ = self.path_hists[a.path][1].record(lat);
            }
            _ => {}
        }
        self.last_outcome = now;
        let b = self.bucket_of(a.origin);
        self.series[b].outcomes.add(o);
        if o == Outcome::Success {
            let in_slo = self.cfg.slo.is_none_or(|s| lat <= micros(s));
            if in_slo {
                self.success_in_slo += 1;
                self.path_in_slo[a.path] += 1;
                self.series[b].success_in_slo += 1;
                let c = self.bucket_of(now);
                self.series[c].completed_in_slo += 1;
            }
            let h = self.series_hist[b].get_or_insert_with(|| hist(2));
            let _ = h.record(lat);
        }
        let retry = matches!(o, Outcome::TryAgain | Outcome::Timeout | Outcome::Error);
        if retry && a.retries_left > 0 && self.scheduled + self.retries < self.cfg.max_requests {
            self.retries += 1;
            self.series[b].sent += 1;
            self.queue.push_back(Attempt {
                origin: a.origin,
                intended: now,
                deadline: now + self.cfg.timeout,
                retries_left: a.retries_left - 1,
                path: a.path,
            });
        }
    }

    fn report(self, generator: GeneratorLoad) -> Report {
        let requests = self.scheduled + self.retries;
        let late_fraction = if requests == 0 {
            0.0
        } else {
            self.late as f64 / requests as f64
        };
        let generator_late_fraction = if self.scheduled == 0 {
            0.0
        } else {
            self.generator_late as f64 / self.scheduled as f64
        };
        let kept = late_fraction <= self.cfg.lag_fraction;
        let thr = self.cfg.lag_threshold;
        let pct = |f: f64| f * 100.0;
        let message = if kept {
            format!(
                "schedule kept: {:.2} % of requests left more than {thr:?} late",
                pct(late_fraction)
            )
        } else if generator_late_fraction > self.cfg.lag_fraction {
            format!(
                "COULD NOT KEEP UP: the generator itself fell behind its schedule for {:.2} % \
                 of requests (more than {thr:?} late); the figures understate the offered \
                 load: lower the rate or give the generator a core of its own",
                pct(generator_late_fraction)
            )
        } else {
            format!(
                "COULD NOT KEEP UP: {:.2} % of requests left more than {thr:?} late ({} never \
                 left) because no connection was free or connecting took long; the server got \
                 less than the scheduled load (latency still counts the wait from the \
                 intended time)",
                pct(late_fraction),
                self.unsent
            )
        };
        let mut series = self.series;
        for (b, h) in series.iter_mut().zip(&self.series_hist) {
            if let Some(h) = h {
                b.p50_us = h.value_at_quantile(0.5);
                b.p99_us = h.value_at_quantile(0.99);
            }
        }
        // Trim empty buckets past the last outcome.
        let last = bucket_index(self.start, self.last_outcome, series.len());
        let keep = series
            .iter()
            .rposition(|b| b.sent > 0 || b.outcomes.total() > 0 || b.completed_in_slo > 0)
            .map_or(0, |p| p + 1)
            .max(last.min(series.len()));
        series.truncate(keep);
        let len_s = self.cfg.schedule_len().as_secs_f64().max(1e-9);
        let paths = self
            .cfg
            .paths()
            .into_iter()
            .enumerate()
            .map(|(i, p)| PathStats {
                path: p.path,
                weight: p.weight,
                requests: self.path_counts[i].total(),
                outcomes: self.path_counts[i],
                success_in_slo: self.path_in_slo[i],
                success: Summary::of(&self.path_hists[i][0]),
                try_again: Summary::of(&self.path_hists[i][1]),
            })
            .collect();
        Report {
            config: self.cfg.clone(),
            elapsed_s: self
                .last_outcome
                .saturating_duration_since(self.start)
                .as_secs_f64(),
            scheduled: self.scheduled,
            retries: self.retries,
            requests,
            outcomes: self.counts,
            errors: self.errors,
            latency: Latencies {
                success: Summary::of(&self.hists[Outcome::Success.index()]),
                try_again: Summary::of(&self.hists[Outcome::TryAgain.index()]),
                other_status: Summary::of(&self.hists[Outcome::OtherStatus.index()]),
                timeout: Summary::of(&self.hists[Outcome::Timeout.index()]),
                error: Summary::of(&self.hists[Outcome::Error.index()]),
            },
            success_in_slo: self.success_in_slo,
            goodput_rps: self.success_in_slo as f64 / len_s,
            offered_rps: self.scheduled as f64 / len_s,
            send_lag: Summary::of(&self.send_lag),
            unsent: self.unsent,
            connects: self.connects,
            verdict: Verdict {
                kept,
                late_fraction,
                generator_late_fraction,
                message,
            },
            series,
            paths,
            generator,
        }
    }
}

/// The generator's load over `start..end`, given the loop's idle time in it and the
/// thread's CPU time at the start.
fn generator_load(
    start: Instant,
    end: Instant,
    idle: Duration,
    cpu_at_start: Option<Duration>,
) -> GeneratorLoad {
    let window = end.saturating_duration_since(start).as_secs_f64();
    let w = window.max(1e-9);
    GeneratorLoad {
        window_s: window,
        busy_fraction: (1.0 - idle.as_secs_f64() / w).clamp(0.0, 1.0),
        cpu_fraction: cpu_at_start
            .zip(thread_cpu())
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64() / w),
    }
}

/// CPU time (user + system) of the calling thread so far, from the first field of
/// `/proc/thread-self/schedstat` (ns); `None` when unreadable.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn bucket_index(start: Instant, t: Instant, len: usize) -> usize {
    ((t.saturating_duration_since(start).as_millis() / BUCKET.as_millis()) as usize).min(len)
}
