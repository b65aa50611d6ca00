//! A fiber-blocking HTTP/1.1 client: a bounded connection pool per origin, connect and
//! read timeouts, and "try again" handling.
//!
//! - **Bounded pool.** At most
//!   [`max_connections_per_origin`](ClientConfig::max_connections_per_origin) connections
//!   (idle or busy) per `host:port`; a request that finds none free gets
//!   [`ClientError::Again`] at once instead of waiting.
//! - **503 + `Retry-After`.** An idempotent request answered `503` is retried after the
//!   `Retry-After` delay (or an exponential backoff without one), with jitter, if the
//!   delay is within [`max_retry_wait`](ClientConfig::max_retry_wait), the per-request
//!   retry limit allows it, and the client-wide retry budget (a token bucket: retries at
//!   most 10 % of requests by default) has a token. Otherwise the 503 becomes
//!   [`ClientError::Again`], which converts into [`HandlerError::Again`](crate::HandlerError)
//!   so a handler passes a downstream's overload up with `?`.
//! - **Timeouts.** Connect, and each read and write.
//! - A pooled connection that the server closed while idle is noticed before use (or on
//!   the first read) and the request is sent again on a new connection; this does not
//!   count as a retry.
//!
//! Requests are sent with the `http` crate's `Request<B>` (`B: AsRef<[u8]>`; only `http`
//! URIs) and responses come back whole as `Response<Vec<u8>>`, bounded by
//! [`max_response_body`](ClientConfig::max_response_body). On a fiber every wait parks the
//! fiber; elsewhere it blocks the thread.
//!
//! ```
//! use anon_http::client::{Client, ClientError};
//! use anon_http::{Again, HandlerError};
//!
//! // A downstream "try again" travels up through a handler with `?`.
//! fn handler(client: &Client) -> Result<Vec<u8>, HandlerError> {
//!     let resp = client.get("http://127.0.0.1:9/")?; // nothing listens on port 9
//!     Ok(resp.into_body())
//! }
//! let client = Client::new(Default::default());
//! let err = handler(&client).unwrap_err();
//! assert_eq!(err.status(), 502); // a refused connection is a downstream failure
//! let again: HandlerError = ClientError::Again(Again::DEFAULT).into();
//! assert_eq!(again.status(), 503);
//! ```

mod budget;
mod response;

use std::collections::HashMap;
use std::io::{self, IoSlice, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anon_fiber::net::TcpStream;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode};

pub use budget::RetryBudgetConfig;

use crate::{encode_request_head, Again, HandlerError, Version};
use budget::{Jitter, RetryBudget};
use response::{read_response, ReadError};

/// Settings of a [`Client`]; every field has a documented default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientConfig {
    /// Connections per origin, idle and busy together. Default 8.
    pub max_connections_per_origin: usize,
    /// Longest TCP handshake. Default 1 s.
    pub connect_timeout: Duration,
    /// Longest wait for each read. Default 10 s.
    pub read_timeout: Duration,
    /// Longest wait for each write. Default 10 s.
    pub write_timeout: Duration,
    /// An idle pooled connection older than this is closed instead of reused (keep it
    /// below the servers' idle timeout; Anon's is 15 s). Default 10 s.
    pub idle_timeout: Duration,
    /// Largest response head. Default 64 KiB.
    pub max_response_head: usize,
    /// Largest response body. Default 8 MiB.
    pub max_response_body: u64,
    /// Retries of one request after a `503`. Default 2.
    pub max_retries: u32,
    /// A `503` whose wait (Retry-After or backoff, before jitter) is longer than this is
    /// not retried but returned as [`ClientError::Again`]. Default 2 s.
    pub max_retry_wait: Duration,
    /// The first backoff when a `503` has no `Retry-After` (doubled per retry). Default
    /// 50 ms.
    pub backoff_base: Duration,
    /// Retry non-idempotent requests (POST, PATCH) after a `503` too. Default off.
    pub retry_non_idempotent: bool,
    /// The client-wide retry budget.
    pub retry_budget: RetryBudgetConfig,
}

impl ClientConfig {
    /// The defaults listed on each field.
    pub const DEFAULT: ClientConfig = ClientConfig {
        max_connections_per_origin: 8,
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(10),
        write_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        max_response_head: 64 * 1024,
        max_response_body: 8 * 1024 * 1024,
        max_retries: 2,
        max_retry_wait: Duration::from_secs(2),
        backoff_base: Duration::from_millis(50),
        retry_non_idempotent: false,
        retry_budget: RetryBudgetConfig::DEFAULT,
    };
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::DEFAULT
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Try again later: the origin's pool is exhausted, or the server answered `503`
    /// and no retry was allowed (its `Retry-After` is kept).
    #[error(transparent)]
    Again(#[from] Again),
    /// The request cannot be sent (not an `http://` URI, no host, a bad header...).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Connecting failed (refused, unreachable, timed out, name not resolved).
    #[error("connecting to {origin}: {source}")]
    Connect {
        /// `host:port`.
        origin: String,
        /// The cause.
        source: io::Error,
    },
    /// Reading or writing failed (a timeout is `ErrorKind::TimedOut`).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The response broke HTTP/1.1.
    #[error("malformed response: {0}")]
    Protocol(&'static str),
    /// The response head or body is larger than the configured limit.
    #[error("response larger than the limit")]
    TooLarge,
}

impl ClientError {
    /// The [`Again`] inside, if this is "try again".
    pub fn again(&self) -> Option<Again> {
        match self {
            ClientError::Again(a) => Some(*a),
            _ => None,
        }
    }
}

impl From<ClientError> for HandlerError {
    /// "Try again" stays "try again" (`503`); every other failure is a downstream
    /// failure (`502`).
    fn from(e: ClientError) -> HandlerError {
        match e {
            ClientError::Again(a) => HandlerError::Again(a),
            e => HandlerError::Upstream(Box::new(e)),
        }
    }
}

/// `host:port` of an `http` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &http::Uri) -> Result<Origin, ClientError> {
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(ClientError::InvalidRequest("only http:// URIs")),
            None => return Err(ClientError::InvalidRequest("URI without a scheme")),
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(ClientError::InvalidRequest("URI without a host"))?;
        Ok(Origin {
            host: host.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(80),
        })
    }

    fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Default)]
struct PoolEntry {
    idle: Vec<(TcpStream, Instant)>,
    /// Connections open for this origin: idle ones plus those lent out.
    open: usize,
}

/// A connection lent out of the pool; dropped (closed) unless given back.
struct Lease<'c> {
    client: &'c Client,
    origin: &'c Origin,
    stream: Option<TcpStream>,
    reused: bool,
}

impl Lease<'_> {
    fn stream(&self) -> &TcpStream {
        self.stream
            .as_ref()
            .expect("a lease holds its stream until dropped")
    }

    fn give_back(mut self) {
        if let Some(s) = self.stream.take() {
            let mut pools = self.client.lock();
            match pools.get_mut(self.origin) {
                Some(e) => e.idle.push((s, Instant::now())),
                None => drop(s),
            }
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.stream.take() {
            drop(s);
            self.client.release(self.origin);
        }
    }
}

/// Counters of a [`Client`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Requests made (retries not included).
    pub requests: u64,
    /// Retries sent after a `503`.
    pub retries: u64,
    /// Retry-budget tokens left.
    pub budget_tokens: f64,
}

/// A fiber-blocking HTTP/1.1 client (see the [module docs](self)). Share it (it is
/// `Sync`); the pool and the retry budget are per client.
pub struct Client {
    cfg: ClientConfig,
    pools: Mutex<HashMap<Origin, PoolEntry>>,
    budget: RetryBudget,
    jitter: Jitter,
    requests: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with these settings.
    pub fn new(cfg: ClientConfig) -> Client {
        Client {
            cfg,
            pools: Mutex::new(HashMap::new()),
            budget: RetryBudget::new(cfg.retry_budget),
            jitter: Jitter::new(),
            requests: Default::default(),
            retries: Default::default(),
        }
    }

    /// A shareable client with these settings.
    pub fn shared(cfg: ClientConfig) -> Arc<Client> {
        Arc::new(Client::new(cfg))
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> ClientStats {
        use std::sync::atomic::Ordering::Relaxed;
        ClientStats {
            requests: self.requests.load(Relaxed),
            retries: self.retries.load(Relaxed),
            budget_tokens: self.budget.tokens(),
        }
    }

    /// Connections open to `host:port` now (idle and busy).
    pub fn open_connections(&self, host: &str, port: u16) -> usize {
        let origin = Origin {
            host: host.to_ascii_lowercase(),
            port,
        };
        self.lock().get(&origin).map_or(0, |e| e.open)
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> Result<Response<Vec<u8>>, ClientError> {
        let req = Request::get(url)
            .body(Vec::new())
            .map_err(|_| ClientError::InvalidRequest("invalid URI"))?;
        self.send(req)
    }

    /// Sends `req` and reads the whole response. A `503` comes back as
    /// [`ClientError::Again`] once no retry is allowed; other statuses are `Ok`.
    pub fn send<B: AsRef<[u8]>>(&self, req: Request<B>) -> Result<Response<Vec<u8>>, ClientError> {
        use std::sync::atomic::Ordering::Relaxed;
        let origin = Origin::of(req.uri())?;
        self.requests.fetch_add(1, Relaxed);
        self.budget.deposit();
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let mut head = Vec::with_capacity(256);
        encode_head(&req, &origin, &mut head)?;
        let mut attempt = 0u32;
        loop {
            let resp = self.exchange(
                &origin,
                &head,
                req.body().as_ref(),
                req.method() == Method::HEAD,
            )?;
            if resp.status() != StatusCode::SERVICE_UNAVAILABLE {
                return Ok(resp);
            }
            let retry_after = retry_after(&resp);
            let again = Again::after(retry_after.unwrap_or(Again::DEFAULT.retry_after));
            let wait = retry_after.unwrap_or(
                self.cfg
                    .backoff_base
                    .saturating_mul(1u32 << attempt.min(16)),
            );
            let allowed = (idempotent || self.cfg.retry_non_idempotent)
                && attempt < self.cfg.max_retries
                && wait <= self.cfg.max_retry_wait
                && self.budget.withdraw();
            if !allowed {
                return Err(ClientError::Again(again));
            }
            self.retries.fetch_add(1, Relaxed);
            let wait = self
                .jitter
                .spread(wait)
                .min(self.cfg.max_retry_wait.max(wait));
            anon_fiber::sleep(wait);
            attempt += 1;
        }
    }

    /// One request/response exchange; a pooled connection found closed by the server is
    /// replaced by a new one once.
    fn exchange(
        &self,
        origin: &Origin,
        head: &[u8],
        body: &[u8],
        head_request: bool,
    ) -> Result<Response<Vec<u8>>, ClientError> {
        let mut fresh_only = false;
        loop {
            let lease = self.checkout(origin, fresh_only)?;
            let mut buf = Vec::new();
            let sent = write_all2(lease.stream(), head, body);
            let read = match sent {
                Ok(()) => read_response(
                    lease.stream(),
                    &mut buf,
                    head_request,
                    self.cfg.max_response_head,
                    self.cfg.max_response_body,
                ),
                Err(e) => Err(ReadError::NothingReceived(e)),
            };
            match read {
                Ok(r) => {
                    if r.reusable {
                        lease.give_back();
                    }
                    return Ok(r.response);
                }
                Err(ReadError::NothingReceived(e)) => {
                    if lease.reused && !fresh_only {
                        fresh_only = true;
                        continue;
                    }
                    return Err(ClientError::Io(e));
                }
                Err(ReadError::Failed(e)) => return Err(e),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, PoolEntry>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection lent from the pool (a live idle one unless `fresh_only`), or a new
    /// one if the origin has room, else `Again`.
    fn checkout<'c>(
        &'c self,
        origin: &'c Origin,
        fresh_only: bool,
    ) -> Result<Lease<'c>, ClientError> {
        {
            let mut pools = self.lock();
            let entry = pools.entry(origin.clone()).or_default();
            if !fresh_only {
                while let Some((s, since)) = entry.idle.pop() {
                    if since.elapsed() < self.cfg.idle_timeout && still_open(&s) {
                        return Ok(Lease {
                            client: self,
                            origin,
                            stream: Some(s),
                            reused: true,
                        });
                    }
                    entry.open -= 1;
                }
            }
            if entry.open >= self.cfg.max_connections_per_origin {
                return Err(ClientError::Again(Again::DEFAULT));
            }
            entry.open += 1;
        }
        match self.connect(origin) {
            Ok(s) => Ok(Lease {
                client: self,
                origin,
                stream: Some(s),
                reused: false,
            }),
            Err(e) => {
                self.release(origin);
                Err(e)
            }
        }
    }

    /// A connection of `origin` was closed.
    fn release(&self, origin: &Origin) {
        let mut pools = self.lock();
        if let Some(e) = pools.get_mut(origin) {
            e.open = e.open.saturating_sub(1);
            if e.open == 0 && e.idle.is_empty() {
                pools.remove(origin);
            }
        }
    }

    fn connect(&self, origin: &Origin) -> Result<TcpStream, ClientError> {
        let fail = |source| ClientError::Connect {
            origin: origin.label(),
            source,
        };
        let addrs = resolve(origin).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => ClientError::Again(Again::DEFAULT),
            _ => fail(e),
        })?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, nonzero(self.cfg.connect_timeout)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    s.set_read_timeout(Some(nonzero(self.cfg.read_timeout)))
                        .map_err(fail)?;
                    s.set_write_timeout(Some(nonzero(self.cfg.write_timeout)))
                        .map_err(fail)?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(fail(last))
    }
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// The origin's addresses: IP literals directly, names through the blocking pool (the
/// resolver blocks its thread).
fn resolve(origin: &Origin) -> io::Result<Vec<SocketAddr>> {
    let host = origin.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, origin.port)]);
    }
    let name = (host.to_string(), origin.port);
    match anon_fiber::spawn_blocking(move || name.to_socket_addrs().map(Vec::from_iter)) {
        Ok(r) => r,
        Err(anon_fiber::BlockingError::Again) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// A pooled connection the server has not closed and that has no stray bytes.
fn still_open(s: &TcpStream) -> bool {
    let sock = socket2::SockRef::from(s);
    let mut b = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match sock.peek(&mut b) {
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}

/// `Retry-After` in delay-seconds or as an HTTP-date.
fn retry_after(resp: &Response<Vec<u8>>) -> Option<Duration> {
    let v = resp
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Encodes the request head: the target from the URI, `Host` unless given, the framing
/// field from the body (callers' `Content-Length`/`Transfer-Encoding` are replaced).
fn encode_head<B: AsRef<[u8]>>(
    req: &Request<B>,
    origin: &Origin,
    out: &mut Vec<u8>,
) -> Result<(), ClientError> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let target = if target.is_empty() { "/" } else { target };
    let host_value;
    let mut fields: Vec<(&str, &[u8])> = Vec::with_capacity(req.headers().len() + 2);
    if !req.headers().contains_key(HOST) {
        host_value = if origin.port == 80 {
            origin.host.clone()
        } else {
            origin.label()
        };
        fields.push(("Host", host_value.as_bytes()));
    }
    for (name, value) in req.headers() {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        fields.push((name.as_str(), value.as_bytes()));
    }
    let len = req.body().as_ref().len();
    let mut digits = itoa::Buffer::new();
    let needs_length =
        len > 0 || matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    if needs_length {
        fields.push(("Content-Length", digits.format(len).as_bytes()));
    }
    encode_request_head(out, req.method().as_str(), target, Version::Http11, &fields)
        .map_err(|_| ClientError::InvalidRequest("method, target or header not encodable"))
}

/// Writes `a` then `b`, vectored.
fn write_all2(stream: &TcpStream, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut bufs = [IoSlice::new(a), IoSlice::new(b)];
    let mut slices: &mut [IoSlice<'_>] = &mut bufs;
    IoSlice::advance_slices(&mut slices, 0);
    let mut w = stream;
    while !slices.is_empty() {
        let n = w.write_vectored(slices)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_need_http_and_a_host() {
        let o = Origin::of(&"http://Example.com:8080/x".parse().unwrap()).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("example.com", 8080));
        assert_eq!(Origin::of(&"http://a/".parse().unwrap()).unwrap().port, 80);
        assert!(Origin::of(&"https://a/".parse().unwrap()).is_err());
        assert!(Origin::of(&"/relative".parse().unwrap()).is_err());
    }

    #[test]
    fn heads_carry_host_and_length() {
        let req = Request::post("http://h:81/p?q=1")
            .header("X-A", "b")
            .header("Content-Length", "999")
            .body(b"abc".to_vec())
            .unwrap();
        let o = Origin::of(req.uri()).unwrap();
        let mut out = Vec::new();
        encode_head(&req, &o, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nHost: h:81\r\nx-a: b\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut r = Response::new(Vec::new());
        assert_eq!(retry_after(&r), None);
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&r), Some(Duration::from_secs(3)));
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            "Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&r), Some(Duration::ZERO));
    }
}
