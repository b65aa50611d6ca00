use crate::sys;
use crate::Signal;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Watches a child process's exit as a readiness event (`pidfd_open`, Linux 5.3+).
///
/// Register [`as_raw_fd`](PidFd::as_raw_fd) for [`Interest::READABLE`](crate::Interest):
/// it becomes readable once the process has exited (and stays so). Then
/// [`try_wait`](PidFd::try_wait) reaps it and returns its status.
///
/// A pidfd refers to one process, not to a number, so it cannot be fooled by pid reuse
/// *after* it is opened. Open it while the child is still unreaped (a zombie still owns
/// its pid): for a child you spawned, right after spawning and before anything waits for
/// it. `try_wait` reaps the child: `std::process::Child::wait` on the same child then
/// fails with `ECHILD`, so use one or the other. Only a parent can reap: for a process
/// that is not your child, the readiness event still works but `try_wait` returns an error
/// (`ECHILD`).
///
/// ```
/// use anon_reactor::PidFd;
/// let child = std::process::Command::new("true").spawn()?;
/// let pidfd = PidFd::open(child.id())?;
/// let status = loop {
///     if let Some(s) = pidfd.try_wait()? {
///         break s;
///     }
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// };
/// assert!(status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: u32,
}

impl PidFd {
    /// Opens a pidfd for process `pid` (e.g. `Child::id()`).
    pub fn open(pid: u32) -> io::Result<PidFd> {
        let raw = i32::try_from(pid)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
        Ok(PidFd {
            fd: sys::pidfd_open(raw)?,
            pid,
        })
    }

    /// The process id this descriptor was opened for.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The descriptor to register for readability.
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends `signal` to the process (`pidfd_send_signal`, Linux 5.1+): like `kill`, but
    /// it cannot hit another process that reused the pid. Fails with `ESRCH` once the
    /// process has been reaped.
    pub fn send_signal(&self, signal: Signal) -> io::Result<()> {
        sys::pidfd_send_signal(self.fd.as_fd(), signal.as_raw())
    }

    /// Reaps the child if it has exited (`waitid(P_PIDFD, WEXITED | WNOHANG)`); `Ok(None)`
    /// while it still runs. After a successful reap, later calls fail with `ECHILD`.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        Ok(sys::waitid_pidfd(self.fd.as_fd())?.map(|end| match end {
            // The wait-status encoding `ExitStatus::from_raw` expects.
            sys::ChildEnd::Exited(code) => ExitStatus::from_raw((code & 0xff) << 8),
            sys::ChildEnd::Killed(sig, core) => {
                ExitStatus::from_raw((sig & 0x7f) | if core { 0x80 } else { 0 })
            }
        }))
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
