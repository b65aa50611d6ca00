//! The HTTP/1.1 server driver: serves accepted connections on fibers with a blocking-style
//! [`Handler`] over the `http` crate's `Request`/`Response`.
//!
//! One fiber serves one connection at a time ([`Server::serve`]); requests are decoded by
//! the sans-IO [`MessageDecoder`](crate::MessageDecoder), responses encoded by the codec.
//!
//! - **Keep-alive and pipelining.** Responses to pipelined requests are gathered in one
//!   buffer and leave in one write; after
//!   [`pipeline_budget`](ServerConfig::pipeline_budget) requests in a row the fiber
//!   yields to the others of its worker.
//! - **Hibernation.** Between keep-alive requests, when no byte is buffered, the read
//!   buffer is freed, the fiber ends and the socket waits in the worker's reactor
//!   (`TcpStream::on_readable`); a fiber is spawned when bytes arrive. An idle connection
//!   holds no stack.
//! - **Timeouts** (defaults): request head 2 s → `408` and close; idle keep-alive 15 s →
//!   close; each body read 10 s; each write 10 s.
//! - **Errors.** A malformed request gets the codec's status (400, 413, 414, 431, 501,
//!   505) with `Connection: close`, never a silent drop. A handler panic → `500` and
//!   close; the worker and its other fibers live on. [`HandlerError::Again`] → `503` with
//!   `Retry-After`.
//! - **Admission.** An [`Admission`] policy is asked before each handler runs; a refusal is
//!   answered with a pre-rendered `503` with `Retry-After` without allocating, and the
//!   handler never runs. When the request allows it (persistent, and a body of at most
//!   [`drain_limit`](ServerConfig::drain_limit) bytes announced by `Content-Length`, not
//!   waiting for `100 Continue`) the reply is [`OVERLOAD_KEEP_ALIVE_REPLY`]: the body is
//!   skipped and the connection stays open for the next request, so a refused client
//!   does not pay (and make the server pay) a new connection. Otherwise, or with
//!   [`keep_alive_rejections`](ServerConfig::keep_alive_rejections) off, it is the closing
//!   [`OVERLOAD_REPLY`](crate::OVERLOAD_REPLY). Refusals are queued and written like any
//!   response: pipelined ones leave together.
//! - **Shedding idle connections.** Each worker lists its hibernating keep-alive
//!   connections (those idle between requests) in hibernation order; [`shed_idle`]
//!   closes the N oldest on the calling worker in O(1) each (the facade does it when
//!   `accept` fails with `EMFILE`/`ENFILE`). Counted in [`StatsSnapshot::shed`].
//! - **Counts.** [`Stats`]: served, rejected, in flight, and the rest.
//!
//! ```
//! use anon_fiber::{net::TcpListener, Runtime};
//! use anon_http::client::Client;
//! use anon_http::server::{Body, Server};
//! use http::{Request, Response};
//! use std::io::Read;
//! use std::sync::Arc;
//!
//! let rt = Runtime::builder().workers(1).build()?;
//! let server = Arc::new(Server::from_fn(|mut req: Request<Body<'_>>| {
//!     let mut name = String::new();
//!     req.body_mut().read_to_string(&mut name)?;
//!     Ok(Response::new(format!("hello, {name}")))
//! }));
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let url = format!("http://{}/greet", listener.local_addr()?);
//! let srv = Arc::clone(&server);
//! rt.spawn(move || srv.accept_loop(&listener))?;
//!
//! let reply = rt.spawn(move || {
//!     let client = Client::new(Default::default());
//!     client.send(Request::post(url).body(b"fiber".to_vec()).unwrap())
//! })?;
//! let resp = reply.join().unwrap()?;
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.body(), b"hello, fiber");
//! assert_eq!(server.stats().snapshot().served, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
mod conn;
mod error;
mod idle;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};

use anon_fiber::net::{TcpListener, TcpStream};

pub use body::{Body, Payload};
pub use error::{Again, HandlerError};

use crate::Config;

/// Settings of a [`Server`]; every field has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// The codec's limits and leniency switches (default: strict, default limits).
    pub codec: Config,
    /// Longest time from the first byte of a request head (or from the start of a fresh
    /// connection) to its end; past it the answer is `408` and the connection closes.
    /// Default 2 s.
    pub head_timeout: Duration,
    /// Longest wait for the next request on a keep-alive connection; past it the
    /// connection closes without a reply. Default 15 s.
    pub idle_timeout: Duration,
    /// Longest wait for each read of a request body. Default 10 s.
    pub body_read_timeout: Duration,
    /// Longest wait for each write. Default 10 s.
    pub write_timeout: Duration,
    /// Requests answered in a row from buffered (pipelined) bytes before the fiber yields
    /// to the other fibers of its worker. Default 16.
    pub pipeline_budget: usize,
    /// Initial read-buffer size (it grows up to what a head may need under the codec's
    /// limits). Default 4 KiB.
    pub read_buffer: usize,
    /// Buffered response bytes that trigger a write (pipelined responses are otherwise
    /// written together when the input runs dry). Default 64 KiB.
    pub write_batch: usize,
    /// Request-body bytes the server discards when a handler did not read them all; a
    /// longer rest closes the connection after the response. Default 64 KiB.
    pub drain_limit: u64,
    /// Free the buffers and the fiber of an idle keep-alive connection (see the module
    /// docs). Default on; needs a worker thread (it is skipped elsewhere).
    pub hibernate: bool,
    /// After the server decides to close, how long it keeps reading and discarding input
    /// so that a client still sending does not get a reset that destroys the last reply
    /// (a "lingering close"). Done without a fiber on worker threads. Default 1 s.
    pub linger: Duration,
    /// Answer a request refused by the [`Admission`] policy with
    /// [`OVERLOAD_KEEP_ALIVE_REPLY`] and keep the connection, when the request allows it:
    /// it is persistent (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
    /// `keep-alive`), its body is announced by `Content-Length` and at most
    /// [`drain_limit`](ServerConfig::drain_limit) bytes (it is read and discarded), and it
    /// does not wait for `100 Continue` with its body unsent. A chunked or longer body, and
    /// every refusal when this is off, get the closing
    /// [`OVERLOAD_REPLY`](crate::OVERLOAD_REPLY). Default on: a closed connection costs a
    /// refused client a reconnect, and the server an accept, far more than the refusal.
    pub keep_alive_rejections: bool,
}

impl ServerConfig {
    /// The defaults listed on each field.
    pub const DEFAULT: ServerConfig = ServerConfig {
        codec: Config::STRICT,
        head_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(15),
        body_read_timeout: Duration::from_secs(10),
        write_timeout: Duration::from_secs(10),
        pipeline_budget: 16,
        read_buffer: 4 * 1024,
        write_batch: 64 * 1024,
        drain_limit: 64 * 1024,
        hibernate: true,
        linger: Duration::from_secs(1),
        keep_alive_rejections: true,
    };
}

/// The admission refusal that keeps the connection: `503`, `Retry-After: 1`, empty body,
/// no `Connection: close`. Written as is, without allocating (like
/// [`OVERLOAD_REPLY`](crate::OVERLOAD_REPLY), it carries no `Date`); see
/// [`ServerConfig::keep_alive_rejections`].
pub const OVERLOAD_KEEP_ALIVE_REPLY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::DEFAULT
    }
}

/// A request handler: blocking-style code on the connection's fiber.
///
/// Implemented for every `Fn(Request<Body<'_>>) -> Result<Response<B>, HandlerError>`
/// with `B: Into<Payload>`; use [`Server::from_fn`] to get closure type inference.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: Request<Body<'_>>) -> Result<Response<Payload>, HandlerError>;
}

impl<F, B> Handler for F
where
    F: Fn(Request<Body<'_>>) -> Result<Response<B>, HandlerError> + Send + Sync + 'static,
    B: Into<Payload>,
{
    fn call(&self, req: Request<Body<'_>>) -> Result<Response<Payload>, HandlerError> {
        self(req).map(|r| r.map(Into::into))
    }
}

/// The admission hook: asked once per request, after its head is parsed and before the
/// handler runs (and before its body is read).
///
/// A refusal is answered with `503` and `Retry-After`; the connection stays open when
/// [`ServerConfig::keep_alive_rejections`] and the request allow it and
/// [`keep_alive_after_refusal`](Admission::keep_alive_after_refusal) agrees, else it
/// closes. A permit is held while the handler runs and its response is written, then
/// given back through [`release`](Admission::release). The facade plugs `anon_queue`'s
/// limiter and queue-delay shedding in here; this crate knows no policy.
pub trait Admission: Send + Sync + 'static {
    /// What an admitted request holds while it is served.
    type Permit<'a>
    where
        Self: 'a;

    /// Decides on one request: `head` is its parsed head, `arrived` when the read that
    /// completed it returned.
    fn admit<'a>(
        &'a self,
        head: &crate::Request<'_>,
        arrived: Instant,
    ) -> Result<Self::Permit<'a>, Again>;

    /// Gives a permit back once the response is written (default: drops it).
    fn release(&self, permit: Self::Permit<'_>) {
        drop(permit);
    }

    /// Asked after a refusal that could keep its connection open: `false` closes it
    /// anyway (e.g. while the server drains, so that clients move elsewhere). Default
    /// `true`.
    fn keep_alive_after_refusal(&self) -> bool {
        true
    }

    /// A refusal decided early, without a permit: asked from the reactor callback that
    /// found a hibernating keep-alive connection readable, when its bytes are exactly one
    /// complete bodiless head. `Some` answers the request `503` there, with no fiber,
    /// which makes a refusal several times cheaper than a served request; `None` (the
    /// default) gives the connection a fiber, where [`admit`](Admission::admit) is
    /// asked as usual. A policy answers `Some` only when `admit` would refuse, and must
    /// not hold anything for a `None`.
    fn refuse_early(&self, head: &crate::Request<'_>, arrived: Instant) -> Option<Again> {
        let _ = (head, arrived);
        None
    }
}

/// The policy that admits everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmitAll;

impl Admission for AdmitAll {
    type Permit<'a> = ();

    fn admit(&self, _: &crate::Request<'_>, _: Instant) -> Result<(), Again> {
        Ok(())
    }
}

/// A counter alone on its cache line: workers bump them concurrently.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Live counters of a [`Server`] (relaxed atomics; read with [`Stats::snapshot`]).
#[derive(Debug, Default)]
pub struct Stats {
    served: Counter,
    rejected: Counter,
    again: Counter,
    handler_errors: Counter,
    panics: Counter,
    malformed: Counter,
    timeouts: Counter,
    in_flight: Counter,
    connections: Counter,
    hibernating: Counter,
    writes: Counter,
    shed: Counter,
}

/// A copy of the [`Stats`] counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Handler responses written (any status the handler chose).
    pub served: u64,
    /// Requests refused by the [`Admission`] policy (handler not run).
    pub rejected: u64,
    /// Handler results [`HandlerError::Again`] (answered `503`).
    pub again: u64,
    /// Other handler errors (answered with [`HandlerError::status`]).
    pub handler_errors: u64,
    /// Handler panics (answered `500`, connection closed).
    pub panics: u64,
    /// Malformed requests (answered with the codec's status, connection closed).
    pub malformed: u64,
    /// Request heads or bodies that timed out (`408`).
    pub timeouts: u64,
    /// Handlers running now.
    pub in_flight: u64,
    /// Connections open now (hibernating ones included).
    pub connections: u64,
    /// Connections hibernating now (no fiber).
    pub hibernating: u64,
    /// Socket writes made (pipelined responses share one).
    pub writes: u64,
    /// Idle keep-alive connections closed by [`shed_idle`] (to free descriptors).
    pub shed: u64,
}

impl Stats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            served: self.served.get(),
            rejected: self.rejected.get(),
            again: self.again.get(),
            handler_errors: self.handler_errors.get(),
            panics: self.panics.get(),
            malformed: self.malformed.get(),
            timeouts: self.timeouts.get(),
            in_flight: self.in_flight.get(),
            connections: self.connections.get(),
            hibernating: self.hibernating.get(),
            writes: self.writes.get(),
            shed: self.shed.get(),
        }
    }
}

/// Closes up to `n` of the oldest idle keep-alive connections hibernating on the calling
/// worker (of any [`Server`] on it) and returns how many it closed; each counts in its
/// server's [`StatsSnapshot::shed`]. For when the process runs out of descriptors:
/// a connection idle between requests has nothing pending, so it is simply closed (a
/// client reconnects as it would after the idle timeout).
///
/// Only connections waiting for their *next* request are listed (never one waiting for
/// its first); call it on a worker thread (elsewhere it finds nothing). O(n).
pub fn shed_idle(n: usize) -> usize {
    idle::shed_oldest(n)
}

/// How many idle keep-alive connections hibernate on the calling worker now (what
/// [`shed_idle`] could close).
pub fn idle_connections() -> usize {
    idle::len()
}

/// A [`Handler`] made from a closure by [`Server::from_fn`].
#[derive(Debug, Clone, Copy)]
pub struct FnHandler<F>(F);

impl<F, B> Handler for FnHandler<F>
where
    F: Fn(Request<Body<'_>>) -> Result<Response<B>, HandlerError> + Send + Sync + 'static,
    B: Into<Payload>,
{
    fn call(&self, req: Request<Body<'_>>) -> Result<Response<Payload>, HandlerError> {
        (self.0)(req).map(|r| r.map(Into::into))
    }
}

/// An HTTP/1.1 server: a handler, an admission policy, settings and counters. Share it
/// in an `Arc` and call [`serve`](Server::serve) on a fiber per accepted connection (or
/// let [`accept_loop`](Server::accept_loop) do that).
#[derive(Debug)]
pub struct Server<H, A = AdmitAll> {
    handler: H,
    admission: A,
    config: ServerConfig,
    stats: Arc<Stats>,
}

impl<H: Handler> Server<H> {
    /// A server with the default settings that admits everything.
    pub fn new(handler: H) -> Server<H> {
        Server {
            handler,
            admission: AdmitAll,
            config: ServerConfig::DEFAULT,
            stats: Arc::default(),
        }
    }
}

impl<F> Server<FnHandler<F>> {
    /// A server from a closure (its argument and result types are inferred).
    pub fn from_fn<B>(f: F) -> Server<FnHandler<F>>
    where
        F: Fn(Request<Body<'_>>) -> Result<Response<B>, HandlerError> + Send + Sync + 'static,
        B: Into<Payload>,
    {
        Server {
            handler: FnHandler(f),
            admission: AdmitAll,
            config: ServerConfig::DEFAULT,
            stats: Arc::default(),
        }
    }
}

impl<H, A> Server<H, A> {
    /// Replaces the settings.
    pub fn with_config(mut self, config: ServerConfig) -> Server<H, A> {
        self.config = config;
        self
    }

    /// Replaces the admission policy.
    pub fn with_admission<A2: Admission>(self, admission: A2) -> Server<H, A2> {
        Server {
            handler: self.handler,
            admission,
            config: self.config,
            stats: self.stats,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The admission policy.
    pub fn admission(&self) -> &A {
        &self.admission
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<H: Handler, A: Admission> Server<H, A> {
    /// Serves one accepted connection on the calling fiber until it closes or hibernates
    /// (then a fiber is spawned again when bytes arrive). The first request head must be
    /// complete within [`head_timeout`](ServerConfig::head_timeout) of this call.
    ///
    /// Outside a runtime's worker thread it also works (blocking the thread), without
    /// hibernation or stackless lingering.
    pub fn serve(self: &Arc<Self>, stream: TcpStream) {
        self.stats.connections.add(1);
        conn::serve(self, stream, conn::Start::Fresh(Instant::now()));
    }

    /// Hands a connection to the current worker's reactor without a fiber; a fiber
    /// serving it starts when its first bytes arrive. A connection silent for
    /// [`head_timeout`](ServerConfig::head_timeout) gets `408` and is closed. Must run on
    /// a worker thread (a fiber or a worker callback).
    pub fn serve_when_readable(self: &Arc<Self>, stream: TcpStream) -> io::Result<()> {
        if anon_fiber::worker_index().is_none() {
            return Err(io::Error::other(
                "serve_when_readable needs a runtime worker thread",
            ));
        }
        self.stats.connections.add(1);
        conn::hibernate(self, stream, conn::Wait::FirstRequest(Instant::now()));
        Ok(())
    }

    /// Accepts connections from `listener` forever, each served as by
    /// [`serve_when_readable`](Server::serve_when_readable). Run it on a fiber (on a plain
    /// thread each connection is served in turn, blocking). Returns the first accept error
    /// that is not transient (with an accept timeout set, `TimedOut` ends it too).
    pub fn accept_loop(self: &Arc<Self>, listener: &TcpListener) -> io::Result<()> {
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if anon_fiber::worker_index().is_some() {
                        self.serve_when_readable(stream)?;
                    } else {
                        self.serve(stream);
                    }
                }
                Err(e) if is_per_connection_error(&e) => continue,
                Err(e) if is_shortage(&e) => {
                    // Out of descriptors or memory: the backlog holds the clients; retry
                    // soon instead of spinning.
                    anon_fiber::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
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

/// A passing shortage of descriptors or memory.
fn is_shortage(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::OutOfMemory
        || matches!(
            e.raw_os_error(),
            Some(
                libc_codes::EMFILE | libc_codes::ENFILE | libc_codes::ENOBUFS | libc_codes::ENOMEM
            )
        )
}

/// The few errno values the accept loop treats as transient (Linux numbering).
mod libc_codes {
    pub(super) const EMFILE: i32 = 24;
    pub(super) const ENFILE: i32 = 23;
    pub(super) const ENOBUFS: i32 = 105;
    pub(super) const ENOMEM: i32 = 12;
}
