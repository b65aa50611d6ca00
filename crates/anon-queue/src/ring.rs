//! The bounded MPMC array ring.
//!
//! Design (sequence-stamped slots after Dmitry Vyukov's bounded MPMC queue, with the slot
//! lock doing the claiming):
//!
//! - `head` and `tail` are positions `lap | index`: the low bits (below `one_lap`) are the
//!   slot index, the bits above count laps. Only the thread that consumed (or filled) the
//!   slot at position `p` stores `next(p)` into `head` (`tail`), so both only move forward.
//! - Every slot is a `Mutex<SlotState>` holding a `stamp` and an `Option<T>`.
//!   `stamp == p` means "free for the push at `p`"; `stamp == p + 1` means "holds the value
//!   pushed at `p`"; the pop at `p` leaves `p + one_lap`, free for the push a lap later.
//! - A push reads `tail`, `try_lock`s that slot, and if the stamp says "free for `tail`"
//!   fills it and stamps it, unlocks, then advances `tail`. If the stamp holds the
//!   previous lap's value, the queue is full *at that moment*; any other stamp means the
//!   `tail` it read was stale: read again. Pops mirror this on `head`. The slot lock is
//!   therefore both the claim and the publication: one lock and one unlock (two atomic
//!   read-modify-writes) per operation, against one CAS in crossbeam's `ArrayQueue`. A
//!   failed `try_lock` means another thread is on that slot: like a failed CAS, re-read.
//! - `closed` is a flag read under the slot lock by every successful push and every pop
//!   that finds its slot empty. Lock hand-over orders the flag's reads, so a pop that
//!   answered `Closed` can never be followed by a push that succeeds.
//! - A pop first compares `head` with `tail` without locking: an empty, open queue answers
//!   `Empty` with two loads, so pollers of an empty queue do not write to its slots.
//! - The per-slot `Mutex` exists because this crate has no `unsafe` (an `UnsafeCell` plus
//!   an atomic stamp would be the zero-cost choice); it is never waited on (`try_lock`
//!   only). `BENCHMARKS.md` measures the price against crossbeam and concurrent-queue.

use crate::sync::{spin_hint, AtomicBool, AtomicUsize, Backoff, Mutex, MutexGuard, Ordering};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::TryLockError;

/// Why [`Queue::try_push`] refused a value; the value is handed back.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PushError<T> {
    /// The queue holds `capacity` items: the backpressure signal. Answer "try again"
    /// (EAGAIN, HTTP 503, RESP `-TRYAGAIN`) or wait through a [`crate::Park`] hook.
    #[error("queue is full")]
    Full(T),
    /// The queue was closed: no push will ever succeed again.
    #[error("queue is closed")]
    Closed(T),
}

impl<T> PushError<T> {
    /// Takes the refused value back.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Closed(v) => v,
        }
    }

    /// `true` for [`PushError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, PushError::Full(_))
    }

    /// `true` for [`PushError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, PushError::Closed(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// Why [`Queue::try_pop`] returned nothing.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum PopError {
    /// Nothing to pop right now; more may come.
    #[error("queue is empty")]
    Empty,
    /// The queue was closed and every item has been popped: nothing will ever come.
    #[error("queue is closed and empty")]
    Closed,
}

/// A snapshot of a [`Queue`]'s counters, read without locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Pushes that succeeded (the admitted items).
    pub pushed: u64,
    /// Pops that returned an item.
    pub popped: u64,
    /// Pushes refused with [`PushError::Full`].
    pub rejected_full: u64,
    /// Pushes refused with [`PushError::Closed`].
    pub rejected_closed: u64,
    /// Items in the queue now (a racy snapshot under concurrency).
    pub depth: usize,
    /// The greatest depth a push has seen, including itself.
    pub max_depth: usize,
}

/// A cache-line aligned wrapper, so `head` and `tail` do not share a line.
#[repr(align(128))]
struct Padded<T>(T);

struct SlotState<T> {
    /// See the module docs: which position may touch `value` next.
    stamp: usize,
    /// `Some` exactly while `stamp == p + 1` for the position `p` that pushed it.
    value: Option<T>,
}

type Slot<T> = Mutex<SlotState<T>>;

/// Locks `slot` if nobody holds it; `None` if somebody does (never waits).
#[inline]
fn try_lock<T>(slot: &Slot<T>) -> Option<MutexGuard<'_, SlotState<T>>> {
    match slot.try_lock() {
        Ok(g) => Some(g),
        // No code here panics while holding a slot; take the state as it is.
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A bounded multi-producer multi-consumer FIFO queue on a fixed array.
///
/// Every operation is non-blocking: a push into a full queue returns
/// [`PushError::Full`] with the value, a pop from an empty one [`PopError::Empty`]. Once
/// [`close`](Queue::close)d, pushes fail with [`PushError::Closed`] and pops drain what is
/// left, then return [`PopError::Closed`]. To wait instead, pair it with [`crate::WaitList`]
/// (as [`crate::Channel`] does) or use the runtime's own wake-up.
///
/// ```
/// use anon_queue::{PopError, PushError, Queue};
///
/// let q = Queue::new(2);
/// q.try_push(1).unwrap();
/// q.try_push(2).unwrap();
/// assert_eq!(q.try_push(3), Err(PushError::Full(3)));
/// assert_eq!(q.try_pop(), Ok(1));
/// q.close();
/// assert_eq!(q.try_push(4), Err(PushError::Closed(4)));
/// assert_eq!(q.try_pop(), Ok(2));
/// assert_eq!(q.try_pop(), Err(PopError::Closed));
/// ```
pub struct Queue<T> {
    /// Next position to pop.
    head: Padded<AtomicUsize>,
    /// Next position to push.
    tail: Padded<AtomicUsize>,
    /// Set once by `close`; read under slot locks (see the module docs).
    closed: AtomicBool,
    /// Counters written only on the cold paths, or rarely.
    rejected_full: AtomicU64,
    rejected_closed: AtomicU64,
    max_depth: std::sync::atomic::AtomicUsize,
    slots: Box<[Slot<T>]>,
    /// Number of slots, `>= 1`.
    cap: usize,
    /// Smallest power of two `> cap`: adding it to a position moves one lap on; the
    /// bits below it are the index.
    one_lap: usize,
}

impl<T> Queue<T> {
    /// A queue holding at most `capacity` items.
    ///
    /// # Panics
    /// If `capacity` is 0 or above `usize::MAX / 4` (a configuration error, not input).
    pub fn new(capacity: usize) -> Queue<T> {
        assert!(
            capacity >= 1,
            "anon_queue::Queue capacity must be at least 1"
        );
        assert!(
            capacity <= usize::MAX / 4,
            "anon_queue::Queue capacity is absurdly large"
        );
        let one_lap = (capacity + 1).next_power_of_two();
        let slots = (0..capacity)
            .map(|i| {
                Mutex::new(SlotState {
                    stamp: i,
                    value: None,
                })
            })
            .collect();
        Queue {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
            rejected_full: AtomicU64::new(0),
            rejected_closed: AtomicU64::new(0),
            max_depth: std::sync::atomic::AtomicUsize::new(0),
            slots,
            cap: capacity,
            one_lap,
        }
    }

    #[inline]
    fn index(&self, pos: usize) -> usize {
        pos & (self.one_lap - 1)
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    #[inline]
    fn next_pos(&self, pos: usize) -> usize {
        if self.index(pos) + 1 < self.cap {
            pos.wrapping_add(1)
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Pushes `value` at the back, or hands it back: [`PushError::Full`] when `capacity`
    /// items are queued, [`PushError::Closed`] after [`close`](Queue::close).
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let mut backoff = Backoff::default();
        loop {
            let tail = self.tail.0.load(Ordering::Acquire);
            let Some(mut slot) = try_lock(&self.slots[self.index(tail)]) else {
                // Another push (or the pop of the previous lap) is on this slot.
                backoff.wait();
                continue;
            };
            if slot.stamp == tail {
                if self.closed.load(Ordering::Acquire) {
                    drop(slot);
                    return Err(self.refuse_closed(value));
                }
                slot.value = Some(value);
                slot.stamp = tail.wrapping_add(1);
                drop(slot);
                // Advance after unlocking, so a pop that sees the new tail finds the slot
                // free. Until then other pushes see the stamp, know `tail` is stale, and
                // re-read it.
                self.tail.0.store(self.next_pos(tail), Ordering::Release);
                self.note_depth(tail);
                return Ok(());
            }
            if slot.stamp.wrapping_add(self.one_lap) == tail.wrapping_add(1) {
                // The slot still holds the value pushed one lap ago: `capacity` items are
                // queued right now.
                drop(slot);
                if self.closed.load(Ordering::Acquire) {
                    return Err(self.refuse_closed(value));
                }
                self.rejected_full.fetch_add(1, Ordering::Relaxed);
                self.max_depth.fetch_max(self.cap, Ordering::Relaxed);
                return Err(PushError::Full(value));
            }
            // `tail` was stale: another push filled this position.
            drop(slot);
            backoff.wait();
        }
    }

    #[cold]
    fn refuse_closed(&self, value: T) -> PushError<T> {
        self.rejected_closed.fetch_add(1, Ordering::Relaxed);
        PushError::Closed(value)
    }

    /// Records the depth seen by the push that filled `tail` when it is a new maximum.
    #[inline]
    fn note_depth(&self, tail: usize) {
        let head = self.head.0.load(Ordering::Relaxed);
        let depth = self.distance(head, self.next_pos(tail));
        if depth > self.max_depth.load(Ordering::Relaxed) {
            self.max_depth.fetch_max(depth, Ordering::Relaxed);
        }
    }

    /// Items between positions `head` and `tail`, clamped to `0..=cap` (racy reads may
    /// see a `head` past `tail`).
    #[inline]
    fn distance(&self, head: usize, tail: usize) -> usize {
        let n = self.ordinal(tail).saturating_sub(self.ordinal(head));
        n.min(self.cap as u64) as usize
    }

    /// How many positions come before `pos` since the queue was made.
    #[inline]
    fn ordinal(&self, pos: usize) -> u64 {
        let laps = (pos / self.one_lap) as u64;
        laps.wrapping_mul(self.cap as u64)
            .wrapping_add(self.index(pos) as u64)
    }

    /// Pops the front item: [`PopError::Empty`] when there is none now,
    /// [`PopError::Closed`] when the queue is closed and drained.
    pub fn try_pop(&self) -> Result<T, PopError> {
        let mut backoff = Backoff::default();
        loop {
            let head = self.head.0.load(Ordering::Acquire);
            // Empty and open: answer without writing to any slot.
            if self.tail.0.load(Ordering::Acquire) == head && !self.closed.load(Ordering::Acquire) {
                return Err(PopError::Empty);
            }
            let Some(mut slot) = try_lock(&self.slots[self.index(head)]) else {
                backoff.wait();
                continue;
            };
            if slot.stamp == head.wrapping_add(1) {
                let value = slot.value.take();
                slot.stamp = head.wrapping_add(self.one_lap);
                drop(slot);
                self.head.0.store(self.next_pos(head), Ordering::Release);
                return match value {
                    Some(v) => Ok(v),
                    // The stamp protocol puts a value in every slot stamped `head + 1`.
                    None => unreachable!("anon_queue: a full stamp on an empty slot"),
                };
            }
            if slot.stamp == head {
                // Nothing pushed at `head` yet. Read `closed` under the slot lock: a push
                // that fills this position later reads it under the same lock.
                let closed = self.closed.load(Ordering::Acquire);
                drop(slot);
                return Err(if closed {
                    PopError::Closed
                } else {
                    PopError::Empty
                });
            }
            // `head` was stale: another pop took this position.
            drop(slot);
            backoff.wait();
        }
    }

    /// Closes the queue: later pushes fail with [`PushError::Closed`]; pops drain the items
    /// already queued. Returns `true` if this call closed it, `false` if it was closed.
    pub fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// `true` once [`close`](Queue::close) ran.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Items queued now (a snapshot; under concurrency it may be stale at once).
    pub fn len(&self) -> usize {
        loop {
            let tail = self.tail.0.load(Ordering::Acquire);
            let head = self.head.0.load(Ordering::Acquire);
            if self.tail.0.load(Ordering::Acquire) == tail {
                return self.distance(head, tail);
            }
            spin_hint();
        }
    }

    /// `true` when no item is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` when `capacity` items are queued (a snapshot).
    pub fn is_full(&self) -> bool {
        self.len() == self.cap
    }

    /// The counters, read without locks. `pushed` and `popped` come from the head and tail
    /// positions themselves, so counting them costs the hot path nothing.
    pub fn stats(&self) -> QueueStats {
        let (head, tail) = loop {
            let tail = self.tail.0.load(Ordering::Acquire);
            let head = self.head.0.load(Ordering::Acquire);
            if self.tail.0.load(Ordering::Acquire) == tail {
                break (head, tail);
            }
            spin_hint();
        };
        QueueStats {
            pushed: self.ordinal(tail),
            popped: self.ordinal(head),
            rejected_full: self.rejected_full.load(Ordering::Relaxed),
            rejected_closed: self.rejected_closed.load(Ordering::Relaxed),
            depth: self.distance(head, tail),
            max_depth: self.max_depth.load(Ordering::Relaxed),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.cap)
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(all(test, not(anon_loom)))]
mod tests {
    use super::*;

    #[test]
    fn positions_wrap_to_the_next_lap() {
        let q: Queue<u8> = Queue::new(3);
        assert_eq!(q.one_lap, 4);
        assert_eq!(q.next_pos(0), 1);
        assert_eq!(q.next_pos(2), 4);
        assert_eq!(q.next_pos(6), 8);
        assert_eq!(q.ordinal(8), 6);
        assert_eq!(q.distance(4, 6), 2);
        let one: Queue<u8> = Queue::new(1);
        assert_eq!((one.one_lap, one.next_pos(0), one.next_pos(2)), (2, 2, 4));
    }

    #[test]
    fn counters_follow_the_positions_over_many_laps() {
        let q = Queue::new(3);
        for i in 0..100u32 {
            q.try_push(i).unwrap();
            assert_eq!(q.try_pop(), Ok(i));
        }
        let s = q.stats();
        assert_eq!((s.pushed, s.popped, s.depth, s.max_depth), (100, 100, 0, 1));
    }
}
