//! Fiber-blocking sockets: `std::io::Read`/`Write` that park the fiber instead of the
//! thread.
//!
//! Every socket is non-blocking underneath. A call that gets `EAGAIN` registers the
//! descriptor with the current worker's reactor (once, edge-triggered), parks the fiber and
//! retries when readiness arrives. Outside a fiber the same call waits in `poll(2)`, so the
//! types behave like blocking `std` sockets there. Timeouts (`set_read_timeout`,
//! `set_write_timeout`) bound each operation and end it with `ErrorKind::TimedOut`.

/// `Read`/`Write` (for the stream and for `&stream`), `AsRawFd` and `AsFd` of a
/// fiber-blocking stream whose fields are `inner` (a std stream) and `core` (`IoCore`).
macro_rules! fiber_stream_io {
    ($t:ty) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.core
                    .read(|| std::io::Read::read(&mut &self.inner, buf))
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.core
                    .read(|| std::io::Read::read_vectored(&mut &self.inner, bufs))
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.core
                    .write(|| std::io::Write::write(&mut &self.inner, buf))
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.core
                    .write(|| std::io::Write::write_vectored(&mut &self.inner, bufs))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.inner)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.inner)
            }
        }
    };
}

mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

use crate::io::{IoCore, WRITE};
use socket2::{SockAddr, Socket};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Connects `sock` (non-blocking) to `addr`, waiting for the handshake through `core`.
fn connect(sock: &Socket, addr: &SockAddr, timeout: Option<Duration>) -> io::Result<IoCore> {
    sock.set_nonblocking(true)?;
    let core = IoCore::new(sock.as_raw_fd());
    match sock.connect(addr) {
        Ok(()) => return Ok(core),
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        core.wait(WRITE, deadline)?;
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        // Writable and no error: connected, unless the wake was for something else.
        match sock.peer_addr() {
            Ok(_) => return Ok(core),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
            Err(e) => return Err(e),
        }
    }
}
