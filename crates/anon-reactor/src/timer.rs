use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

/// Bits of tick per wheel level: 64 slots per level.
const LEVEL_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;
/// Levels: 8 × 6 = 48 bits of milliseconds, about 8 900 years.
const LEVELS: usize = 8;
/// The largest tick a deadline is stored as; later deadlines saturate to it and never fire
/// (in practice: nothing runs for 8 900 years).
const MAX_TICK: u64 = (1 << (LEVEL_BITS as u64 * LEVELS as u64)) - 1;
/// "No entry" in the intrusive lists and the free list.
const NIL: usize = usize::MAX;

/// Names one timer of a [`TimerWheel`], for [`TimerWheel::cancel`].
///
/// Keys are never reused: a key whose timer fired or was cancelled is *stale* and
/// cancelling it again is harmless (returns `None`), even after its storage was reused by
/// another timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey {
    idx: usize,
    seq: u64,
}

/// Where a live timer sits.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// In the intrusive list of wheel slot `(level, slot)`.
    Wheel {
        level: u8,
        slot: u8,
        prev: usize,
        next: usize,
    },
    /// Expired, waiting in the ready heap to be popped.
    Ready,
}

#[derive(Debug)]
struct Entry<T> {
    deadline: Instant,
    /// `deadline` in whole ms since `origin`, rounded up, saturated at `MAX_TICK`.
    tick: u64,
    /// Insertion number: unique, orders ties, and tells live keys from stale ones.
    seq: u64,
    place: Place,
    value: T,
}

#[derive(Debug)]
enum Slot<T> {
    Vacant { next_free: usize },
    Occupied(Entry<T>),
}

/// A hierarchical timer wheel with millisecond resolution: O(1) insert and cancel.
///
/// One per reactor thread. The owner asks [`timeout`](TimerWheel::timeout) for the
/// `epoll_wait` timeout, and after each poll calls [`pop_expired`](TimerWheel::pop_expired)
/// until it returns `None`.
///
/// # Rounding and order
/// Time is counted in whole milliseconds (ticks) since the `now` given to
/// [`new`](TimerWheel::new). A deadline is rounded **up** to the next tick, and a tick is
/// due once `now` has reached it (`now` rounded down). So a timer **never fires before its
/// deadline**, and fires at most 1 ms late plus however late the caller polls.
/// `pop_expired` yields due timers in exact deadline order (the full `Instant`, not the
/// tick), ties in insertion order. A deadline at or before the current time is due at the
/// next `pop_expired`.
///
/// # Structure
/// 8 levels of 64 slots; level `L` slots span `64^L` ms, so deadlines up to about 8 900
/// years ahead are representable (later ones never fire). A timer is inserted into the
/// level where its tick first differs from the current tick and moves down a level each
/// time its slot comes due (at most 8 moves in its life). Slots are intrusive doubly linked
/// lists over a slab, so cancel is O(1). Due timers wait in a small heap ordered by
/// `(deadline, insertion)`; cancelling one of those leaves a stale heap record behind that
/// is discarded when reached, so the heap holds at most the timers that became due since
/// the caller last drained `pop_expired`.
///
/// [`next_deadline`](TimerWheel::next_deadline) may be earlier than the earliest deadline
/// (when the next due slot lies on a higher level, it is that slot's start, where timers
/// move down a level); it is never later. A poll that wakes there and finds nothing is the
/// price of O(1) insertion.
///
/// ```
/// use anon_reactor::TimerWheel;
/// use std::time::{Duration, Instant};
///
/// let t0 = Instant::now();
/// let mut wheel = TimerWheel::new(t0);
/// let late = wheel.insert(t0 + Duration::from_millis(20), "late");
/// let _early = wheel.insert(t0 + Duration::from_millis(10), "early");
/// assert_eq!(wheel.timeout(t0), Some(Duration::from_millis(10)));
/// assert_eq!(wheel.cancel(late), Some("late"));
/// assert_eq!(wheel.cancel(late), None); // stale key: harmless
///
/// assert!(wheel.pop_expired(t0 + Duration::from_millis(9)).is_none());
/// let (_, v) = wheel.pop_expired(t0 + Duration::from_millis(30)).unwrap();
/// assert_eq!(v, "early");
/// assert!(wheel.is_empty());
/// ```
pub struct TimerWheel<T> {
    /// Tick 0.
    origin: Instant,
    /// The current tick: every wheel entry has `tick > elapsed`, every entry with
    /// `tick <= elapsed` is in `ready`.
    elapsed: u64,
    entries: Vec<Slot<T>>,
    /// Head of the free list of `entries` (`NIL` if none).
    free: usize,
    /// List heads per level and slot (`NIL` if empty).
    heads: [[usize; SLOTS]; LEVELS],
    /// Bit `s` of `occupied[l]` is set iff `heads[l][s] != NIL`.
    occupied: [u64; LEVELS],
    /// Due timers by `(deadline, seq)`; may hold stale records of cancelled timers.
    ready: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    len: usize,
    next_seq: u64,
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose tick 0 is `now`.
    pub fn new(now: Instant) -> TimerWheel<T> {
        TimerWheel {
            origin: now,
            elapsed: 0,
            entries: Vec::new(),
            free: NIL,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            ready: BinaryHeap::new(),
            len: 0,
            next_seq: 0,
        }
    }

    /// How many timers are pending (inserted, neither popped nor cancelled).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` for `deadline`; O(1).
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        let tick = self.tick_of(deadline);
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            deadline,
            tick,
            seq,
            place: Place::Ready,
            value,
        };
        let idx = if self.free == NIL {
            self.entries.push(Slot::Occupied(entry));
            self.entries.len() - 1
        } else {
            let idx = self.free;
            self.free = match self.entries[idx] {
                Slot::Vacant { next_free } => next_free,
                Slot::Occupied(_) => unreachable!("free list points at a live entry"),
            };
            self.entries[idx] = Slot::Occupied(entry);
            idx
        };
        self.len += 1;
        if tick <= self.elapsed {
            self.ready.push(Reverse((deadline, seq, idx)));
        } else {
            self.link(idx, tick);
        }
        TimerKey { idx, seq }
    }

    /// Cancels a pending timer and returns its value; `None` for a stale key (the timer
    /// already fired or was cancelled). O(1).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        match self.entries.get(key.idx) {
            Some(Slot::Occupied(e)) if e.seq == key.seq => {}
            _ => return None,
        }
        if let Place::Wheel { .. } = self.entry(key.idx).place {
            self.unlink(key.idx);
        }
        // A `Ready` entry leaves a stale heap record, skipped by `pop_expired`.
        Some(self.release(key.idx))
    }

    /// The earliest instant at which [`pop_expired`](TimerWheel::pop_expired) may return a
    /// timer, or `None` if no timer is pending. Never later than the earliest deadline;
    /// may be earlier (see the type docs).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let ready = self.ready.peek().map(|Reverse((d, _, _))| *d);
        let wheel = self
            .next_expiration()
            .and_then(|(_, _, start)| self.origin.checked_add(Duration::from_millis(start)));
        match (ready, wheel) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The `epoll_wait` timeout from `now`: zero if a timer is already due, `None` if no
    /// timer is pending. [`Poll::poll`](crate::Poll::poll) rounds it up to whole ms, which
    /// is exactly what the wheel needs.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|d| d.saturating_duration_since(now))
    }

    /// Removes and returns the earliest due timer (deadline at or before `now`, see the
    /// type docs for rounding), or `None`. Call it until `None` after every poll.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerKey, T)> {
        let now_tick = now
            .saturating_duration_since(self.origin)
            .as_millis()
            .min(u128::from(MAX_TICK - 1)) as u64;
        self.advance(now_tick);
        while let Some(&Reverse((deadline, seq, idx))) = self.ready.peek() {
            let live = matches!(&self.entries[idx], Slot::Occupied(e) if e.seq == seq);
            if live && deadline > now {
                // Only when the caller's clock went backwards: keep it for later.
                return None;
            }
            self.ready.pop();
            if live {
                return Some((TimerKey { idx, seq }, self.release(idx)));
            }
        }
        None
    }

    /// Ticks since `origin`, rounded up, saturated.
    fn tick_of(&self, deadline: Instant) -> u64 {
        match deadline.checked_duration_since(self.origin) {
            None => 0,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(u128::from(MAX_TICK)) as u64,
        }
    }

    fn entry(&self, idx: usize) -> &Entry<T> {
        match &self.entries[idx] {
            Slot::Occupied(e) => e,
            Slot::Vacant { .. } => unreachable!("timer index {idx} is vacant"),
        }
    }

    fn entry_mut(&mut self, idx: usize) -> &mut Entry<T> {
        match &mut self.entries[idx] {
            Slot::Occupied(e) => e,
            Slot::Vacant { .. } => unreachable!("timer index {idx} is vacant"),
        }
    }

    /// Frees the (unlinked) entry `idx` and returns its value.
    fn release(&mut self, idx: usize) -> T {
        let slot = std::mem::replace(
            &mut self.entries[idx],
            Slot::Vacant {
                next_free: self.free,
            },
        );
        self.free = idx;
        self.len -= 1;
        if self.len == 0 {
            // Only stale records can be left: drop them, so the heap never outgrows the
            // live timers between drains.
            self.ready.clear();
        }
        match slot {
            Slot::Occupied(e) => e.value,
            Slot::Vacant { .. } => unreachable!("released a vacant timer"),
        }
    }

    /// Puts entry `idx` (with `tick > elapsed`) at the head of its wheel slot.
    fn link(&mut self, idx: usize, tick: u64) {
        debug_assert!(tick > self.elapsed);
        let level = level_for(self.elapsed, tick);
        let slot = slot_for(tick, level);
        let head = self.heads[level][slot];
        if head != NIL {
            if let Place::Wheel { prev, .. } = &mut self.entry_mut(head).place {
                *prev = idx;
            }
        }
        self.entry_mut(idx).place = Place::Wheel {
            level: level as u8,
            slot: slot as u8,
            prev: NIL,
            next: head,
        };
        self.heads[level][slot] = idx;
        self.occupied[level] |= 1 << slot;
    }

    /// Takes entry `idx` out of its wheel slot.
    fn unlink(&mut self, idx: usize) {
        let Place::Wheel {
            level,
            slot,
            prev,
            next,
        } = self.entry(idx).place
        else {
            return;
        };
        let (level, slot) = (level as usize, slot as usize);
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1 << slot);
            }
        } else if let Place::Wheel { next: n, .. } = &mut self.entry_mut(prev).place {
            *n = next;
        }
        if next != NIL {
            if let Place::Wheel { prev: p, .. } = &mut self.entry_mut(next).place {
                *p = prev;
            }
        }
        self.entry_mut(idx).place = Place::Ready;
    }

    /// The first non-empty slot: `(level, slot, its first tick)`. Lower levels always hold
    /// earlier ticks than higher ones, so the first level with any entry has it.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        (0..LEVELS).find_map(|level| {
            let occ = self.occupied[level];
            if occ == 0 {
                return None;
            }
            let shift = LEVEL_BITS * level as u32;
            let pos = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            // Invariant: entries of this level lie in slots after `pos` of the current
            // block (the slot at `pos` itself would have been cascaded already).
            let slot = pos + occ.rotate_right(pos as u32).trailing_zeros() as usize;
            debug_assert!(slot < SLOTS, "wheel entry behind the current tick");
            let block = self.elapsed & !((1u64 << (shift + LEVEL_BITS)) - 1);
            Some((level, slot, block + ((slot as u64) << shift)))
        })
    }

    /// Moves the wheel to tick `now_tick`: every slot that starts at or before it is taken
    /// apart, its due entries going to `ready` and the rest one level down or more.
    fn advance(&mut self, now_tick: u64) {
        if now_tick <= self.elapsed {
            return;
        }
        while let Some((level, slot, start)) = self.next_expiration() {
            if start > now_tick {
                break;
            }
            debug_assert!(start > self.elapsed);
            self.elapsed = start;
            let mut idx = std::mem::replace(&mut self.heads[level][slot], NIL);
            self.occupied[level] &= !(1 << slot);
            while idx != NIL {
                let e = self.entry_mut(idx);
                let Place::Wheel { next, .. } = e.place else {
                    unreachable!("wheel list holds a ready entry")
                };
                let tick = e.tick;
                if tick <= start {
                    e.place = Place::Ready;
                    let key = (e.deadline, e.seq, idx);
                    self.ready.push(Reverse(key));
                } else {
                    self.link(idx, tick);
                }
                idx = next;
            }
        }
        self.elapsed = now_tick;
    }
}

/// The level at which `when` (> `elapsed`) first differs from `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / LEVEL_BITS) as usize
}

/// The slot of tick `when` at `level`.
fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (LEVEL_BITS * level as u32)) as usize) & (SLOTS - 1)
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.len)
            .field("elapsed_ms", &self.elapsed)
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_slots() {
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, MAX_TICK), LEVELS - 1);
        assert_eq!(slot_for(64 * 5 + 3, 1), 5);
        assert_eq!(slot_for(64 * 5 + 3, 0), 3);
    }

    #[test]
    fn cascades_down_and_fires_on_time() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        let ms = |n| t0 + Duration::from_millis(n);
        w.insert(ms(5000), 5000u64);
        w.insert(ms(70), 70);
        w.insert(ms(64), 64);
        // Level 1 slot 1 starts at tick 64: the hint may be early, never late.
        assert_eq!(w.next_deadline(), Some(ms(64)));
        assert!(w.pop_expired(ms(63)).is_none());
        assert_eq!(w.pop_expired(ms(64)).map(|(_, v)| v), Some(64));
        assert!(w.pop_expired(ms(69)).is_none());
        assert_eq!(w.next_deadline(), Some(ms(70)));
        assert_eq!(w.pop_expired(ms(4999)).map(|(_, v)| v), Some(70));
        assert!(w.pop_expired(ms(4999)).is_none());
        assert_eq!(w.pop_expired(ms(5000)).map(|(_, v)| v), Some(5000));
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn sub_millisecond_deadline_rounds_up() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        w.insert(t0 + Duration::from_micros(1500), ());
        assert!(w.pop_expired(t0 + Duration::from_micros(1999)).is_none());
        assert!(w.pop_expired(t0 + Duration::from_millis(2)).is_some());
    }

    #[test]
    fn far_future_never_fires_and_past_fires_at_once() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0 + Duration::from_secs(10));
        let far = w.insert(t0 + Duration::from_secs(400 * 365 * 86_400), "far");
        w.insert(t0, "past");
        assert_eq!(
            w.timeout(t0 + Duration::from_secs(10)),
            Some(Duration::ZERO)
        );
        let now = t0 + Duration::from_secs(11);
        assert_eq!(w.pop_expired(now).map(|(_, v)| v), Some("past"));
        assert!(w.pop_expired(now).is_none());
        assert_eq!(w.cancel(far), Some("far"));
    }
}
