use super::connect;
use crate::io::{Awakened, HibernateError, Hibernation, IoCore};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A Unix stream socket whose reads and writes park the calling fiber.
pub struct UnixStream {
    core: IoCore,
    inner: std::os::unix::net::UnixStream,
}

impl UnixStream {
    fn wrap(inner: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        inner.set_nonblocking(true)?;
        Ok(UnixStream {
            core: IoCore::new(inner.as_raw_fd()),
            inner,
        })
    }

    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        let core = connect(&sock, &SockAddr::unix(path)?, None)?;
        Ok(UnixStream {
            core,
            inner: std::os::fd::OwnedFd::from(sock).into(),
        })
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::wrap(a)?, UnixStream::wrap(b)?))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Bounds each read.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.core.set_read_timeout(d)
    }

    /// Bounds each write.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.core.set_write_timeout(d)
    }

    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        UnixStream::wrap(self.inner.try_clone()?)
    }

    /// Hibernation, as [`TcpStream::on_readable`](crate::net::TcpStream::on_readable).
    pub fn on_readable<F>(
        self,
        timeout: Option<Duration>,
        f: F,
    ) -> Result<Hibernation, HibernateError<UnixStream>>
    where
        F: FnOnce(UnixStream, Awakened) + Send + 'static,
    {
        IoCore::hibernate_stream(self, |s| &s.core, timeout, f)
    }
}

fiber_stream_io!(UnixStream);

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

/// A Unix listener whose `accept` parks the calling fiber.
pub struct UnixListener {
    core: IoCore,
    inner: std::os::unix::net::UnixListener,
}

impl UnixListener {
    /// Binds to `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let inner = std::os::unix::net::UnixListener::bind(path)?;
        inner.set_nonblocking(true)?;
        Ok(UnixListener {
            core: IoCore::new(inner.as_raw_fd()),
            inner,
        })
    }

    /// Accepts a connection.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.core.read(|| self.inner.accept())?;
        Ok((UnixStream::wrap(s)?, a))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Bounds each `accept`.
    pub fn set_accept_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.core.set_read_timeout(d)
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}
