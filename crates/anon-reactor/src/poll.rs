use crate::sys;
use crate::{Events, Interest, Token};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

/// The epoll instance of one thread: waits for readiness of the registered descriptors.
///
/// Only [`poll`](Poll::poll) blocks, and it needs `&mut self`: one thread owns the `Poll`.
/// Registration goes through the [`Registry`] (shared or cloned freely, `Send + Sync`).
///
/// # Contract
/// - Registrations are edge-triggered unless [`Interest::level`] is used: see
///   [`Interest`] for the "drain until `WouldBlock`" rule and spurious events.
/// - A `timeout` of `None` blocks until an event arrives; `Some(d)` is rounded **up** to
///   whole milliseconds, so `poll` never returns early because of rounding (a zero
///   duration stays zero: check without blocking). Durations beyond `i32::MAX` ms wait
///   that long (about 24.8 days).
/// - A signal interrupting the wait (`EINTR`) makes `poll` return `Ok(())` with no event;
///   callers loop anyway.
///
/// ```
/// use anon_reactor::{Events, Interest, Poll, Token};
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// let mut poll = Poll::new()?;
/// let mut events = Events::with_capacity(16);
/// let (mut a, b) = UnixStream::pair()?;
/// b.set_nonblocking(true)?;
/// poll.registry().register(b.as_raw_fd(), Token(7), Interest::READABLE)?;
/// a.write_all(b"hi")?;
/// poll.poll(&mut events, Some(Duration::from_secs(5)))?;
/// let ev = events.iter().next().expect("one event");
/// assert_eq!(ev.token(), Token(7));
/// assert!(ev.is_readable());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Poll {
    registry: Registry,
}

impl Poll {
    /// A new epoll instance (close-on-exec).
    pub fn new() -> io::Result<Poll> {
        Ok(Poll {
            registry: Registry {
                ep: sys::epoll_create()?,
            },
        })
    }

    /// The registry of this instance.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits for events (see the type docs for timeout rounding and `EINTR`), replacing
    /// the contents of `events`.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let ms = timeout_ms(timeout);
        match sys::epoll_wait(self.registry.ep.as_fd(), events.storage(), ms) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// `None` → -1 (block); otherwise whole milliseconds rounded up, clamped to `i32::MAX`.
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}

impl AsRawFd for Poll {
    fn as_raw_fd(&self) -> RawFd {
        self.registry.ep.as_raw_fd()
    }
}

impl AsFd for Poll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.registry.ep.as_fd()
    }
}

/// Registers descriptors with a [`Poll`]; `Send + Sync`, cloneable with
/// [`try_clone`](Registry::try_clone).
///
/// The registry takes descriptors as `RawFd` and never owns them: the caller keeps the
/// socket (or pipe, eventfd, ...) alive while it is registered.
///
/// # Contract
/// - A descriptor is registered once per epoll instance (a second `register` fails with
///   `EEXIST`; use [`reregister`](Registry::reregister) to change interest or token).
/// - An invalid descriptor (closed, negative, or one epoll cannot watch such as a regular
///   file) gives an `io::Error` (`EBADF`, `EPERM`, ...), never a panic.
/// - [`deregister`](Registry::deregister) stops events: after it returns, no later `poll`
///   reports the descriptor (events already returned by an earlier `poll` may still be in
///   the caller's [`Events`]).
/// - Closing a descriptor removes it from epoll automatically *only* when it was the last
///   descriptor of the open file description (no `dup`, no forked child holding a copy).
///   Deregister **before** closing: deregistering after close fails with `EBADF` at best,
///   and at worst the number was reused by a new descriptor, which then gets deregistered
///   (or `ENOENT`). A registration whose file stays open through a duplicate keeps
///   reporting events under its token even after the caller closed its own copy.
/// - Tokens are the caller's (see [`Token`]).
#[derive(Debug)]
pub struct Registry {
    ep: OwnedFd,
}

impl Registry {
    /// Starts watching `fd` for `interest`, reporting events under `token`.
    pub fn register(&self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        sys::epoll_ctl(
            self.ep.as_fd(),
            sys::CtlOp::Add,
            fd,
            interest.to_epoll(),
            token.0 as u64,
        )
    }

    /// Changes the token or interest of a registered `fd`; also re-arms a
    /// [oneshot](Interest::oneshot) registration that fired. Pending readiness is reported
    /// again after a reregister, even edge-triggered.
    pub fn reregister(&self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        sys::epoll_ctl(
            self.ep.as_fd(),
            sys::CtlOp::Modify,
            fd,
            interest.to_epoll(),
            token.0 as u64,
        )
    }

    /// Stops watching `fd` (see the type docs about closed descriptors).
    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
        sys::epoll_del(self.ep.as_fd(), fd)
    }

    /// A second handle to the same epoll instance (a duplicated descriptor), e.g. for
    /// another thread. Registrations made through either are the same registrations.
    pub fn try_clone(&self) -> io::Result<Registry> {
        Ok(Registry {
            ep: sys::dup_cloexec(self.ep.as_fd())?,
        })
    }
}

impl AsRawFd for Registry {
    fn as_raw_fd(&self) -> RawFd {
        self.ep.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up_to_whole_ms() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1_000))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1_001))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }
}
