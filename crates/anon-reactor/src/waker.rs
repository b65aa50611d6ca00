use crate::sync::{AtomicBool, Ordering};
use crate::sys;
use crate::{Interest, Registry, Token};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// Wakes a [`Poll`](crate::Poll) from any thread: an eventfd registered under a token.
///
/// `Waker` is `Send + Sync`; share it with an `Arc`. Wakes **coalesce**: after the first
/// [`wake`](Waker::wake), further wakes are free (one atomic operation, no system call)
/// until the poll owner calls [`reset`](Waker::reset). So a burst of wakes produces at
/// least one event, typically exactly one.
///
/// # The protocol (no wakeup is lost)
/// A waking thread first publishes its work (pushes to a queue, sets a flag), then calls
/// `wake()`. The poll owner, when it sees an event with the waker's token:
/// 1. calls `reset()`, **then**
/// 2. looks for work (drains the queue, reads the flags).
///
/// Every wake either happens before `reset()` — then its work was published before the
/// owner's step 2 and is seen there (`wake` and `reset` synchronise through one atomic) —
/// or after it, and then it writes the eventfd again, producing a new event. A poll owner
/// that never calls `reset()` gets one event and then no more: `reset` is mandatory.
///
/// The eventfd is registered edge-triggered and never drained on the hot path: every
/// write produces a fresh edge. (Its counter is drained only in the practically
/// unreachable case that it would overflow.)
///
/// Dropping the `Waker` closes the eventfd, which removes its registration.
///
/// ```
/// use anon_reactor::{Events, Poll, Token, Waker};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// const WAKE: Token = Token(usize::MAX);
/// let mut poll = Poll::new()?;
/// let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
/// let w = Arc::clone(&waker);
/// std::thread::spawn(move || w.wake()).join().unwrap()?;
/// let mut events = Events::with_capacity(8);
/// poll.poll(&mut events, Some(Duration::from_secs(5)))?;
/// assert!(events.iter().any(|e| e.token() == WAKE));
/// waker.reset(); // then look for the work the waker announced
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
    state: WakeFlag,
}

impl Waker {
    /// Creates an eventfd and registers it (edge-triggered, readable) under `token`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Waker> {
        let fd = sys::eventfd()?;
        registry.register(fd.as_raw_fd(), token, Interest::READABLE)?;
        Ok(Waker {
            fd,
            state: WakeFlag::new(),
        })
    }

    /// Wakes the poll owner (or does nothing if a wake is already pending since the last
    /// [`reset`](Waker::reset)). Callable from any thread.
    pub fn wake(&self) -> io::Result<()> {
        if !self.state.should_notify() {
            return Ok(());
        }
        let r = self.notify();
        if r.is_err() {
            // Nothing was sent: let the next wake try again instead of coalescing into a
            // notification that never happened.
            self.state.reset();
        }
        r
    }

    fn notify(&self) -> io::Result<()> {
        match sys::eventfd_write(self.fd.as_fd(), 1) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The counter is at its maximum: drain it and write again.
                match sys::eventfd_read(self.fd.as_fd()) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                sys::eventfd_write(self.fd.as_fd(), 1)
            }
            r => r,
        }
    }

    /// Re-enables notification; called by the poll owner on seeing the waker's token,
    /// *before* it looks for the announced work (see the type docs).
    pub fn reset(&self) {
        self.state.reset();
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The coalescing flag of a [`Waker`], apart from the eventfd so it can be model-checked.
///
/// `pending == true` means "a notification has been (or is being) sent since the last
/// reset". [`should_notify`](WakeFlag::should_notify) claims the right to send one.
#[derive(Debug)]
#[doc(hidden)]
pub struct WakeFlag {
    pending: AtomicBool,
}

impl WakeFlag {
    /// A flag with no notification pending.
    pub fn new() -> WakeFlag {
        WakeFlag {
            pending: AtomicBool::new(false),
        }
    }

    /// Returns `true` if the caller must send a notification (nothing was pending).
    ///
    /// AcqRel: the release half publishes the waker's work to the `reset` that later
    /// reads this value; the acquire half orders the notification after earlier resets.
    pub fn should_notify(&self) -> bool {
        !self.pending.swap(true, Ordering::AcqRel)
    }

    /// Clears the flag. AcqRel: the acquire half makes the work published before every
    /// wake that found the flag set visible to the caller's following check.
    pub fn reset(&self) {
        self.pending.swap(false, Ordering::AcqRel);
    }
}

impl Default for WakeFlag {
    fn default() -> WakeFlag {
        WakeFlag::new()
    }
}
