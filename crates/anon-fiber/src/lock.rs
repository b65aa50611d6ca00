//! Fiber synchronisation: [`Mutex`], [`Condvar`], [`Notify`], [`WaitGroup`].
//!
//! All of them park fibers (and block threads, outside fibers) through [`Parker`], and wait
//! with the same no-lost-wakeup protocol: register in the wait queue, re-check the
//! condition, only then park; whoever changes the condition notifies after changing it.
//! A wait queue holds each waiting fiber at most once, so its length is bounded by the
//! runtime's live-fiber bound.

use crate::fiber::WaitOn;
use crate::park::Parker;
use crate::sync::lock_std;
use anon_queue::Park;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;

#[derive(Default)]
struct Queue {
    list: VecDeque<(u64, Waker)>,
    next: u64,
}

/// A FIFO of parked waiters (see the module docs).
#[derive(Default)]
struct WaitQueue {
    q: std::sync::Mutex<Queue>,
    count: AtomicUsize,
}

impl WaitQueue {
    fn register(&self, w: &Waker) -> u64 {
        let mut q = lock_std(&self.q);
        let id = q.next;
        q.next = q.next.wrapping_add(1);
        q.list.push_back((id, w.clone()));
        self.count.fetch_add(1, Ordering::AcqRel);
        id
    }

    /// `true` if still registered (not notified).
    fn cancel(&self, id: u64) -> bool {
        let mut q = lock_std(&self.q);
        match q.list.iter().position(|(i, _)| *i == id) {
            Some(p) => {
                q.list.remove(p);
                self.count.fetch_sub(1, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }

    fn notify_one(&self) -> bool {
        // A read-modify-write: orders the caller's change before a later registration.
        if self.count.fetch_add(0, Ordering::AcqRel) == 0 {
            return false;
        }
        let w = {
            let mut q = lock_std(&self.q);
            let w = q.list.pop_front();
            if w.is_some() {
                self.count.fetch_sub(1, Ordering::AcqRel);
            }
            w
        };
        match w {
            Some((_, w)) => {
                w.wake();
                true
            }
            None => false,
        }
    }

    fn notify_all(&self) {
        if self.count.fetch_add(0, Ordering::AcqRel) == 0 {
            return;
        }
        let all: Vec<(u64, Waker)> = {
            let mut q = lock_std(&self.q);
            let all: Vec<_> = q.list.drain(..).collect();
            self.count.fetch_sub(all.len(), Ordering::AcqRel);
            all
        };
        for (_, w) in all {
            w.wake();
        }
    }

    /// Runs `attempt` until `Some`, parking in between (see the module docs).
    fn wait_until<R>(&self, on: WaitOn, mut attempt: impl FnMut() -> Option<R>) -> R {
        if let Some(r) = attempt() {
            return r;
        }
        let parker = Parker::waiting_on(on);
        let waker = parker.waker();
        loop {
            let id = self.register(&waker);
            if let Some(r) = attempt() {
                if !self.cancel(id) {
                    // Notified but not needed: pass it on.
                    self.notify_one();
                }
                return r;
            }
            parker.park();
            let _still = self.cancel(id);
            if let Some(r) = attempt() {
                return r;
            }
        }
    }
}

/// A mutex that parks the waiting fiber instead of blocking its worker.
///
/// Poisoning is ignored: a fiber that panics while holding the guard unlocks it.
///
/// ```
/// use anon_fiber::{lock::Mutex, Runtime};
/// use std::sync::Arc;
/// let rt = Runtime::builder().workers(2).build()?;
/// let m = Arc::new(Mutex::new(0));
/// let hs: Vec<_> = (0..4)
///     .map(|_| { let m = Arc::clone(&m); rt.spawn(move || *m.lock() += 1) })
///     .collect::<Result<_, _>>()?;
/// for h in hs { h.join().unwrap(); }
/// assert_eq!(*m.lock(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Mutex<T> {
    inner: std::sync::Mutex<T>,
    waiters: WaitQueue,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            inner: std::sync::Mutex::new(value),
            waiters: WaitQueue::default(),
        }
    }

    /// Locks, parking while another holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let g = self
            .waiters
            .wait_until(WaitOn::Lock, || self.try_lock_inner());
        MutexGuard {
            guard: Some(g),
            mutex: self,
        }
    }

    /// Locks if free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_lock_inner().map(|g| MutexGuard {
            guard: Some(g),
            mutex: self,
        })
    }

    fn try_lock_inner(&self) -> Option<std::sync::MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        match self.inner.into_inner() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        }
    }
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mutex { .. }")
    }
}

/// Holds a [`Mutex`] locked; unlocks (and wakes one waiter) on drop.
pub struct MutexGuard<'a, T> {
    guard: Option<std::sync::MutexGuard<'a, T>>,
    mutex: &'a Mutex<T>,
}

impl<T> std::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.guard {
            Some(g) => g,
            None => unreachable!("guard is Some until drop"),
        }
    }
}

impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.guard {
            Some(g) => g,
            None => unreachable!("guard is Some until drop"),
        }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.mutex.waiters.notify_one();
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// A condition variable for [`Mutex`]; wakeups may be spurious, so wait in a loop.
#[derive(Default)]
pub struct Condvar {
    waiters: WaitQueue,
}

impl Condvar {
    /// A new condition variable.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Unlocks `guard`, parks until notified, and locks again.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        let parker = Parker::waiting_on(WaitOn::Notify);
        // Registered before unlocking: a notify after the unlock finds us.
        let id = self.waiters.register(&parker.waker());
        drop(guard);
        parker.park();
        let _ = self.waiters.cancel(id);
        mutex.lock()
    }

    /// Waits while `cond` holds.
    pub fn wait_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut cond: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while cond(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.waiters.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.waiters.notify_all();
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condvar { .. }")
    }
}

/// Wakes waiting fibers without a lock: [`notify_one`](Notify::notify_one) leaves a permit
/// when nobody waits, so a notification is never lost.
#[derive(Default)]
pub struct Notify {
    permit: AtomicBool,
    generation: AtomicU64,
    waiters: WaitQueue,
}

impl Notify {
    /// A new `Notify` without a permit.
    pub fn new() -> Notify {
        Notify::default()
    }

    /// Parks until notified (or returns at once, consuming a stored permit).
    pub fn notified(&self) {
        if self.permit.swap(false, Ordering::AcqRel) {
            return;
        }
        let gen = self.generation.load(Ordering::Acquire);
        let parker = Parker::waiting_on(WaitOn::Notify);
        let waker = parker.waker();
        loop {
            let id = self.waiters.register(&waker);
            if self.permit.swap(false, Ordering::AcqRel) {
                if !self.waiters.cancel(id) {
                    // Also picked by a notify_one: hand that one on.
                    self.notify_one();
                }
                return;
            }
            if self.generation.load(Ordering::Acquire) != gen {
                let _ = self.waiters.cancel(id);
                return;
            }
            parker.park();
            if !self.waiters.cancel(id) {
                // Taken off the queue by notify_one / notify_all: that is our notification.
                return;
            }
            if self.generation.load(Ordering::Acquire) != gen
                || self.permit.swap(false, Ordering::AcqRel)
            {
                return;
            }
        }
    }

    /// Wakes one waiter, or stores a permit for the next [`notified`](Notify::notified)
    /// when nobody waits (at most one permit is stored).
    pub fn notify_one(&self) {
        if !self.waiters.notify_one() {
            self.permit.store(true, Ordering::Release);
        }
    }

    /// Wakes every fiber waiting now (stores no permit).
    pub fn notify_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.waiters.notify_all();
    }
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify { .. }")
    }
}

/// Waits for a set of tasks: [`add`](WaitGroup::add) before starting each, `done` when it
/// ends, [`wait`](WaitGroup::wait) until the count is back to zero. Cloning shares the
/// counter.
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<WgInner>,
}

#[derive(Default)]
struct WgInner {
    count: AtomicUsize,
    waiters: WaitQueue,
}

impl WaitGroup {
    /// A group with count 0.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `n` to the count.
    pub fn add(&self, n: usize) {
        self.inner.count.fetch_add(n, Ordering::AcqRel);
    }

    /// Subtracts one; wakes the waiters when the count reaches zero.
    pub fn done(&self) {
        let prev = self
            .inner
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        if prev == Ok(1) {
            self.inner.waiters.notify_all();
        }
    }

    /// The current count.
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Parks until the count is zero.
    pub fn wait(&self) {
        self.inner.waiters.wait_until(WaitOn::WaitGroup, || {
            (self.inner.count.load(Ordering::Acquire) == 0).then_some(())
        });
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
