//! Every OS call of the crate, and all of its `unsafe`.
//!
//! The rest of the crate is safe Rust over these thin wrappers. Each wrapper turns the C
//! convention (`-1` and `errno`) into `io::Result` through [`cvt`], and hands descriptors
//! out as `OwnedFd` so that closing is never forgotten nor done twice.

use crate::Event;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The kernel's event record, wrapped by [`crate::Event`].
pub(crate) type RawEvent = libc::epoll_event;

// Readiness and registration flags, as the `u32` that `epoll_event::events` holds.
pub(crate) const EPOLLIN: u32 = libc::EPOLLIN as u32;
pub(crate) const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
pub(crate) const EPOLLPRI: u32 = libc::EPOLLPRI as u32;
pub(crate) const EPOLLERR: u32 = libc::EPOLLERR as u32;
pub(crate) const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
pub(crate) const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
pub(crate) const EPOLLET: u32 = libc::EPOLLET as u32;
pub(crate) const EPOLLONESHOT: u32 = libc::EPOLLONESHOT as u32;
pub(crate) const EPOLLEXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;

// Signal numbers used by `crate::Signal`.
pub(crate) const SIGHUP: i32 = libc::SIGHUP;
pub(crate) const SIGINT: i32 = libc::SIGINT;
pub(crate) const SIGQUIT: i32 = libc::SIGQUIT;
pub(crate) const SIGTERM: i32 = libc::SIGTERM;
pub(crate) const SIGCHLD: i32 = libc::SIGCHLD;
pub(crate) const SIGUSR1: i32 = libc::SIGUSR1;
pub(crate) const SIGUSR2: i32 = libc::SIGUSR2;
pub(crate) const SIGPIPE: i32 = libc::SIGPIPE;
pub(crate) const SIGWINCH: i32 = libc::SIGWINCH;
pub(crate) const SIGALRM: i32 = libc::SIGALRM;

/// Turns the C convention (`-1` plus `errno`) into an `io::Result`.
fn cvt<T: IsMinusOne>(r: T) -> io::Result<T> {
    if r.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

trait IsMinusOne: Copy {
    fn is_minus_one(self) -> bool;
}

impl IsMinusOne for libc::c_int {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl IsMinusOne for libc::c_long {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl IsMinusOne for libc::ssize_t {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

/// Takes ownership of a descriptor a successful system call just returned.
fn owned(fd: RawFd) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: `fd` was returned by a successful system call that creates a new descriptor;
    // nobody else owns it, so this `OwnedFd` becomes its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no pointers are passed; the flag is a valid constant.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    Ok(owned(fd))
}

/// The operations of `epoll_ctl`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CtlOp {
    Add,
    Modify,
}

/// `epoll_ctl(ADD or MOD)` of `fd` with `flags` and the caller's `data` (the token).
pub(crate) fn epoll_ctl(
    ep: BorrowedFd<'_>,
    op: CtlOp,
    fd: RawFd,
    flags: u32,
    data: u64,
) -> io::Result<()> {
    let op = match op {
        CtlOp::Add => libc::EPOLL_CTL_ADD,
        CtlOp::Modify => libc::EPOLL_CTL_MOD,
    };
    let mut ev = libc::epoll_event {
        events: flags,
        u64: data,
    };
    // SAFETY: `ep` is a live descriptor for the duration of the call; `ev` is a valid,
    // initialised `epoll_event` the kernel only reads. A bad `fd` makes the kernel return
    // EBADF (or EPERM/EINVAL), which `cvt` turns into an error; it cannot cause UB.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) })?;
    Ok(())
}

/// `epoll_ctl(DEL)` of `fd`.
pub(crate) fn epoll_del(ep: BorrowedFd<'_>, fd: RawFd) -> io::Result<()> {
    // SAFETY: `ep` is live; since Linux 2.6.9 the event pointer may be null for DEL. A bad
    // `fd` is reported as an error by the kernel.
    cvt(unsafe {
        libc::epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            std::ptr::null_mut(),
        )
    })?;
    Ok(())
}

/// `epoll_wait` into the spare capacity of `events` (which is cleared first). `EINTR` is
/// reported as an error for the caller to decide about.
pub(crate) fn epoll_wait(
    ep: BorrowedFd<'_>,
    events: &mut Vec<Event>,
    timeout_ms: libc::c_int,
) -> io::Result<()> {
    events.clear();
    let cap = events.capacity().min(libc::c_int::MAX as usize) as libc::c_int;
    let buf = events.as_mut_ptr().cast::<RawEvent>();
    // SAFETY: `Event` is `#[repr(transparent)]` over `RawEvent`, so `buf` points to
    // `capacity()` writable `RawEvent` slots of the vector's allocation; the kernel writes
    // at most `cap` of them and returns how many it wrote. `ep` is live during the call.
    let n = cvt(unsafe { libc::epoll_wait(ep.as_raw_fd(), buf, cap, timeout_ms) })?;
    // SAFETY: the kernel initialised exactly `n <= cap <= capacity()` elements (n >= 0 as
    // `cvt` rejected -1), and `Event` is plain old data with no drop glue.
    unsafe { events.set_len(n as usize) };
    Ok(())
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a second descriptor for the same open file description.
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is live; F_DUPFD_CLOEXEC takes an integer minimum descriptor number.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
    Ok(owned(new))
}

/// A non-blocking, close-on-exec eventfd with counter 0.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; valid flags.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    Ok(owned(fd))
}

/// Adds `n` to an eventfd counter (`WouldBlock` if it would overflow).
pub(crate) fn eventfd_write(fd: BorrowedFd<'_>, n: u64) -> io::Result<()> {
    let bytes = n.to_ne_bytes();
    // SAFETY: `bytes` is 8 readable bytes for the duration of the call; `fd` is live.
    cvt(unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) })?;
    Ok(())
}

/// Reads and zeroes an eventfd counter (`WouldBlock` if it was already zero).
pub(crate) fn eventfd_read(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is 8 writable bytes for the duration of the call; `fd` is live.
    cvt(unsafe { libc::read(fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) })?;
    Ok(u64::from_ne_bytes(bytes))
}

/// Builds a signal set holding `signals`.
fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initialises the set it is given a valid pointer to.
    cvt(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
    // SAFETY: initialised by the successful `sigemptyset` just above.
    let mut set = unsafe { set.assume_init() };
    for &sig in signals {
        // SAFETY: `set` is an initialised set; an invalid number gives EINVAL, not UB.
        cvt(unsafe { libc::sigaddset(&mut set, sig) })?;
    }
    Ok(set)
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`).
pub(crate) fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; the old-mask pointer may be null.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // pthread functions return the error number instead of setting errno.
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// A non-blocking, close-on-exec signalfd accepting `signals`.
pub(crate) fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    let set = sigset(signals)?;
    // SAFETY: `-1` asks for a new descriptor; `set` is initialised and only read.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    Ok(owned(fd))
}

/// One record read from a signalfd: `(signal number, sender pid, sender uid)`.
pub(crate) fn signalfd_read(fd: BorrowedFd<'_>) -> io::Result<Option<(i32, u32, u32)>> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is `size` writable bytes; `fd` is live. The kernel writes whole
    // records only.
    let r = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    match cvt(r) {
        Ok(n) if n as usize == size => {
            // SAFETY: the kernel wrote a whole record (`n == size`); the struct is plain data.
            let info = unsafe { info.assume_init() };
            Ok(Some((info.ssi_signo as i32, info.ssi_pid, info.ssi_uid)))
        }
        Ok(n) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("signalfd returned a short record of {n} bytes"),
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// `pidfd_open(pid, 0)`: a close-on-exec descriptor that refers to process `pid`.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: the raw syscall takes two integers; the kernel validates both.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) })?;
    let fd =
        RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd_open: descriptor out of range"))?;
    Ok(owned(fd))
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`: sends `sig` to the process `fd` refers to, as
/// `kill` would, but immune to pid reuse.
pub(crate) fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: the raw syscall takes the descriptor, the signal number, a null `siginfo`
    // (meaning "as kill(2) would fill it") and zero flags; the kernel validates all four.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    })?;
    Ok(())
}

/// How a child ended, as `waitid` reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChildEnd {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal; `true` if it dumped core.
    Killed(i32, bool),
}

/// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`: reaps the child if it has exited.
pub(crate) fn waitid_pidfd(fd: BorrowedFd<'_>) -> io::Result<Option<ChildEnd>> {
    // Zeroed so that `si_pid == 0` reliably means "not exited yet" under WNOHANG.
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a valid, writable `siginfo_t`; `fd` is live; `P_PIDFD` takes the
    // descriptor number as the id.
    cvt(unsafe {
        libc::waitid(
            libc::P_PIDFD,
            fd.as_raw_fd() as libc::id_t,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG,
        )
    })?;
    // SAFETY: zero-initialised and possibly filled in by the kernel: valid either way.
    let info = unsafe { info.assume_init() };
    // SAFETY: for SIGCHLD-style records (all `waitid` produces) the `_sigchld` union member
    // is the active one, and a zeroed record reads as pid 0.
    let pid = unsafe { info.si_pid() };
    // SAFETY: as above, `_sigchld` is the active member (or the record is all zeroes).
    let status = unsafe { info.si_status() };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match info.si_code {
        libc::CLD_EXITED => ChildEnd::Exited(status),
        libc::CLD_DUMPED => ChildEnd::Killed(status, true),
        _ => ChildEnd::Killed(status, false),
    }))
}
