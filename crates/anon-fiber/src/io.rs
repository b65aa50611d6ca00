//! Readiness plumbing between the reactor and fiber-blocking sockets.
//!
//! A descriptor is registered (edge-triggered, readable + writable) with the worker of the
//! first fiber that has to wait on it. Its [`IoSlot`] records readiness **before** anyone
//! parks: a waiter registers itself under the slot's lock and only then parks; the reactor
//! sets the readiness bit and takes the waiters under the same lock. So an edge that
//! arrives between the `EAGAIN` and the park is never lost. A woken waiter always retries
//! its system call (edge-triggered: the woken side drains).

use crate::fiber::WaitOn;
use crate::park::Parker;
use crate::sync::lock_std as lock;
use crate::worker::{self, TimerEntry, WorkerShared};
use anon_queue::Park;
use anon_reactor::TimerKey;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

pub(crate) const READ: u8 = 1;
pub(crate) const WRITE: u8 = 2;

/// How a hibernating stream was woken (see [`TcpStream::on_readable`](crate::net::TcpStream::on_readable)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awakened {
    /// Bytes (or end-of-stream, or an error) are there to read.
    Readable,
    /// The timeout passed with nothing to read.
    TimedOut,
    /// The owner woke it early through [`Hibernation::shed`] (nothing was read: the
    /// stream is as it was).
    Shed,
}

type Callback = Box<dyn FnOnce(Awakened) + Send>;

#[derive(Default)]
struct SlotInner {
    ready: u8,
    readers: Vec<Waker>,
    writers: Vec<Waker>,
    hibernate: Option<(Callback, Option<TimerKey>)>,
    /// Counts hibernations of this slot: a [`Hibernation`] handle or a timer from an
    /// earlier one never touches a later one.
    epoch: u64,
}

/// The readiness state of one registered descriptor.
#[derive(Default)]
pub(crate) struct IoSlot {
    inner: Mutex<SlotInner>,
}

impl IoSlot {
    pub(crate) fn new() -> IoSlot {
        IoSlot::default()
    }

    /// Reactor side: records `bits` and wakes the waiters (or the hibernation callback).
    pub(crate) fn on_event(&self, bits: u8) {
        let cb = {
            let mut s = lock(&self.inner);
            s.ready |= bits;
            if bits & READ != 0 {
                s.readers.drain(..).for_each(Waker::wake);
            }
            if bits & WRITE != 0 {
                s.writers.drain(..).for_each(Waker::wake);
            }
            if bits & READ != 0 {
                s.hibernate.take()
            } else {
                None
            }
        };
        if let Some((cb, timer)) = cb {
            if let Some(t) = timer {
                cancel_timer(t);
            }
            cb(Awakened::Readable);
        }
    }

    pub(crate) fn on_hibernate_timeout(&self, epoch: u64) {
        let cb = {
            let mut s = lock(&self.inner);
            if s.epoch == epoch {
                s.hibernate.take()
            } else {
                None
            }
        };
        if let Some((cb, _)) = cb {
            cb(Awakened::TimedOut);
        }
    }

    pub(crate) fn clear_hibernation(&self) {
        let cb = lock(&self.inner).hibernate.take();
        drop(cb);
    }

    /// Fiber side: waits until `dir` may be ready or `deadline` passes.
    fn wait(&self, dir: u8, deadline: Option<Instant>) -> io::Result<()> {
        let parker = Parker::waiting_on(if dir == READ {
            WaitOn::Readable
        } else {
            WaitOn::Writable
        });
        let waker = parker.waker();
        let mut registered = false;
        loop {
            {
                let mut guard = lock(&self.inner);
                let s = &mut *guard;
                let list = if dir == READ {
                    &mut s.readers
                } else {
                    &mut s.writers
                };
                let present = list.iter().any(|w| w.will_wake(&waker));
                if registered && !present {
                    // The reactor took us off the list: an edge arrived. Retry the call.
                    s.ready &= !dir;
                    return Ok(());
                }
                if s.ready & dir != 0 {
                    s.ready &= !dir;
                    if present {
                        list.retain(|w| !w.will_wake(&waker));
                    }
                    return Ok(());
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    if present {
                        list.retain(|w| !w.will_wake(&waker));
                    }
                    return Err(io::ErrorKind::TimedOut.into());
                }
                if !present {
                    list.push(waker.clone());
                }
                registered = true;
            }
            parker.park_until(deadline);
        }
    }
}

fn cancel_timer(t: TimerKey) {
    worker::with_worker(|w| {
        if let Some(w) = w {
            let _ = w.timers.borrow_mut().cancel(t);
        }
    });
}

struct Reg {
    worker: Arc<WorkerShared>,
    key: usize,
    slot: Arc<IoSlot>,
}

/// The fiber-blocking core of every socket type: the descriptor, its registration, and
/// the per-operation timeouts. Declare it before the owned socket so it is dropped (and
/// deregistered) before the descriptor closes.
pub(crate) struct IoCore {
    fd: RawFd,
    reg: Mutex<Option<Reg>>,
    /// Nanoseconds; 0 = none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

fn to_nanos(d: Option<Duration>) -> io::Result<u64> {
    match d {
        None => Ok(0),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    }
}

fn from_nanos(n: u64) -> Option<Duration> {
    (n != 0).then(|| Duration::from_nanos(n))
}

impl IoCore {
    pub(crate) fn new(fd: RawFd) -> IoCore {
        IoCore {
            fd,
            reg: Mutex::new(None),
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.read_timeout.store(to_nanos(d)?, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.write_timeout.store(to_nanos(d)?, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        from_nanos(self.read_timeout.load(Ordering::Relaxed))
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        from_nanos(self.write_timeout.load(Ordering::Relaxed))
    }

    /// Runs a non-blocking call for reading until it stops answering `WouldBlock`, waiting
    /// for readiness in between (at most the read timeout in all).
    pub(crate) fn read<R>(&self, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        self.run(READ, self.read_timeout(), f)
    }

    /// Like [`read`](IoCore::read), for writing.
    pub(crate) fn write<R>(&self, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        self.run(WRITE, self.write_timeout(), f)
    }

    pub(crate) fn run<R>(
        &self,
        dir: u8,
        timeout: Option<Duration>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut deadline = None;
        loop {
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if deadline.is_none() {
                deadline = timeout.map(|t| Instant::now().checked_add(t));
            }
            self.wait(dir, deadline.flatten())?;
        }
    }

    /// Waits once for `dir`: parks the fiber, or `poll(2)`s outside fibers.
    pub(crate) fn wait(&self, dir: u8, deadline: Option<Instant>) -> io::Result<()> {
        match self.slot_here()? {
            Some(slot) => slot.wait(dir, deadline),
            None => {
                let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if timeout.is_some_and(|t| t.is_zero()) {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                if crate::sys::poll_fd(self.fd, dir == READ, timeout)? {
                    Ok(())
                } else {
                    Err(io::ErrorKind::TimedOut.into())
                }
            }
        }
    }

    /// The slot on this thread's worker when called from a fiber (registering, or moving
    /// the registration here); `None` outside fibers.
    fn slot_here(&self) -> io::Result<Option<Arc<IoSlot>>> {
        worker::with_worker(|w| {
            let Some(w) = w.filter(|w| w.in_fiber()) else {
                return Ok(None);
            };
            self.slot_on(w).map(Some)
        })
    }

    fn slot_on(&self, w: &worker::Worker) -> io::Result<Arc<IoSlot>> {
        let mut reg = lock(&self.reg);
        if let Some(r) = reg.as_ref() {
            if r.worker.uid == w.shared.uid {
                return Ok(Arc::clone(&r.slot));
            }
        }
        if let Some(old) = reg.take() {
            old.release(self.fd);
        }
        let (key, slot) = w.register_io(self.fd)?;
        *reg = Some(Reg {
            worker: Arc::clone(&w.shared),
            key,
            slot: Arc::clone(&slot),
        });
        Ok(slot)
    }

    /// The slot on this worker and the worker's id, for hibernation. Must run on a worker
    /// thread.
    pub(crate) fn hibernation_slot(&self) -> io::Result<(Arc<IoSlot>, u64)> {
        worker::with_worker(|w| match w {
            Some(w) => Ok((self.slot_on(w)?, w.shared.uid)),
            None => Err(io::Error::other(
                "on_readable needs a worker thread (call it from a fiber or a callback)",
            )),
        })
    }
}

impl IoSlot {
    /// Hibernation: calls `cb` on this worker when the descriptor is readable (at once if
    /// it already is) or after `timeout`, with no fiber waiting. Returns the epoch that a
    /// [`Hibernation`] handle names.
    pub(crate) fn hibernate(self: &Arc<Self>, timeout: Option<Duration>, cb: Callback) -> u64 {
        let mut s = lock(&self.inner);
        s.epoch = s.epoch.wrapping_add(1);
        let epoch = s.epoch;
        if s.ready & READ != 0 {
            s.ready &= !READ;
            drop(s);
            cb(Awakened::Readable);
            return epoch;
        }
        let timer = match timeout {
            Some(t) => Instant::now().checked_add(t).and_then(|d| {
                worker::insert_timer(d, TimerEntry::Hibernate(Arc::clone(self), epoch))
            }),
            None => None,
        };
        if let Some((_, Some(old))) = s.hibernate.replace((cb, timer)) {
            drop(s);
            cancel_timer(old);
        }
        epoch
    }

    /// Takes hibernation `epoch`'s callback if it has not run yet.
    fn take_hibernation(&self, epoch: u64) -> Option<(Callback, Option<TimerKey>)> {
        let mut s = lock(&self.inner);
        if s.epoch == epoch {
            s.hibernate.take()
        } else {
            None
        }
    }
}

/// The owner's handle on one hibernation (returned by
/// [`TcpStream::on_readable`](crate::net::TcpStream::on_readable)): it can wake the
/// callback early with [`Awakened::Shed`], e.g. to close the oldest idle connections when
/// the process runs out of descriptors.
///
/// A plain value: dropping it changes nothing, and it never touches a later hibernation of
/// the same stream (each has its own epoch). It holds no stream, only a reference to the
/// descriptor's readiness slot (no allocation).
pub struct Hibernation {
    slot: Arc<IoSlot>,
    epoch: u64,
    worker: u64,
}

impl Hibernation {
    /// Runs the callback now, on the calling thread (fiber or not), with
    /// [`Awakened::Shed`], unless it already ran; `true` if it ran here. After this, later
    /// readiness or the timeout never call it.
    ///
    /// Works only on the worker the stream hibernates on (where `on_readable` was called;
    /// fibers never migrate, so a fiber of that worker qualifies): anywhere else it does
    /// nothing and answers `false`. O(1).
    pub fn shed(&self) -> bool {
        let here = worker::with_worker(|w| w.is_some_and(|w| w.shared.uid == self.worker));
        if !here {
            return false;
        }
        match self.slot.take_hibernation(self.epoch) {
            Some((cb, timer)) => {
                if let Some(t) = timer {
                    cancel_timer(t);
                }
                cb(Awakened::Shed);
                true
            }
            None => false,
        }
    }

    /// Whether the callback is still waiting (it has not run). Answers for this
    /// hibernation only; from any thread.
    pub fn is_waiting(&self) -> bool {
        let s = lock(&self.slot.inner);
        s.epoch == self.epoch && s.hibernate.is_some()
    }
}

impl std::fmt::Debug for Hibernation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hibernation")
            .field("epoch", &self.epoch)
            .field("waiting", &self.is_waiting())
            .finish()
    }
}

/// Why a stream could not hibernate ([`TcpStream::on_readable`](crate::net::TcpStream::on_readable)):
/// not on a worker thread, or the reactor refused the descriptor. The stream is handed
/// back (the callback is dropped without running).
#[derive(thiserror::Error)]
#[error("cannot hibernate the stream: {error}")]
pub struct HibernateError<S> {
    stream: S,
    #[source]
    error: io::Error,
}

impl<S> HibernateError<S> {
    pub(crate) fn new(stream: S, error: io::Error) -> HibernateError<S> {
        HibernateError { stream, error }
    }

    /// The cause.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The stream, back to the caller.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The stream and the cause.
    pub fn into_parts(self) -> (S, io::Error) {
        (self.stream, self.error)
    }
}

impl<S> std::fmt::Debug for HibernateError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HibernateError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl IoCore {
    /// Hibernates `stream` (whose core this is): the shared body of every stream type's
    /// `on_readable`.
    pub(crate) fn hibernate_stream<S, F>(
        stream: S,
        core: impl FnOnce(&S) -> &IoCore,
        timeout: Option<Duration>,
        f: F,
    ) -> Result<Hibernation, HibernateError<S>>
    where
        S: Send + 'static,
        F: FnOnce(S, Awakened) + Send + 'static,
    {
        let (slot, worker) = match core(&stream).hibernation_slot() {
            Ok(v) => v,
            Err(e) => return Err(HibernateError::new(stream, e)),
        };
        let epoch = slot.hibernate(timeout, Box::new(move |why| f(stream, why)));
        Ok(Hibernation {
            slot,
            epoch,
            worker,
        })
    }
}

impl Reg {
    fn release(self, fd: RawFd) {
        let _ = self.worker.registry.deregister(fd);
        let mut io = lock(&self.worker.io);
        if io.get(self.key).is_some_and(|s| Arc::ptr_eq(s, &self.slot)) {
            io.remove(self.key);
        }
    }
}

impl Drop for IoCore {
    fn drop(&mut self) {
        let reg = lock(&self.reg).take();
        if let Some(r) = reg {
            r.release(self.fd);
        }
    }
}
