//! The park/wake hook: how a runtime lets this crate make a caller wait, without this crate
//! knowing what a fiber is.
//!
//! A runtime implements [`Park`] for its execution context (a fiber, a thread). Waiting code
//! here registers the context's [`Waker`] in a bounded [`WaitList`], re-checks its condition,
//! and only then calls [`Park::park`]; whoever changes the condition calls
//! [`WaitList::notify_one`] or [`WaitList::notify_all`]. Registration and notification meet
//! on one counter updated only by read-modify-write operations, so a notification either
//! finds the waiter registered or the waiter's re-check sees the change: no lost wake-up
//! (checked by the loom models).

use crate::sync::{lock, thread, AtomicUsize, Mutex, Ordering};
use std::collections::VecDeque;
use std::task::{Wake, Waker};

/// The hook a runtime implements to let this crate park the current execution context.
///
/// Contract:
/// - [`park`](Park::park) suspends the caller until the context's [`Waker`] is woken. It may
///   return early (spuriously); callers here always re-check their condition.
/// - A wake that arrives before `park` is not lost: the next `park` returns at once (like
///   `std::thread::park`'s token).
/// - The waker may be woken from any thread, any number of times.
pub trait Park {
    /// A waker that makes this context's `park` return.
    fn waker(&self) -> Waker;
    /// Suspends the calling context until woken (or spuriously).
    fn park(&self);
}

/// [`Park`] for plain OS threads: `std::thread::park` / `Thread::unpark` (loom's twins under
/// `--cfg anon_loom`). Make it on the thread that will park.
#[derive(Debug, Clone)]
pub struct ThreadParker {
    waker: Waker,
}

struct ThreadWake(thread::Thread);

impl Wake for ThreadWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

impl ThreadParker {
    /// A parker for the calling thread.
    pub fn current() -> ThreadParker {
        let wake = std::sync::Arc::new(ThreadWake(thread::current()));
        ThreadParker {
            waker: Waker::from(wake),
        }
    }
}

impl Park for ThreadParker {
    fn waker(&self) -> Waker {
        self.waker.clone()
    }
    fn park(&self) {
        thread::park();
    }
}

/// The wait list (or the waiters' bound) is full: answer "try again" instead of queueing.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[error("too many waiters: try again")]
pub struct Again;

/// A registration in a [`WaitList`], returned by [`WaitList::register`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket must be cancelled once the waiter stops waiting"]
pub struct WaitTicket(u64);

struct Waiters {
    /// Registered waiters in arrival order; its length never exceeds `WaitList::max`.
    list: VecDeque<(u64, Waker)>,
    next_id: u64,
}

/// A bounded FIFO list of parked waiters, with notification that cannot be lost.
///
/// At most `max_waiters` may be registered; one more gets [`Again`]. The list is allocated
/// up front, so waiting never allocates.
pub struct WaitList {
    waiters: Mutex<Waiters>,
    /// Registered waiters. Only ever changed or read by read-modify-write operations (see
    /// the module docs): that is what makes [`notify_one`](WaitList::notify_one) safe to
    /// skip the lock when it reads 0.
    count: AtomicUsize,
    max: usize,
}

impl WaitList {
    /// A list admitting at most `max_waiters` waiters at once.
    pub fn new(max_waiters: usize) -> WaitList {
        WaitList {
            waiters: Mutex::new(Waiters {
                list: VecDeque::with_capacity(max_waiters),
                next_id: 0,
            }),
            count: AtomicUsize::new(0),
            max: max_waiters,
        }
    }

    /// Registers `waker`; [`Again`] when `max_waiters` are already registered. After
    /// registering, re-check the condition, then park; cancel the ticket when done.
    pub fn register(&self, waker: &Waker) -> Result<WaitTicket, Again> {
        let mut w = lock(&self.waiters);
        if w.list.len() >= self.max {
            return Err(Again);
        }
        let id = w.next_id;
        w.next_id = w.next_id.wrapping_add(1);
        w.list.push_back((id, waker.clone()));
        self.count.fetch_add(1, Ordering::AcqRel);
        Ok(WaitTicket(id))
    }

    /// Removes a registration. `true` if it was still registered; `false` if a notification
    /// already took it (then the waiter owns that notification: if it no longer needs it, it
    /// should pass it on with [`notify_one`](WaitList::notify_one)).
    pub fn cancel(&self, ticket: WaitTicket) -> bool {
        let mut w = lock(&self.waiters);
        match w.list.iter().position(|(id, _)| *id == ticket.0) {
            Some(i) => {
                w.list.remove(i);
                self.count.fetch_sub(1, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }

    /// Wakes the longest-waiting waiter, if any; `true` if one was woken. Cheap (one atomic
    /// operation) when nobody waits.
    pub fn notify_one(&self) -> bool {
        // A read-modify-write, not a load: it reads the latest count and orders this
        // caller's earlier writes before any later registration (see the module docs).
        if self.count.fetch_add(0, Ordering::AcqRel) == 0 {
            return false;
        }
        let woken = {
            let mut w = lock(&self.waiters);
            let first = w.list.pop_front();
            if first.is_some() {
                self.count.fetch_sub(1, Ordering::AcqRel);
            }
            first
        };
        match woken {
            Some((_, waker)) => {
                waker.wake();
                true
            }
            None => false,
        }
    }

    /// Wakes every registered waiter; returns how many.
    pub fn notify_all(&self) -> usize {
        if self.count.fetch_add(0, Ordering::AcqRel) == 0 {
            return 0;
        }
        let mut n = 0;
        loop {
            // Wake in batches outside the lock, so a waker that re-enters cannot deadlock.
            let batch: Vec<Waker> = {
                let mut w = lock(&self.waiters);
                let k = w.list.len().min(16);
                let batch: Vec<Waker> = w.list.drain(..k).map(|(_, waker)| waker).collect();
                self.count.fetch_sub(batch.len(), Ordering::AcqRel);
                batch
            };
            if batch.is_empty() {
                return n;
            }
            n += batch.len();
            batch.into_iter().for_each(Waker::wake);
        }
    }

    /// Waiters registered now.
    pub fn len(&self) -> usize {
        self.count.fetch_add(0, Ordering::AcqRel)
    }

    /// `true` when nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most waiters the list admits.
    pub fn max_waiters(&self) -> usize {
        self.max
    }

    /// Runs `attempt` until it returns `Some`, parking through `park` between attempts and
    /// registering in this list so that a [`notify_one`](WaitList::notify_one) ends the wait.
    /// Returns [`Again`] if the list is full when this caller would have to wait.
    pub fn wait_until<R>(
        &self,
        park: &impl Park,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Result<R, Again> {
        if let Some(r) = attempt() {
            return Ok(r);
        }
        let waker = park.waker();
        loop {
            let ticket = self.register(&waker)?;
            if let Some(r) = attempt() {
                if !self.cancel(ticket) {
                    // We were notified but did not need it: hand it to the next waiter.
                    self.notify_one();
                }
                return Ok(r);
            }
            park.park();
            // Woken (or spuriously): drop the registration if still there, then re-check.
            let _still_registered = self.cancel(ticket);
            if let Some(r) = attempt() {
                return Ok(r);
            }
        }
    }
}

impl std::fmt::Debug for WaitList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitList")
            .field("waiters", &self.len())
            .field("max_waiters", &self.max)
            .finish()
    }
}
