//! Protocol engines: what a listener does with the connections it accepts.
//!
//! An [`Engine`] takes accepted connections on a worker thread, says what a refused
//! connection is told (its "try again" reply) and reports its counters. The built-in ones
//! are [`Http`] (anon-http's fiber driver behind the per-request admission) and [`Tcp`]
//! (a raw handler per connection on its own fiber, with a busy banner). A new protocol
//! (RESP, the process engine) is one more type implementing [`IntoEngine`].

use crate::admit::SharedAdmission;
use crate::metrics::Prom;
use crate::server::{Shared, Timeouts};
use anon_fiber::net::TcpStream;
use anon_http::server::{
    Admission as HttpAdmission, Body, Handler, Payload, Server as HttpServer, ServerConfig,
};
use anon_http::{Again, HandlerError};
use http::header::{HeaderValue, CONNECTION};
use http::{Request, Response};
use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A listener's protocol: takes accepted connections and reports its counters.
///
/// Implementations must keep every bound of their own (a refusal is an answer, never a
/// wait) and count open connections, which the server compares with
/// [`Limits::max_connections`](crate::Limits::max_connections).
pub trait Engine: Send + Sync + 'static {
    /// Short protocol name, used in metric labels and logs (`"http"`, `"tcp"`).
    fn protocol(&self) -> &'static str;

    /// Takes one accepted connection. Called on a worker thread (the listener's accept
    /// fiber), so it must not block: spawn a fiber or park the stream in the reactor.
    fn start(&self, stream: TcpStream);

    /// What a connection refused in busy mode is sent before it is closed.
    fn busy_reply(&self) -> &[u8];

    /// Connections open now (idle ones included).
    fn open(&self) -> u64;

    /// Connections with work in progress now; a drain waits until this is 0.
    fn active(&self) -> u64;

    /// Appends this engine's own metrics; every sample carries `labels`
    /// (e.g. `listener="127.0.0.1:8080"`).
    fn metrics(&self, out: &mut Prom, labels: &str) {
        let _ = (out, labels);
    }
}

/// What an engine is built with when the server starts.
pub struct EngineContext {
    pub(crate) shared: Arc<Shared>,
}

impl EngineContext {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// The server's timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.shared.timeouts
    }

    /// `true` once the server drains (replies should close their connections).
    pub fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    /// A handle the engine keeps to ask later whether the server drains.
    pub fn drain_signal(&self) -> DrainSignal {
        DrainSignal(Arc::clone(&self.shared))
    }
}

/// Tells an engine, at any time, whether the server drains (see
/// [`EngineContext::drain_signal`]).
#[derive(Clone)]
pub struct DrainSignal(Arc<Shared>);

impl DrainSignal {
    /// `true` once the server drains: replies should close their connections.
    pub fn is_draining(&self) -> bool {
        self.0.is_draining()
    }
}

impl std::fmt::Debug for DrainSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DrainSignal")
            .field(&self.is_draining())
            .finish()
    }
}

/// Something that becomes an [`Engine`] when the server starts (so that it can use the
/// server's limits, timeouts and admission state).
pub trait IntoEngine {
    /// Builds the engine.
    fn into_engine(self: Box<Self>, ctx: &EngineContext) -> Arc<dyn Engine>;
}

/// An HTTP/1.1 listener: anon-http's fiber driver with hibernating keep-alive
/// connections, behind the server's per-request admission (requests past the in-flight
/// limit or the queue-delay target are answered `503` without running the handler; the
/// connection stays open for the next request as
/// [`ServerConfig::keep_alive_rejections`] allows, except once the server drains).
pub struct Http<H> {
    handler: H,
    config: Option<ServerConfig>,
}

impl<H: Handler> Http<H> {
    /// An HTTP listener running `handler`.
    pub fn new(handler: H) -> Http<H> {
        Http {
            handler,
            config: None,
        }
    }

    /// Replaces the driver settings; by default they are anon-http's, with the server's
    /// [`Timeouts`] applied.
    pub fn config(mut self, config: ServerConfig) -> Http<H> {
        self.config = Some(config);
        self
    }
}

impl<F> Http<HttpFn<F>> {
    /// An HTTP listener from a closure (its argument and result types are inferred).
    pub fn from_fn<B>(f: F) -> Http<HttpFn<F>>
    where
        F: Fn(Request<Body<'_>>) -> Result<Response<B>, HandlerError> + Send + Sync + 'static,
        B: Into<Payload>,
    {
        Http::new(HttpFn(f))
    }
}

/// A [`Handler`] made from a closure by [`Http::from_fn`].
#[derive(Debug, Clone, Copy)]
pub struct HttpFn<F>(F);

impl<F, B> Handler for HttpFn<F>
where
    F: Fn(Request<Body<'_>>) -> Result<Response<B>, HandlerError> + Send + Sync + 'static,
    B: Into<Payload>,
{
    fn call(&self, req: Request<Body<'_>>) -> Result<Response<Payload>, HandlerError> {
        (self.0)(req).map(|r| r.map(Into::into))
    }
}

/// The handler, plus `Connection: close` on every response once the server drains.
struct DrainAware<H> {
    inner: H,
    shared: Arc<Shared>,
}

impl<H: Handler> Handler for DrainAware<H> {
    fn call(&self, req: Request<Body<'_>>) -> Result<Response<Payload>, HandlerError> {
        let mut resp = self.inner.call(req)?;
        if self.shared.is_draining() {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(resp)
    }
}

/// The server's admission, plus: once the server drains, a refusal closes its connection
/// (anon-http keeps it open otherwise, when the request allows).
struct DrainAwareAdmission {
    inner: SharedAdmission,
    shared: Arc<Shared>,
}

impl HttpAdmission for DrainAwareAdmission {
    type Permit<'a> = <SharedAdmission as HttpAdmission>::Permit<'a>;

    fn admit<'a>(
        &'a self,
        head: &anon_http::Request<'_>,
        arrived: Instant,
    ) -> Result<Self::Permit<'a>, Again> {
        self.inner.admit(head, arrived)
    }

    fn release(&self, permit: Self::Permit<'_>) {
        self.inner.release(permit);
    }

    fn refuse_early(&self, head: &anon_http::Request<'_>, arrived: Instant) -> Option<Again> {
        self.inner.refuse_early(head, arrived)
    }

    fn keep_alive_after_refusal(&self) -> bool {
        !self.shared.is_draining()
    }
}

impl<H: Handler> IntoEngine for Http<H> {
    fn into_engine(self: Box<Self>, ctx: &EngineContext) -> Arc<dyn Engine> {
        let t = &ctx.shared.timeouts;
        let config = self.config.unwrap_or(ServerConfig {
            head_timeout: t.head,
            idle_timeout: t.idle,
            body_read_timeout: t.body_read,
            write_timeout: t.write,
            linger: t.linger,
            ..ServerConfig::DEFAULT
        });
        let handler = DrainAware {
            inner: self.handler,
            shared: Arc::clone(&ctx.shared),
        };
        let server =
            HttpServer::new(handler)
                .with_config(config)
                .with_admission(DrainAwareAdmission {
                    inner: SharedAdmission(Arc::clone(&ctx.shared.admissions)),
                    shared: Arc::clone(&ctx.shared),
                });
        Arc::new(HttpEngine {
            server: Arc::new(server),
        })
    }
}

struct HttpEngine<H: Handler> {
    server: Arc<HttpServer<DrainAware<H>, DrainAwareAdmission>>,
}

impl<H: Handler> Engine for HttpEngine<H> {
    fn protocol(&self) -> &'static str {
        "http"
    }

    fn start(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        if let Err(e) = self.server.serve_when_readable(stream) {
            log::error!("http: cannot hand a connection to the worker: {e}");
        }
    }

    fn busy_reply(&self) -> &[u8] {
        anon_http::OVERLOAD_REPLY
    }

    fn open(&self) -> u64 {
        self.server.stats().snapshot().connections
    }

    fn active(&self) -> u64 {
        let s = self.server.stats().snapshot();
        s.connections.saturating_sub(s.hibernating).max(s.in_flight)
    }

    fn metrics(&self, out: &mut Prom, labels: &str) {
        let s = self.server.stats().snapshot();
        out.counter(
            "anon_http_requests_served_total",
            "Handler responses written.",
            labels,
            s.served,
        );
        out.counter(
            "anon_http_requests_rejected_total",
            "Requests answered 503 by admission (handler not run).",
            labels,
            s.rejected,
        );
        out.counter(
            "anon_http_handler_again_total",
            "Handler results Again (answered 503).",
            labels,
            s.again,
        );
        out.counter(
            "anon_http_handler_errors_total",
            "Other handler errors.",
            labels,
            s.handler_errors,
        );
        out.counter(
            "anon_http_handler_panics_total",
            "Handler panics (answered 500).",
            labels,
            s.panics,
        );
        out.counter(
            "anon_http_malformed_total",
            "Malformed requests.",
            labels,
            s.malformed,
        );
        out.counter(
            "anon_http_timeouts_total",
            "Request heads or bodies that timed out (408).",
            labels,
            s.timeouts,
        );
        out.gauge(
            "anon_http_requests_in_flight",
            "Handlers running now.",
            labels,
            s.in_flight,
        );
        out.gauge(
            "anon_http_connections_hibernating",
            "Keep-alive connections waiting without a fiber.",
            labels,
            s.hibernating,
        );
        out.counter(
            "anon_http_connections_shed_total",
            "Idle keep-alive connections closed to free descriptors (accept hit EMFILE/ENFILE).",
            labels,
            s.shed,
        );
    }
}

/// A raw TCP listener: each connection runs `handler` on its own fiber (reads and writes
/// park the fiber). A connection refused in busy mode, or when no fiber can be spawned,
/// gets the busy banner and is closed.
pub struct Tcp<F> {
    handler: F,
    banner: Cow<'static, [u8]>,
}

impl<F: Fn(TcpStream) + Send + Sync + 'static> Tcp<F> {
    /// A TCP listener running `handler` per connection; the default banner is
    /// `"-TRYAGAIN server busy\r\n"`.
    pub fn new(handler: F) -> Tcp<F> {
        Tcp {
            handler,
            banner: Cow::Borrowed(b"-TRYAGAIN server busy\r\n"),
        }
    }

    /// The bytes a refused connection gets.
    pub fn busy_banner(mut self, banner: impl Into<Cow<'static, [u8]>>) -> Tcp<F> {
        self.banner = banner.into();
        self
    }
}

impl<F: Fn(TcpStream) + Send + Sync + 'static> IntoEngine for Tcp<F> {
    fn into_engine(self: Box<Self>, ctx: &EngineContext) -> Arc<dyn Engine> {
        Arc::new(TcpEngine {
            inner: Arc::new(TcpInner {
                handler: self.handler,
                banner: self.banner,
                idle: ctx.shared.timeouts.idle,
                write: ctx.shared.timeouts.write,
                linger: ctx.shared.timeouts.linger,
                open: AtomicU64::new(0),
                served: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                panics: AtomicU64::new(0),
            }),
        })
    }
}

struct TcpInner<F> {
    handler: F,
    banner: Cow<'static, [u8]>,
    idle: std::time::Duration,
    write: std::time::Duration,
    linger: std::time::Duration,
    open: AtomicU64,
    served: AtomicU64,
    refused: AtomicU64,
    panics: AtomicU64,
}

struct TcpEngine<F> {
    inner: Arc<TcpInner<F>>,
}

/// A connection on its way to its fiber: if the spawn fails (fiber limit, shutdown) it
/// is dropped here and the client gets the banner instead of a silent close.
struct PendingTcp<F: Fn(TcpStream) + Send + Sync + 'static> {
    inner: Arc<TcpInner<F>>,
    stream: Option<TcpStream>,
}

impl<F: Fn(TcpStream) + Send + Sync + 'static> Drop for PendingTcp<F> {
    fn drop(&mut self) {
        self.inner.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(s) = self.stream.take() {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            crate::accept::refuse(s, &self.inner.banner, self.inner.linger);
        }
    }
}

impl<F: Fn(TcpStream) + Send + Sync + 'static> Engine for TcpEngine<F> {
    fn protocol(&self) -> &'static str {
        "tcp"
    }

    fn start(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(self.inner.idle.max(MIN_TIMEOUT)));
        let _ = stream.set_write_timeout(Some(self.inner.write.max(MIN_TIMEOUT)));
        self.inner.open.fetch_add(1, Ordering::Relaxed);
        let mut pending = PendingTcp {
            inner: Arc::clone(&self.inner),
            stream: Some(stream),
        };
        // On `Err` the closure, and `pending` with it, is dropped: the banner goes out.
        let _ = anon_fiber::spawn(move || {
            let Some(s) = pending.stream.take() else {
                return;
            };
            let inner = Arc::clone(&pending.inner);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (inner.handler)(s)));
            match r {
                Ok(()) => {
                    inner.served.fetch_add(1, Ordering::Relaxed);
                }
                // The runtime cancels a fiber at shutdown by unwinding it: let that go on.
                Err(p) if anon_fiber::is_cancellation(&*p) => std::panic::resume_unwind(p),
                Err(p) => {
                    inner.panics.fetch_add(1, Ordering::Relaxed);
                    log::error!("tcp handler panicked: {}", panic_text(&p));
                }
            }
            drop(pending);
        });
    }

    fn busy_reply(&self) -> &[u8] {
        &self.inner.banner
    }

    fn open(&self) -> u64 {
        self.inner.open.load(Ordering::Relaxed)
    }

    fn active(&self) -> u64 {
        self.open()
    }

    fn metrics(&self, out: &mut Prom, labels: &str) {
        out.counter(
            "anon_tcp_connections_served_total",
            "Connections whose handler returned.",
            labels,
            self.inner.served.load(Ordering::Relaxed),
        );
        out.counter(
            "anon_tcp_connections_refused_total",
            "Connections given the busy banner because no fiber could be spawned.",
            labels,
            self.inner.refused.load(Ordering::Relaxed),
        );
        out.counter(
            "anon_tcp_handler_panics_total",
            "Handler panics (connection closed).",
            labels,
            self.inner.panics.load(Ordering::Relaxed),
        );
    }
}

const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1);

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string payload)")
}

/// Writes `bytes` to a stream without waiting (a best effort for short replies).
pub(crate) fn write_now(stream: &TcpStream, bytes: &[u8]) {
    let sock = socket2::SockRef::from(stream);
    let _ = (&*sock).write(bytes);
}
