use crate::sys;
use std::fmt;
use std::ops::BitOr;

/// What readiness a registration asks for, and how it is reported.
///
/// Start from [`Interest::READABLE`], [`Interest::WRITABLE`] or [`Interest::PRIORITY`],
/// combine with `|` or [`add`](Interest::add), then apply modifiers:
///
/// - **Edge-triggered is the default.** An event is delivered when readiness *changes*
///   (data arrives, buffer space frees up), not while it persists. After an event the
///   caller must drain: read (or write) until the call returns
///   [`WouldBlock`](std::io::ErrorKind::WouldBlock); stopping early means no further event
///   until new data arrives. Events may also be spurious (readiness may be gone by the time
///   the caller acts), so a `WouldBlock` right after an event is normal.
/// - [`oneshot`](Interest::oneshot): after one event the registration is disabled (it
///   stays registered) until re-armed with [`Registry::reregister`](crate::Registry::reregister).
/// - [`exclusive`](Interest::exclusive) (`EPOLLEXCLUSIVE`): for a listener registered in
///   several threads' reactors, wake one (or a few) of them per connection instead of all.
///   The kernel allows it only with `register` (not `reregister`), and not with `oneshot`
///   or `PRIORITY`; such combinations are rejected with `EINVAL`.
/// - [`level`](Interest::level): level-triggered; an event is delivered on every `poll`
///   while the descriptor stays ready.
///
/// Readable interest also asks for peer half-close (`EPOLLRDHUP`), reported by
/// [`Event::is_read_closed`](crate::Event::is_read_closed). Errors and hang-ups are always
/// reported, whatever the interest.
///
/// ```
/// use anon_reactor::Interest;
/// let i = (Interest::READABLE | Interest::WRITABLE).oneshot();
/// assert!(i.is_readable() && i.is_writable() && i.is_oneshot());
/// assert!(!i.is_level());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

const READABLE: u8 = 1 << 0;
const WRITABLE: u8 = 1 << 1;
const PRIORITY: u8 = 1 << 2;
const ONESHOT: u8 = 1 << 3;
const EXCLUSIVE: u8 = 1 << 4;
const LEVEL: u8 = 1 << 5;

impl Interest {
    /// Readable (`EPOLLIN`), including peer half-close (`EPOLLRDHUP`).
    pub const READABLE: Interest = Interest(READABLE);
    /// Writable (`EPOLLOUT`).
    pub const WRITABLE: Interest = Interest(WRITABLE);
    /// Priority data, e.g. TCP urgent data (`EPOLLPRI`).
    pub const PRIORITY: Interest = Interest(PRIORITY);

    /// The union of `self` and `other` (the same as `self | other`), modifiers included.
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Disable the registration after one event, until it is re-armed with
    /// [`Registry::reregister`](crate::Registry::reregister).
    #[must_use]
    pub const fn oneshot(self) -> Interest {
        Interest(self.0 | ONESHOT)
    }

    /// Exclusive wakeup (`EPOLLEXCLUSIVE`), for a listener shared by several reactors.
    /// Only valid with [`Registry::register`](crate::Registry::register), and only with
    /// readable/writable interest (not [`oneshot`](Interest::oneshot), not
    /// [`PRIORITY`](Interest::PRIORITY)): the kernel answers `EINVAL` otherwise. Peer
    /// half-close is not requested for exclusive registrations (the kernel forbids it);
    /// it still shows as readability and a read returning end of file.
    #[must_use]
    pub const fn exclusive(self) -> Interest {
        Interest(self.0 | EXCLUSIVE)
    }

    /// Level-triggered instead of the default edge-triggered.
    #[must_use]
    pub const fn level(self) -> Interest {
        Interest(self.0 | LEVEL)
    }

    /// Whether readable readiness is asked for.
    pub const fn is_readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// Whether writable readiness is asked for.
    pub const fn is_writable(self) -> bool {
        self.0 & WRITABLE != 0
    }

    /// Whether priority readiness is asked for.
    pub const fn is_priority(self) -> bool {
        self.0 & PRIORITY != 0
    }

    /// Whether the registration is oneshot.
    pub const fn is_oneshot(self) -> bool {
        self.0 & ONESHOT != 0
    }

    /// Whether the registration is exclusive.
    pub const fn is_exclusive(self) -> bool {
        self.0 & EXCLUSIVE != 0
    }

    /// Whether the registration is level-triggered.
    pub const fn is_level(self) -> bool {
        self.0 & LEVEL != 0
    }

    /// The `epoll_event::events` flags for this interest.
    pub(crate) fn to_epoll(self) -> u32 {
        let mut f = 0;
        if self.is_readable() {
            f |= sys::EPOLLIN;
            // The kernel refuses EPOLLRDHUP together with EPOLLEXCLUSIVE.
            if !self.is_exclusive() {
                f |= sys::EPOLLRDHUP;
            }
        }
        if self.is_writable() {
            f |= sys::EPOLLOUT;
        }
        if self.is_priority() {
            f |= sys::EPOLLPRI;
        }
        if !self.is_level() {
            f |= sys::EPOLLET;
        }
        if self.is_oneshot() {
            f |= sys::EPOLLONESHOT;
        }
        if self.is_exclusive() {
            f |= sys::EPOLLEXCLUSIVE;
        }
        f
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (READABLE, "READABLE"),
            (WRITABLE, "WRITABLE"),
            (PRIORITY, "PRIORITY"),
            (ONESHOT, "ONESHOT"),
            (EXCLUSIVE, "EXCLUSIVE"),
            (LEVEL, "LEVEL"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if self.0 & LEVEL == 0 {
            f.write_str(if first { "EDGE" } else { " | EDGE" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_epoll() {
        let f = Interest::READABLE.to_epoll();
        assert_eq!(f, sys::EPOLLIN | sys::EPOLLRDHUP | sys::EPOLLET);
        let f = Interest::WRITABLE.level().oneshot().to_epoll();
        assert_eq!(f, sys::EPOLLOUT | sys::EPOLLONESHOT);
        let f = Interest::READABLE.exclusive().to_epoll();
        assert_eq!(f, sys::EPOLLIN | sys::EPOLLET | sys::EPOLLEXCLUSIVE);
        assert_eq!(Interest::PRIORITY.to_epoll(), sys::EPOLLPRI | sys::EPOLLET);
    }

    #[test]
    fn debug_names_bits() {
        let i = (Interest::READABLE | Interest::WRITABLE).oneshot();
        assert_eq!(format!("{i:?}"), "READABLE | WRITABLE | ONESHOT | EDGE");
        assert_eq!(
            format!("{:?}", Interest::READABLE.level()),
            "READABLE | LEVEL"
        );
    }
}
