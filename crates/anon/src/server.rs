//! [`Server`]: the builder, the started server ([`Running`]), its shutdown handle and the
//! drain.

use crate::accept::{accept_loop, Bound, Gate};
use crate::admit::{probe, Admissions};
use crate::engine::{Engine, EngineContext, IntoEngine};
use crate::metrics::{admin_loop, ListenerStats};
use anon_fiber::net::{TcpListener, TcpStream};
use anon_fiber::{Handle, Runtime};
use anon_queue::AdaptiveConfig;
use anon_reactor::{Events, Interest, Poll, Signal, Signals, Token, Waker};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The server's bounds. Past each one a request or connection is answered "try again"
/// at once instead of waiting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open connections, all listeners together; past it new connections get their
    /// engine's busy reply and are closed (busy mode, with hysteresis). Default: the
    /// process's soft descriptor limit minus 64 (10 000 if it cannot be read).
    pub max_connections: usize,
    /// The hard ceiling on HTTP requests being handled at once, split evenly over the
    /// workers; one more is answered `503` without running the handler. Default 1024.
    /// The adaptive limit works under it.
    pub max_in_flight: usize,
    /// The adaptive concurrency limit of each worker (on by default): requests not known
    /// to be cheap are admitted only while the queueing delay they suffer after admission
    /// stays near a target derived from the service time the worker measures; past it
    /// `503` at once. Needs no tuning: it rises for I/O-bound handlers and falls for
    /// CPU-bound ones. `None` leaves only `max_in_flight`.
    pub adaptive: Option<AdaptiveConfig>,
    /// Live fibers, split evenly over the workers (anon-fiber's bound); new connections
    /// are refused in busy mode near it. Default: anon-fiber's (from `vm.max_map_count`).
    pub max_fibers: Option<usize>,
    /// The queue-delay target (CoDel, "Fail at Scale"): a request that waited longer
    /// (run-queue delay included) while a queue stands is answered `503`. `None` turns
    /// queue-delay shedding off. Default 5 ms.
    pub queue_delay: Option<Duration>,
    /// The listen backlog of each listener socket. Small by design: connections are
    /// accepted and answered, not left waiting in the kernel. Default 128.
    pub backlog: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: default_max_connections(),
            max_in_flight: 1024,
            adaptive: Some(AdaptiveConfig::default()),
            max_fibers: None,
            queue_delay: Some(Duration::from_millis(5)),
            backlog: 128,
        }
    }
}

/// The soft `RLIMIT_NOFILE` (read from `/proc/self/limits`) minus a reserve.
fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .map(|v| {
            if v == "unlimited" {
                Some(usize::MAX)
            } else {
                v.parse::<usize>().ok()
            }
        });
    match soft {
        Some(Some(n)) => n.saturating_sub(64).max(16),
        _ => 10_000,
    }
}

/// Timeouts. HTTP listeners take theirs from here unless given their own driver settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From a connection's first byte (or its acceptance) to the end of a request head;
    /// past it `408` and close. Default 2 s.
    pub head: Duration,
    /// Longest wait for the next request on a keep-alive connection (for raw TCP: each
    /// read). Default 15 s.
    pub idle: Duration,
    /// Each read of a request body. Default 10 s.
    pub body_read: Duration,
    /// Each write. Default 10 s.
    pub write: Duration,
    /// How long a closed connection's input is still read and discarded, so that a reset
    /// does not destroy the last reply. Default 1 s.
    pub linger: Duration,
    /// How long a drain lets in-flight work finish before the rest is cancelled.
    /// Default 10 s.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            head: Duration::from_secs(2),
            idle: Duration::from_secs(15),
            body_read: Duration::from_secs(10),
            write: Duration::from_secs(10),
            linger: Duration::from_secs(1),
            drain: Duration::from_secs(10),
        }
    }
}

/// How the workers share a listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptMode {
    /// One listening socket per worker, bound with `SO_REUSEPORT`; the kernel spreads
    /// connections over them. The default (see ARCHITECTURE.md for the measurement).
    #[default]
    ReusePort,
    /// One listening socket whose accept fiber on every worker waits on it (each worker's
    /// reactor is woken per connection, one of them wins the accept).
    Shared,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No listener was configured.
    #[error("no listener configured")]
    NoListener,
    /// An address did not resolve.
    #[error("address {addr:?}: {source}")]
    Address {
        /// The address as given.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// Binding or listening failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The signal descriptor, the wait descriptor or the runtime could not be set up.
    #[error("cannot start: {0}")]
    Setup(#[source] io::Error),
}

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// From the shutdown request to the end of the drain.
    pub elapsed: Duration,
    /// Connections still busy when the drain deadline passed (cancelled then); 0 for a
    /// clean drain.
    pub unfinished: u64,
}

/// The server builder: listeners, workers, limits, timeouts.
///
/// ```no_run
/// use anon::{Http, Server, Tcp};
/// use std::io::{Read, Write};
///
/// Server::new()
///     .listen("127.0.0.1:8080", Http::from_fn(|_req| Ok(anon::Response::new("hi"))))
///     .listen(
///         "127.0.0.1:7007",
///         Tcp::new(|mut s: anon::fiber::net::TcpStream| {
///             let mut buf = [0u8; 1024];
///             while let Ok(n @ 1..) = s.read(&mut buf) {
///                 if s.write_all(&buf[..n]).is_err() {
///                     break;
///                 }
///             }
///         })
///         .busy_banner(&b"busy, try again\r\n"[..]),
///     )
///     .admin("127.0.0.1:9090")
///     .run()?; // until SIGTERM or SIGINT, then drains
/// # Ok::<(), anon::StartError>(())
/// ```
pub struct Server {
    listeners: Vec<(String, Box<dyn IntoEngine>)>,
    workers: Option<usize>,
    limits: Limits,
    timeouts: Timeouts,
    admin: Option<String>,
    accept_mode: AcceptMode,
    pin_workers: bool,
    signals: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field(
                "listeners",
                &self.listeners.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("workers", &self.workers)
            .field("limits", &self.limits)
            .field("timeouts", &self.timeouts)
            .field("admin", &self.admin)
            .field("accept_mode", &self.accept_mode)
            .finish()
    }
}

impl Server {
    /// A server with no listener, one worker per core, the default limits and timeouts.
    pub fn new() -> Server {
        Server {
            listeners: Vec::new(),
            workers: None,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            admin: None,
            accept_mode: AcceptMode::default(),
            pin_workers: false,
            signals: true,
        }
    }

    /// Adds a listener on `addr` (`"ip:port"`; port 0 picks a free one) served by
    /// `engine` ([`Http`](crate::Http), [`Tcp`](crate::Tcp), ...).
    pub fn listen(mut self, addr: impl Into<String>, engine: impl IntoEngine + 'static) -> Server {
        self.listeners.push((addr.into(), Box::new(engine)));
        self
    }

    /// Worker threads (default: one per core).
    pub fn workers(mut self, n: usize) -> Server {
        self.workers = Some(n.max(1));
        self
    }

    /// Pins worker `i` to CPU `i % cores` (default off).
    pub fn pin_workers(mut self, on: bool) -> Server {
        self.pin_workers = on;
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// Replaces the timeouts.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Server {
        self.timeouts = timeouts;
        self
    }

    /// Serves `GET /metrics` (Prometheus text) and `GET /fibers` (the fiber dump) on
    /// `addr`, from a thread of its own.
    pub fn admin(mut self, addr: impl Into<String>) -> Server {
        self.admin = Some(addr.into());
        self
    }

    /// How workers share a listening address (default [`AcceptMode::ReusePort`]).
    pub fn accept_mode(mut self, mode: AcceptMode) -> Server {
        self.accept_mode = mode;
        self
    }

    /// Whether [`Running::wait`] also ends on `SIGTERM`/`SIGINT` (default on). The
    /// signals are blocked in the calling thread before any worker starts, so every
    /// thread the server creates inherits the mask; call [`start`](Server::start) or
    /// [`run`](Server::run) from `main` before spawning other threads.
    pub fn handle_signals(mut self, on: bool) -> Server {
        self.signals = on;
        self
    }

    /// Starts the server and blocks until `SIGTERM`/`SIGINT` (or a
    /// [`ShutdownHandle`]), then drains: stops accepting, answers what is in flight
    /// (with `Connection: close`), closes idle keep-alive connections, and returns.
    pub fn run(self) -> Result<DrainReport, StartError> {
        self.start()?.wait()
    }

    /// Binds every listener, starts the workers and returns at once.
    pub fn start(self) -> Result<Running, StartError> {
        if self.listeners.is_empty() {
            return Err(StartError::NoListener);
        }
        // Signals first: the threads created below inherit the blocked mask.
        let signals = if self.signals {
            Some(Signals::new(&[Signal::Term, Signal::Int]).map_err(StartError::Setup)?)
        } else {
            None
        };
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let reuse_port = self.accept_mode == AcceptMode::ReusePort;

        // Bind before starting anything, so that a bad address fails fast.
        let mut sockets: Vec<(SocketAddr, Vec<std::net::TcpListener>)> = Vec::new();
        for (addr, _) in &self.listeners {
            let resolved = resolve(addr)?;
            let count = if reuse_port { workers } else { 1 };
            sockets.push(bind_group(
                resolved,
                count,
                self.limits.backlog,
                reuse_port,
            )?);
        }
        let admin = match &self.admin {
            Some(a) => {
                let resolved = resolve(a)?;
                let l =
                    std::net::TcpListener::bind(resolved).map_err(|source| StartError::Listen {
                        addr: resolved,
                        source,
                    })?;
                Some(l)
            }
            None => None,
        };

        let mut builder = Runtime::builder()
            .workers(workers)
            .pin_workers(self.pin_workers)
            .name("anon-worker");
        if let Some(n) = self.limits.max_fibers {
            builder = builder.max_fibers(n);
        }
        let runtime = builder.build().map_err(StartError::Setup)?;
        let handle = runtime.handle();
        let max_fibers = handle.max_fibers_per_worker() * workers;
        // Accept fibers and probes are fibers too: keep room for them below the bound.
        let reserve = workers * (sockets.len() + 1) + 8;

        let shared = Arc::new(Shared {
            workers,
            timeouts: self.timeouts,
            admissions: Arc::new(Admissions::new(
                workers,
                self.limits.max_in_flight,
                self.limits.queue_delay,
                self.limits.adaptive,
            )),
            conn_gate: Gate::new(self.limits.max_connections),
            fiber_gate: Gate::new(max_fibers.saturating_sub(reserve).max(1)),
            max_fibers,
            draining: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            listeners: OnceLock::new(),
            handle: OnceLock::new(),
        });
        let _ = shared.handle.set(handle.clone());
        let ctx = EngineContext {
            shared: Arc::clone(&shared),
        };

        let mut bounds = Vec::with_capacity(self.listeners.len());
        for ((_, into), (local, socks)) in self.listeners.into_iter().zip(sockets) {
            let engine = into.into_engine(&ctx);
            let mut fiber_socks = Vec::with_capacity(workers);
            for s in socks {
                fiber_socks.push(Arc::new(
                    TcpListener::try_from(s).map_err(StartError::Setup)?,
                ));
            }
            if !reuse_port {
                // One socket, a handle to it per worker (each registers with its worker).
                let first = Arc::clone(&fiber_socks[0]);
                for _ in 1..workers {
                    fiber_socks.push(Arc::new(first.try_clone().map_err(StartError::Setup)?));
                }
            }
            bounds.push(Arc::new(Bound {
                local,
                engine,
                stats: ListenerStats::default(),
                sockets: fiber_socks,
            }));
        }
        let _ = shared.listeners.set(bounds.clone());

        for w in 0..workers {
            let sh = Arc::clone(&shared);
            anon_fiber::FiberBuilder::new()
                .name("anon-probe")
                .spawn_in(&handle, Some(w), move || probe(sh, w))
                .map_err(|e| StartError::Setup(io::Error::other(e)))?;
        }
        for b in &bounds {
            for (w, sock) in b.sockets.iter().enumerate() {
                let (sh, bd, sk) = (Arc::clone(&shared), Arc::clone(b), Arc::clone(sock));
                anon_fiber::FiberBuilder::new()
                    .name(format!("anon-accept {}", b.local))
                    .spawn_in(&handle, Some(w % workers), move || accept_loop(sh, bd, sk))
                    .map_err(|e| StartError::Setup(io::Error::other(e)))?;
            }
            log::info!(
                "listening on {} ({}, {} worker{})",
                b.local,
                b.engine.protocol(),
                workers,
                if workers == 1 { "" } else { "s" }
            );
        }

        let admin = match admin {
            Some(l) => {
                let addr = l.local_addr().map_err(StartError::Setup)?;
                let fl = TcpListener::try_from(l).map_err(StartError::Setup)?;
                let sh = Arc::clone(&shared);
                let t = std::thread::Builder::new()
                    .name("anon-admin".into())
                    .spawn(move || admin_loop(sh, fl))
                    .map_err(StartError::Setup)?;
                log::info!("admin (metrics, fibers) on http://{addr}/metrics");
                Some((addr, t))
            }
            None => None,
        };

        let poll = Poll::new().map_err(StartError::Setup)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(StartError::Setup)?);
        if let Some(s) = &signals {
            poll.registry()
                .register(s.as_raw_fd(), SIGNALS, Interest::READABLE)
                .map_err(StartError::Setup)?;
        }
        Ok(Running {
            local_addrs: bounds.iter().map(|b| b.local).collect(),
            shared,
            runtime: Some(runtime),
            admin,
            poll,
            signals,
            stop: ShutdownHandle {
                requested: Arc::new(AtomicBool::new(false)),
                waker,
            },
        })
    }
}

const WAKE: Token = Token(0);
const SIGNALS: Token = Token(1);

fn resolve(addr: &str) -> Result<SocketAddr, StartError> {
    addr.to_socket_addrs()
        .and_then(|mut it| {
            it.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "resolves to no address")
            })
        })
        .map_err(|source| StartError::Address {
            addr: addr.to_string(),
            source,
        })
}

/// Binds `count` listening sockets to `addr` (with `SO_REUSEPORT` when `reuse_port`);
/// a port 0 is resolved by the first and reused by the others.
fn bind_group(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    reuse_port: bool,
) -> Result<(SocketAddr, Vec<std::net::TcpListener>), StartError> {
    let mut out = Vec::with_capacity(count);
    let mut local = addr;
    for _ in 0..count.max(1) {
        let s = bind_one(local, backlog, reuse_port).map_err(|source| StartError::Listen {
            addr: local,
            source,
        })?;
        local = s.local_addr().map_err(StartError::Setup)?;
        out.push(s);
    }
    Ok((local, out))
}

fn bind_one(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(i32::try_from(backlog.max(1)).unwrap_or(i32::MAX))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// State shared by the accept fibers, the engines, the admin thread and [`Running`].
pub(crate) struct Shared {
    pub(crate) workers: usize,
    pub(crate) timeouts: Timeouts,
    pub(crate) admissions: Arc<Admissions>,
    pub(crate) conn_gate: Gate,
    pub(crate) fiber_gate: Gate,
    pub(crate) max_fibers: usize,
    /// A drain started: replies close their connections.
    draining: AtomicBool,
    /// The drain is over (or abandoned): background fibers and threads end.
    stopping: AtomicBool,
    listeners: OnceLock<Vec<Arc<Bound>>>,
    handle: OnceLock<Handle>,
}

impl Shared {
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.conn_gate.is_busy() || self.fiber_gate.is_busy()
    }

    pub(crate) fn listeners(&self) -> &[Arc<Bound>] {
        self.listeners.get().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn handle(&self) -> Option<&Handle> {
        self.handle.get()
    }

    fn active(&self) -> u64 {
        let conns: u64 = self.listeners().iter().map(|l| l.engine.active()).sum();
        conns.max(self.admissions.in_flight() as u64)
    }
}

/// Asks a [`Running`] server to drain and stop; cloneable and usable from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    requested: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("requested", &self.requested.load(Ordering::Relaxed))
            .finish()
    }
}

impl ShutdownHandle {
    /// Makes [`Running::wait`] return after a drain (as `SIGTERM` does).
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// A started server. [`wait`](Running::wait) blocks until a signal or a
/// [`ShutdownHandle`] asks it to stop, then drains; dropping it stops at once (no drain).
pub struct Running {
    local_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    runtime: Option<Runtime>,
    admin: Option<(SocketAddr, std::thread::JoinHandle<()>)>,
    poll: Poll,
    signals: Option<Signals>,
    stop: ShutdownHandle,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("local_addrs", &self.local_addrs)
            .field("admin", &self.admin.as_ref().map(|(a, _)| a))
            .finish()
    }
}

impl Running {
    /// The bound address of each listener, in the order they were added.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The admin listener's address, if one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(a, _)| *a)
    }

    /// A handle that makes [`wait`](Running::wait) drain and return.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// The metrics, in Prometheus text format (what the admin listener serves).
    pub fn metrics(&self) -> String {
        crate::metrics::render(&self.shared)
    }

    /// The runtime's handle (live fibers, the fiber dump, spawning).
    pub fn handle(&self) -> Option<&Handle> {
        self.shared.handle()
    }

    /// Blocks until `SIGTERM`/`SIGINT` (if [handled](Server::handle_signals)) or a
    /// [`ShutdownHandle::shutdown`], then drains (see [`shutdown`](Running::shutdown)).
    pub fn wait(mut self) -> Result<DrainReport, StartError> {
        let mut events = Events::with_capacity(8);
        while !self.stop.requested.load(Ordering::Acquire) {
            self.poll
                .poll(&mut events, None)
                .map_err(StartError::Setup)?;
            for ev in events.iter() {
                if ev.token() == WAKE {
                    self.stop.waker.reset();
                }
                if ev.token() == SIGNALS {
                    if let Some(s) = &self.signals {
                        while let Ok(Some(info)) = s.receive() {
                            log::info!("got {:?} from pid {}: draining", info.signal, info.pid);
                            self.stop.requested.store(true, Ordering::Release);
                        }
                    }
                }
            }
        }
        Ok(self.shutdown())
    }

    /// Drains now: stops accepting (connections already in the listen backlog are
    /// still accepted and served), answers requests in flight and closes their
    /// connections, waits until no connection has work in progress or the drain timeout
    /// passes, then closes idle keep-alive connections and stops the workers.
    pub fn shutdown(mut self) -> DrainReport {
        let start = Instant::now();
        self.shared.draining.store(true, Ordering::Release);
        for b in self.shared.listeners() {
            stop_listening(&self.shared, b);
        }
        let deadline = start + self.shared.timeouts.drain;
        // A connection accepted just before the listeners closed may not have shown its
        // first request yet: wait until nothing was busy for a short quiet period.
        let quiet = Duration::from_millis(50);
        let mut idle_since: Option<Instant> = None;
        let unfinished = loop {
            let now = Instant::now();
            let active = self.shared.active();
            if active > 0 {
                idle_since = None;
            } else if now.duration_since(*idle_since.get_or_insert(now)) >= quiet {
                break 0;
            }
            if now >= deadline {
                break active;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        self.stop_now();
        let report = DrainReport {
            elapsed: start.elapsed(),
            unfinished,
        };
        if unfinished == 0 {
            log::info!("drained in {:?}", report.elapsed);
        } else {
            log::warn!(
                "drain deadline passed with {unfinished} connection(s) busy; cancelled them"
            );
        }
        report
    }

    fn stop_now(&mut self) {
        self.shared.draining.store(true, Ordering::Release);
        self.shared.stopping.store(true, Ordering::Release);
        // Cancels the fibers left and closes the hibernating connections.
        drop(self.runtime.take());
        if let Some((_, t)) = self.admin.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Accepts (from this thread, without waiting) what is already in a listener's backlog,
/// hands it to the workers, then shuts the listening socket down, which also wakes its
/// accept fibers.
fn stop_listening(shared: &Arc<Shared>, b: &Arc<Bound>) {
    let handle = shared.handle().cloned();
    let mut shut = Vec::new();
    for sock in &b.sockets {
        let fd = sock.as_raw_fd();
        if shut.contains(&fd) {
            continue;
        }
        shut.push(fd);
        // Bounded: a backlog holds at most `Limits::backlog` connections.
        for _ in 0..65_536 {
            let Ok((s, _)) = SockRef::from(&**sock).accept() else {
                break;
            };
            b.stats.accepted.inc();
            let s = std::net::TcpStream::from(s);
            let Ok(stream) = TcpStream::try_from(s) else {
                continue;
            };
            let mut handoff = Handoff {
                engine: Arc::clone(&b.engine),
                stream: Some(stream),
            };
            if let Some(h) = &handle {
                let _ = h.spawn(move || {
                    if let Some(s) = handoff.stream.take() {
                        handoff.engine.start(s);
                    }
                });
            }
        }
        let _ = SockRef::from(&**sock).shutdown(Shutdown::Read);
    }
}

/// A connection on its way to a worker during the drain; if it never gets there it is
/// told to try again instead of being dropped silently.
struct Handoff {
    engine: Arc<dyn Engine>,
    stream: Option<TcpStream>,
}

impl Drop for Handoff {
    fn drop(&mut self) {
        if let Some(s) = self.stream.take() {
            crate::engine::write_now(&s, self.engine.busy_reply());
            let _ = s.shutdown(Shutdown::Write);
        }
    }
}
