//! The only module with `unsafe`: the few libc calls std does not wrap.
//!
//! Fiber stacks themselves are `generator` 0.8's: `mmap`ed with a `PROT_NONE` guard page
//! below (two kernel memory maps per stack), reused through each worker's stack pool.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits with `poll(2)` until `fd` is readable (`read`) or writable; `Ok(false)` on
/// timeout. Used by sockets called outside a fiber, to behave like blocking std sockets.
pub(crate) fn poll_fd(fd: RawFd, read: bool, timeout: Option<Duration>) -> io::Result<bool> {
    let events = if read { libc::POLLIN } else { libc::POLLOUT };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms: libc::c_int = match timeout {
        None => -1,
        // Round up so a wait never ends early.
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    };
    loop {
        // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1 that
        // lives for the whole call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data for which all-zero bytes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cpu index too large",
        ));
    }
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE, the bound of `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Linux's `vm.max_map_count` (each guarded fiber stack uses two maps).
pub(crate) fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}
