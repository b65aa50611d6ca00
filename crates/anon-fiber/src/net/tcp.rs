use super::connect;
use crate::io::{Awakened, HibernateError, Hibernation, IoCore};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A TCP stream whose reads and writes park the calling fiber (see the [module docs](super)).
///
/// ```
/// use anon_fiber::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let t = std::thread::spawn(move || -> std::io::Result<()> {
///     let (mut s, _) = listener.accept()?;
///     let mut b = [0; 4];
///     s.read_exact(&mut b)?;
///     s.write_all(&b)
/// });
/// let mut c = TcpStream::connect(addr)?;
/// c.write_all(b"ping")?;
/// let mut b = [0; 4];
/// c.read_exact(&mut b)?;
/// assert_eq!(&b, b"ping");
/// t.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    // Field order matters: `core` deregisters before `inner` closes the descriptor.
    core: IoCore,
    inner: std::net::TcpStream,
}

impl TcpStream {
    fn wrap(inner: std::net::TcpStream) -> io::Result<TcpStream> {
        inner.set_nonblocking(true)?;
        Ok(TcpStream {
            core: IoCore::new(inner.as_raw_fd()),
            inner,
        })
    }

    /// Connects to the first address of `addr` that accepts (parking while the handshake
    /// runs).
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout_opt(&a, None) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
        }))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_timeout_opt(addr, Some(timeout))
    }

    fn connect_timeout_opt(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let sock = Socket::new(
            Domain::for_address(*addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        let core = connect(&sock, &SockAddr::from(*addr), timeout)?;
        Ok(TcpStream {
            core,
            inner: sock.into(),
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Bounds each read (`None`: wait forever); a zero duration is `InvalidInput`.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.core.set_read_timeout(d)
    }

    /// Bounds each write.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.core.set_write_timeout(d)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.core.read_timeout()
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.core.write_timeout()
    }

    /// Reads without consuming.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.core.read(|| self.inner.peek(buf))
    }

    /// A second handle to the same socket (both may be used from different fibers).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        TcpStream::wrap(self.inner.try_clone()?)
    }

    /// The pending socket error (`SO_ERROR`), cleared by the read.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// **Hibernation**: gives the stream to the current worker and returns at once; `f`
    /// runs on this worker (outside any fiber, so it should just spawn one) when bytes, an
    /// end-of-stream or an error arrive, or with [`Awakened::TimedOut`] after `timeout`.
    /// No fiber or stack is held meanwhile: this is how an idle keep-alive connection
    /// costs only its socket and this closure.
    ///
    /// `f` runs exactly once, unless the runtime shuts down first (then it is dropped with
    /// the stream). The returned [`Hibernation`] lets the owner run it early with
    /// [`Awakened::Shed`] (e.g. to close the oldest idle connections when the process is
    /// out of descriptors); ignoring the handle is fine.
    ///
    /// Must be called on a worker thread (a fiber, or another such callback): elsewhere,
    /// or if the reactor refuses the descriptor, the stream comes back in the error and
    /// `f` is dropped unrun.
    pub fn on_readable<F>(
        self,
        timeout: Option<Duration>,
        f: F,
    ) -> Result<Hibernation, HibernateError<TcpStream>>
    where
        F: FnOnce(TcpStream, Awakened) + Send + 'static,
    {
        IoCore::hibernate_stream(self, |s| &s.core, timeout, f)
    }
}

fiber_stream_io!(TcpStream);

impl IntoRawFd for TcpStream {
    fn into_raw_fd(self) -> RawFd {
        let TcpStream { core, inner } = self;
        drop(core);
        inner.into_raw_fd()
    }
}

impl From<TcpStream> for OwnedFd {
    fn from(s: TcpStream) -> OwnedFd {
        let TcpStream { core, inner } = s;
        drop(core);
        inner.into()
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;
    /// Adopts a connected std stream (made non-blocking).
    fn try_from(s: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::wrap(s)
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.inner.as_raw_fd())
            .field("local", &self.inner.local_addr().ok())
            .field("peer", &self.inner.peer_addr().ok())
            .finish()
    }
}

/// A TCP listener whose `accept` parks the calling fiber.
pub struct TcpListener {
    core: IoCore,
    inner: std::net::TcpListener,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works (`SO_REUSEADDR` as std does).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::wrap(std::net::TcpListener::bind(addr)?)
    }

    fn wrap(inner: std::net::TcpListener) -> io::Result<TcpListener> {
        inner.set_nonblocking(true)?;
        Ok(TcpListener {
            core: IoCore::new(inner.as_raw_fd()),
            inner,
        })
    }

    /// Accepts a connection (parking until one arrives, at most the accept timeout).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.core.read(|| self.inner.accept())?;
        Ok((TcpStream::wrap(s)?, a))
    }

    /// An iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Bounds each `accept` (`None`: forever).
    pub fn set_accept_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.core.set_read_timeout(d)
    }

    /// A second handle to the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        TcpListener::wrap(self.inner.try_clone()?)
    }

    /// The pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;
    /// Adopts a bound std listener (made non-blocking).
    fn try_from(l: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::wrap(l)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.inner.as_raw_fd())
            .field("local", &self.inner.local_addr().ok())
            .finish()
    }
}

/// Iterator over [`TcpListener::accept`] results.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
