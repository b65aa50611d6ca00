//! `Ioq`: a counting semaphore per device with a bounded FIFO wait list, after cmogstored's
//! ioq. At most `limit` holders use the device at once; up to `max_waiters` more wait their
//! turn in arrival order; anyone beyond that is told [`Again`] instead of queueing.

use crate::park::{Again, Park};
use crate::stats::{Clock, Histogram, HistogramSnapshot, StdClock};
use crate::sync::{lock, Arc, AtomicBool, Mutex, Ordering};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64 as StatU64, AtomicUsize as StatUsize};
use std::task::Waker;

/// One waiter's hand-off cell: `granted` flips to `true` (under the state lock) when a
/// releasing holder passes its slot to this waiter.
struct Grant {
    granted: AtomicBool,
    waker: Waker,
}

struct State {
    limit: usize,
    /// Permits out; may exceed `limit` for a while after the limit was lowered.
    holders: usize,
    /// Waiters in arrival order; never longer than `Ioq::max_waiters`.
    queue: VecDeque<Arc<Grant>>,
}

/// A snapshot of an [`Ioq`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoqStats {
    /// Permits granted (the wait histogram's count).
    pub acquired: u64,
    /// Acquisitions refused with [`Again`] because the wait list was full (or, for
    /// [`Ioq::try_acquire`], because no permit was free).
    pub rejected: u64,
    /// Permits out now.
    pub holders: usize,
    /// Callers waiting now.
    pub waiters: usize,
    /// Most callers waiting at once so far.
    pub max_waiters_seen: usize,
    /// Permits allowed at once.
    pub limit: usize,
    /// Time from asking to holding (zero when a permit was free).
    pub wait: HistogramSnapshot,
}

/// A per-device semaphore with a bounded wait list; waiting goes through a [`Park`] hook.
///
/// Waiters are served first-come first-served: a released permit is handed straight to the
/// oldest waiter, and a newcomer never takes a permit while others wait.
///
/// ```
/// use anon_queue::{Again, Ioq, ThreadParker};
///
/// let disk = Ioq::new(1, 0); // one I/O at a time, nobody may wait
/// let park = ThreadParker::current();
/// let first = disk.acquire(&park).unwrap();
/// assert_eq!(disk.holders(), 1);
/// // The device is busy and the wait list (size 0) is full: "try again" at once.
/// assert_eq!(disk.acquire(&park).unwrap_err(), Again);
/// drop(first);
/// assert!(disk.try_acquire().is_ok());
/// ```
pub struct Ioq<C: Clock = StdClock> {
    state: Mutex<State>,
    max_waiters: usize,
    clock: C,
    // Mirrors of `State` and counters, for lock-free observation.
    holders: StatUsize,
    waiters: StatUsize,
    limit: StatUsize,
    max_waiters_seen: StatUsize,
    rejected: StatU64,
    wait: Histogram,
}

impl Ioq<StdClock> {
    /// A semaphore of `limit` permits admitting at most `max_waiters` waiters.
    pub fn new(limit: usize, max_waiters: usize) -> Ioq<StdClock> {
        Ioq::with_clock(limit, max_waiters, StdClock)
    }
}

impl<C: Clock> Ioq<C> {
    /// Like [`Ioq::new`], timing waits with `clock`.
    pub fn with_clock(limit: usize, max_waiters: usize, clock: C) -> Ioq<C> {
        Ioq {
            state: Mutex::new(State {
                limit,
                holders: 0,
                queue: VecDeque::with_capacity(max_waiters),
            }),
            max_waiters,
            clock,
            holders: StatUsize::new(0),
            waiters: StatUsize::new(0),
            limit: StatUsize::new(limit),
            max_waiters_seen: StatUsize::new(0),
            rejected: StatU64::new(0),
            wait: Histogram::new(),
        }
    }

    fn mirror(&self, st: &State) {
        self.holders.store(st.holders, Ordering::Relaxed);
        self.waiters.store(st.queue.len(), Ordering::Relaxed);
        self.max_waiters_seen
            .fetch_max(st.queue.len(), Ordering::Relaxed);
    }

    /// A permit if one is free and nobody waits; otherwise [`Again`], without waiting.
    pub fn try_acquire(&self) -> Result<IoqPermit<'_, C>, Again> {
        let mut st = lock(&self.state);
        if st.holders < st.limit && st.queue.is_empty() {
            st.holders += 1;
            self.mirror(&st);
            drop(st);
            self.wait.record(std::time::Duration::ZERO);
            return Ok(IoqPermit { ioq: self });
        }
        drop(st);
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Err(Again)
    }

    /// A permit, waiting through `park` in FIFO order if none is free; [`Again`] at once if
    /// `max_waiters` callers already wait.
    pub fn acquire(&self, park: &impl Park) -> Result<IoqPermit<'_, C>, Again> {
        let grant = {
            let mut st = lock(&self.state);
            if st.holders < st.limit && st.queue.is_empty() {
                st.holders += 1;
                self.mirror(&st);
                drop(st);
                self.wait.record(std::time::Duration::ZERO);
                return Ok(IoqPermit { ioq: self });
            }
            if st.queue.len() >= self.max_waiters {
                drop(st);
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Again);
            }
            let grant = Arc::new(Grant {
                granted: AtomicBool::new(false),
                waker: park.waker(),
            });
            st.queue.push_back(Arc::clone(&grant));
            self.mirror(&st);
            grant
        };
        let start = self.clock.now();
        // The releaser sets `granted` before waking us; a wake that comes first is kept by
        // the `Park` contract, and spurious returns just look again.
        while !grant.granted.load(Ordering::Acquire) {
            park.park();
        }
        self.wait
            .record(self.clock.now().saturating_duration_since(start));
        Ok(IoqPermit { ioq: self })
    }

    fn release(&self) {
        let wake = {
            let mut st = lock(&self.state);
            let next = if st.holders > st.limit {
                None
            } else {
                st.queue.pop_front()
            };
            match &next {
                // Hand the permit straight over: `holders` stays the same.
                Some(g) => g.granted.store(true, Ordering::Release),
                None => st.holders -= 1,
            }
            self.mirror(&st);
            next
        };
        if let Some(g) = wake {
            g.waker.wake_by_ref();
        }
    }

    /// Changes how many permits may be out at once (cmogstored resizes its ioq as devices
    /// come and go). Raising it wakes waiters at once; lowering it lets current holders
    /// finish and grants no new permit until `holders` is below the new limit.
    pub fn set_limit(&self, limit: usize) {
        let woken: Vec<Arc<Grant>> = {
            let mut st = lock(&self.state);
            st.limit = limit;
            self.limit.store(limit, Ordering::Relaxed);
            let mut woken = Vec::new();
            while st.holders < st.limit {
                let Some(g) = st.queue.pop_front() else { break };
                g.granted.store(true, Ordering::Release);
                st.holders += 1;
                woken.push(g);
            }
            self.mirror(&st);
            woken
        };
        for g in woken {
            g.waker.wake_by_ref();
        }
    }

    /// Permits out now (lock-free read).
    pub fn holders(&self) -> usize {
        self.holders.load(Ordering::Relaxed)
    }

    /// Callers waiting now (lock-free read).
    pub fn waiters(&self) -> usize {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Permits allowed at once.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Most callers that may wait at once.
    pub fn max_waiters(&self) -> usize {
        self.max_waiters
    }

    /// The counters, read without locks.
    pub fn stats(&self) -> IoqStats {
        let wait = self.wait.snapshot();
        IoqStats {
            acquired: wait.count(),
            rejected: self.rejected.load(Ordering::Relaxed),
            holders: self.holders(),
            waiters: self.waiters(),
            max_waiters_seen: self.max_waiters_seen.load(Ordering::Relaxed),
            limit: self.limit(),
            wait,
        }
    }
}

impl<C: Clock> std::fmt::Debug for Ioq<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ioq")
            .field("holders", &self.holders())
            .field("waiters", &self.waiters())
            .field("limit", &self.limit())
            .field("max_waiters", &self.max_waiters)
            .finish()
    }
}

/// A held [`Ioq`] permit; dropping it passes the permit to the oldest waiter, if any.
#[must_use = "dropping the permit at once releases it"]
pub struct IoqPermit<'a, C: Clock = StdClock> {
    ioq: &'a Ioq<C>,
}

impl<C: Clock> Drop for IoqPermit<'_, C> {
    fn drop(&mut self) {
        self.ioq.release();
    }
}

impl<C: Clock> std::fmt::Debug for IoqPermit<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IoqPermit")
    }
}
