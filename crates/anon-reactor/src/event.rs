use crate::sys;
use crate::Token;
use std::fmt;

/// One readiness event returned by [`Poll::poll`](crate::Poll::poll).
///
/// The flags are hints, not promises: with edge-triggered registrations readiness may be
/// gone by the time the caller acts, and the kernel may report an event that carries no new
/// data at all. The robust reaction to *any* event for a token is "try the I/O until
/// [`WouldBlock`](std::io::ErrorKind::WouldBlock)", using the flags only to skip work
/// (e.g. not writing when only readability was reported).
///
/// Errors (`EPOLLERR`) and hang-ups (`EPOLLHUP`) are reported whatever the interest; the
/// I/O call then returns the actual error or end of file.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct Event {
    // Invariant relied on by `sys::epoll_wait`: `Event` has exactly the layout of the
    // kernel's record (repr(transparent) over it, no other fields).
    pub(crate) inner: sys::RawEvent,
}

impl Event {
    fn flags(&self) -> u32 {
        self.inner.events
    }

    /// The token given when the descriptor was registered.
    pub fn token(&self) -> Token {
        Token(self.inner.u64 as usize)
    }

    /// Readable: data (or a pending connection, or end of file) may be available; priority
    /// data also counts as readable.
    pub fn is_readable(&self) -> bool {
        self.flags() & (sys::EPOLLIN | sys::EPOLLPRI) != 0
    }

    /// Writable: buffer space may be available.
    pub fn is_writable(&self) -> bool {
        self.flags() & sys::EPOLLOUT != 0
    }

    /// An error condition (`EPOLLERR`), e.g. a refused connection; read it with
    /// `SO_ERROR` or by doing the I/O.
    pub fn is_error(&self) -> bool {
        self.flags() & sys::EPOLLERR != 0
    }

    /// The read side is closed: the peer shut down its write half (`EPOLLRDHUP`) or the
    /// descriptor hung up (`EPOLLHUP`). Reading will return end of file once drained.
    pub fn is_read_closed(&self) -> bool {
        let f = self.flags();
        f & sys::EPOLLHUP != 0 || (f & sys::EPOLLIN != 0 && f & sys::EPOLLRDHUP != 0)
    }

    /// The write side is closed: hang-up, or an error while writable interest was set
    /// (writing will fail, e.g. with `EPIPE`), or a pipe whose read end was closed.
    pub fn is_write_closed(&self) -> bool {
        let f = self.flags();
        f & sys::EPOLLHUP != 0
            || (f & sys::EPOLLOUT != 0 && f & sys::EPOLLERR != 0)
            || f == sys::EPOLLERR
    }

    /// Priority data is available (`EPOLLPRI`).
    pub fn is_priority(&self) -> bool {
        self.flags() & sys::EPOLLPRI != 0
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token())
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("error", &self.is_error())
            .field("read_closed", &self.is_read_closed())
            .field("write_closed", &self.is_write_closed())
            .field("priority", &self.is_priority())
            .finish()
    }
}

/// Storage for the events of one [`Poll::poll`](crate::Poll::poll) call.
///
/// Allocated once with a fixed capacity and reused: `poll` overwrites it in place (the
/// kernel writes straight into it), so there is no allocation per event or per call. A
/// `poll` returns at most `capacity()` events; the rest stay queued in the kernel for the
/// next call (which is fair: epoll rotates ready descriptors).
///
/// ```
/// use anon_reactor::Events;
/// let events = Events::with_capacity(256);
/// assert!(events.is_empty());
/// assert_eq!(events.capacity(), 256);
/// ```
pub struct Events {
    // Invariant: `inner.capacity()` is the capacity asked for (at least 1) and never
    // changes; `inner.len()` is the number of events of the last poll.
    inner: Vec<Event>,
}

impl Events {
    /// Room for `capacity` events per poll (at least 1).
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            inner: Vec::with_capacity(capacity.max(1)),
        }
    }

    /// The events of the last poll.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.inner.iter()
    }

    /// How many events the last poll returned.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the last poll returned no event.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The most events one poll can return.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Forgets the events (keeps the storage).
    pub fn clear(&mut self) {
        self.inner.clear();
    }

    pub(crate) fn storage(&mut self) -> &mut Vec<Event> {
        &mut self.inner
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
