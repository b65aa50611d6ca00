//! The bounded MPMC array ring.
//!
//! Design (sequence-stamped slots after Dmitry Vyukov's bounded MPMC queue):
//!
//! - `head` and `tail` are positions `lap | index`: the low bits (below `closed_bit`) are
//!   the slot index, the bits above `closed_bit` count laps. `tail` also carries
//!   `closed_bit` once [`Queue::close`] ran, so a push's claiming CAS fails after a close.
//! - Every slot has a `stamp`. `stamp == pos` means "free for the push at `pos`";
//!   `stamp == pos + 1` means "holds the value pushed at `pos`, ready for the pop at `pos`".
//!   A pop at `pos` leaves `pos + one_lap`: free for the push one lap later.
//! - A push claims position `t` by CAS on `tail`, then owns the slot until it stores the
//!   stamp `t + 1` (release). A pop claims by CAS on `head` and owns the slot until it stores
//!   `h + one_lap`. The stamps therefore give each slot exactly one owner at a time.
//! - The value itself sits in a per-slot `Mutex<Option<T>>`. The stamps already grant
//!   exclusive access, so that lock is never contended; it exists only because this crate
//!   has no `unsafe` (an `UnsafeCell` would be the zero-cost choice). It costs two
//!   uncontended atomic operations per push and per pop; `BENCHMARKS.md` measures the price.

use crate::sync::{lock, spin_hint, AtomicU64, AtomicUsize, Mutex, Ordering};
use std::fmt;

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

struct Slot<T> {
    /// See the module docs: which position may touch `value` next.
    stamp: AtomicUsize,
    /// `Some` exactly while `stamp == pos + 1` for the position that pushed it.
    value: Mutex<Option<T>>,
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
    /// Next position to pop. Never carries `closed_bit`.
    head: Padded<AtomicUsize>,
    /// Next position to push, plus `closed_bit` once closed.
    tail: Padded<AtomicUsize>,
    /// Counters written only on the cold paths (or rarely), hence away from head/tail.
    rejected_full: AtomicU64,
    rejected_closed: AtomicU64,
    max_depth: AtomicUsize,
    slots: Box<[Slot<T>]>,
    /// Number of slots, `>= 1`.
    cap: usize,
    /// Smallest power of two `>= cap`: the bit set in `tail` on close. Indices are below it.
    closed_bit: usize,
    /// `closed_bit << 1`: adding it to a position moves one lap on.
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
        let closed_bit = capacity.next_power_of_two();
        let one_lap = closed_bit << 1;
        let slots = (0..capacity)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: Mutex::new(None),
            })
            .collect();
        Queue {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            rejected_full: AtomicU64::new(0),
            rejected_closed: AtomicU64::new(0),
            max_depth: AtomicUsize::new(0),
            slots,
            cap: capacity,
            closed_bit,
            one_lap,
        }
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    #[inline]
    fn next_pos(&self, pos: usize) -> usize {
        let index = pos & (self.closed_bit - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Pushes `value` at the back, or hands it back: [`PushError::Full`] when `capacity`
    /// items are queued, [`PushError::Closed`] after [`close`](Queue::close).
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let mut tail = self.tail.0.load(Ordering::Relaxed);
        loop {
            if tail & self.closed_bit != 0 {
                self.rejected_closed.fetch_add(1, Ordering::Relaxed);
                return Err(PushError::Closed(value));
            }
            let index = tail & (self.closed_bit - 1);
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                // The slot is free for this position: try to claim it.
                let next = self.next_pos(tail);
                match self.tail.0.compare_exchange_weak(
                    tail,
                    next,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        *lock(&slot.value) = Some(value);
                        slot.stamp.store(tail.wrapping_add(1), Ordering::Release);
                        self.note_depth(tail);
                        return Ok(());
                    }
                    Err(now) => {
                        tail = now;
                        spin_hint();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail.wrapping_add(1) {
                // The slot still holds the value pushed one lap ago. If the head is still
                // there, the queue is full; otherwise a pop is finishing: look again.
                let head = self.head.0.load(Ordering::Acquire);
                if head.wrapping_add(self.one_lap) == tail {
                    self.rejected_full.fetch_add(1, Ordering::Relaxed);
                    self.max_depth.fetch_max(self.cap, Ordering::Relaxed);
                    return Err(PushError::Full(value));
                }
                spin_hint();
                tail = self.tail.0.load(Ordering::Relaxed);
            } else {
                // Another push got this position first.
                spin_hint();
                tail = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Records the depth seen by the push that claimed `tail` when it is a new maximum.
    #[inline]
    fn note_depth(&self, tail: usize) {
        let head = self.head.0.load(Ordering::Relaxed);
        let depth = self.distance(head, self.next_pos(tail));
        if depth > self.max_depth.load(Ordering::Relaxed) {
            self.max_depth.fetch_max(depth, Ordering::Relaxed);
        }
    }

    /// Items between positions `head` and `tail`, clamped to `0..=cap` (racy reads may
    /// see a `head` past `tail` or a lap behind).
    #[inline]
    fn distance(&self, head: usize, tail: usize) -> usize {
        let n = self.ordinal(tail).saturating_sub(self.ordinal(head));
        n.min(self.cap as u64) as usize
    }

    /// How many positions come before `pos` since the queue was made.
    #[inline]
    fn ordinal(&self, pos: usize) -> u64 {
        let pos = pos & !self.closed_bit;
        let laps = (pos / self.one_lap) as u64;
        let index = (pos & (self.closed_bit - 1)) as u64;
        laps.wrapping_mul(self.cap as u64).wrapping_add(index)
    }

    /// Pops the front item: [`PopError::Empty`] when there is none now,
    /// [`PopError::Closed`] when the queue is closed and drained.
    pub fn try_pop(&self) -> Result<T, PopError> {
        let mut head = self.head.0.load(Ordering::Relaxed);
        loop {
            let index = head & (self.closed_bit - 1);
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                // The slot holds the value for this position: try to claim it.
                let next = self.next_pos(head);
                match self.head.0.compare_exchange_weak(
                    head,
                    next,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let value = lock(&slot.value).take();
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return match value {
                            Some(v) => Ok(v),
                            // The stamp protocol puts a value in every slot a pop claims.
                            None => unreachable!("anon_queue: claimed an empty slot"),
                        };
                    }
                    Err(now) => {
                        head = now;
                        spin_hint();
                    }
                }
            } else if stamp == head {
                // No value yet. If the tail is here too, the queue is empty; otherwise a
                // push is finishing: look again.
                let tail = self.tail.0.load(Ordering::Acquire);
                if tail & !self.closed_bit == head {
                    return Err(if tail & self.closed_bit != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                spin_hint();
                head = self.head.0.load(Ordering::Relaxed);
            } else {
                // Another pop got this position first.
                spin_hint();
                head = self.head.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue: later pushes fail with [`PushError::Closed`]; pops drain the items
    /// already queued. Returns `true` if this call closed it, `false` if it was closed.
    pub fn close(&self) -> bool {
        let prev = self.tail.0.fetch_or(self.closed_bit, Ordering::AcqRel);
        prev & self.closed_bit == 0
    }

    /// `true` once [`close`](Queue::close) ran.
    pub fn is_closed(&self) -> bool {
        self.tail.0.load(Ordering::Acquire) & self.closed_bit != 0
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
        assert_eq!(q.closed_bit, 4);
        assert_eq!(q.one_lap, 8);
        assert_eq!(q.next_pos(0), 1);
        assert_eq!(q.next_pos(2), 8);
        assert_eq!(q.next_pos(10), 16);
        assert_eq!(q.ordinal(16), 6);
        assert_eq!(q.distance(8, 10), 2);
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
