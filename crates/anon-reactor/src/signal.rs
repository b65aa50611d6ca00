use crate::sys;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// A signal that [`Signals`] can receive. (`SIGKILL` and `SIGSTOP` cannot be caught and
/// are deliberately absent.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGHUP`: hang-up; by convention "reload configuration".
    Hup,
    /// `SIGINT`: interrupt (Ctrl-C).
    Int,
    /// `SIGQUIT`: quit.
    Quit,
    /// `SIGTERM`: polite termination request.
    Term,
    /// `SIGCHLD`: a child stopped or exited.
    Chld,
    /// `SIGUSR1`: user-defined.
    Usr1,
    /// `SIGUSR2`: user-defined.
    Usr2,
    /// `SIGPIPE`: write to a closed pipe or socket.
    Pipe,
    /// `SIGWINCH`: terminal size changed.
    Winch,
    /// `SIGALRM`: timer alarm.
    Alrm,
}

const ALL: [Signal; 10] = [
    Signal::Hup,
    Signal::Int,
    Signal::Quit,
    Signal::Term,
    Signal::Chld,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Pipe,
    Signal::Winch,
    Signal::Alrm,
];

impl Signal {
    /// The signal's number (e.g. 15 for `SIGTERM` on Linux).
    pub fn as_raw(self) -> i32 {
        match self {
            Signal::Hup => sys::SIGHUP,
            Signal::Int => sys::SIGINT,
            Signal::Quit => sys::SIGQUIT,
            Signal::Term => sys::SIGTERM,
            Signal::Chld => sys::SIGCHLD,
            Signal::Usr1 => sys::SIGUSR1,
            Signal::Usr2 => sys::SIGUSR2,
            Signal::Pipe => sys::SIGPIPE,
            Signal::Winch => sys::SIGWINCH,
            Signal::Alrm => sys::SIGALRM,
        }
    }

    /// The `Signal` with number `n`, if it is one of those listed.
    pub fn from_raw(n: i32) -> Option<Signal> {
        ALL.into_iter().find(|s| s.as_raw() == n)
    }
}

/// One received signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// Which signal.
    pub signal: Signal,
    /// The sending process (0 if the kernel sent it).
    pub pid: u32,
    /// The real user id of the sender.
    pub uid: u32,
}

/// Receives signals as readiness events: a signalfd, with the signals blocked.
///
/// Register [`as_raw_fd`](Signals::as_raw_fd) for [`Interest::READABLE`](crate::Interest)
/// and, on each event, call [`receive`](Signals::receive) until it returns `Ok(None)`
/// (edge-triggered: drain). Signals of one kind that arrive while one is already pending
/// merge into one (standard signals do not queue).
///
/// # Blocking in every thread
/// A signalfd only sees signals that are *blocked*: otherwise the default action (for
/// `SIGTERM`: kill the process) or a handler runs first. The mask is per thread and a
/// signal sent to the process goes to any thread that does not block it, so **every
/// thread** of the process must block the signals. [`Signals::new`] blocks them in the
/// calling thread; threads spawned afterwards inherit that mask. So either create
/// `Signals` on the main thread before spawning any thread, or call [`block_signals`] at
/// the start of every thread that already exists or is created elsewhere.
///
/// Dropping `Signals` closes the descriptor but leaves the signals blocked (unblocking
/// would run the default action for one already pending).
///
/// ```
/// use anon_reactor::{Signal, Signals};
/// let signals = Signals::new(&[Signal::Usr1])?;
/// assert_eq!(signals.receive()?, None); // nothing pending: non-blocking
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    fd: OwnedFd,
    signals: Vec<Signal>,
}

impl Signals {
    /// Blocks `signals` in the calling thread and opens a non-blocking signalfd for them.
    pub fn new(signals: &[Signal]) -> io::Result<Signals> {
        block_signals(signals)?;
        let raw: Vec<i32> = signals.iter().map(|s| s.as_raw()).collect();
        Ok(Signals {
            fd: sys::signalfd(&raw)?,
            signals: signals.to_vec(),
        })
    }

    /// The descriptor to register for readability.
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The signals this instance receives.
    pub fn signals(&self) -> &[Signal] {
        &self.signals
    }

    /// Takes one pending signal, or `Ok(None)` if none is pending (never blocks).
    pub fn receive(&self) -> io::Result<Option<SignalInfo>> {
        let Some((signo, pid, uid)) = sys::signalfd_read(self.fd.as_fd())? else {
            return Ok(None);
        };
        let signal = Signal::from_raw(signo).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("signalfd reported unexpected signal {signo}"),
            )
        })?;
        Ok(Some(SignalInfo { signal, pid, uid }))
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("fd", &self.fd.as_raw_fd())
            .field("signals", &self.signals)
            .finish()
    }
}

/// Blocks `signals` in the calling thread (see [`Signals`]: every thread must block the
/// signals a signalfd is to receive).
pub fn block_signals(signals: &[Signal]) -> io::Result<()> {
    let raw: Vec<i32> = signals.iter().map(|s| s.as_raw()).collect();
    sys::block_signals(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_round_trip() {
        for s in ALL {
            assert_eq!(Signal::from_raw(s.as_raw()), Some(s));
        }
        assert_eq!(Signal::Term.as_raw(), 15);
        assert_eq!(Signal::from_raw(9), None); // SIGKILL cannot be received
    }
}
