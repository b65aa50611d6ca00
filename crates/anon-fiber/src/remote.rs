//! A worker's inbox: how other threads hand it work (wake a fiber, start a fiber) without
//! touching its run queue, and wake its `epoll_wait` only when it may be sleeping.
//!
//! The handshake lives in one atomic word, changed only by read-modify-write operations
//! (so it needs no `SeqCst` store/load pairing, which loom could not check either):
//! - a sender pushes under the lock, then sets `PENDING` and clears `SLEEPING` in one
//!   compare-and-swap; if `SLEEPING` was set, it wakes the worker's eventfd;
//! - the worker, before blocking, sets `SLEEPING` by compare-and-swap only if `PENDING` is
//!   clear; otherwise it does not block.
//!
//! The two compare-and-swaps are ordered in the word's modification order, so either the
//! sender sees `SLEEPING` (and notifies) or the worker sees `PENDING` (and does not block):
//! a message is never left in the inbox while the worker blocks without a wake pending
//! (loom-checked in `tests/loom.rs`). The inbox is bounded by construction: each fiber is
//! queued in it at most once (see `state.rs`) and spawns are counted against the worker's
//! live-fiber bound before they are pushed.

use crate::sync::{lock, AtomicU8, Mutex, Ordering};
use std::collections::VecDeque;

const PENDING: u8 = 1;
const SLEEPING: u8 = 2;

/// Something that interrupts the worker's blocking poll (the reactor's eventfd `Waker`).
#[doc(hidden)]
pub trait Notifier {
    /// Makes the worker's current or next blocking poll return.
    fn notify(&self);
}

/// The inbox of one worker. See the module docs.
#[doc(hidden)]
pub struct Remote<M, N> {
    inbox: Mutex<VecDeque<M>>,
    /// `PENDING | SLEEPING` bits, see the module docs.
    state: AtomicU8,
    notifier: N,
}

impl<M, N: Notifier> Remote<M, N> {
    /// An empty inbox with room reserved for `capacity` messages.
    pub fn new(capacity: usize, notifier: N) -> Self {
        Remote {
            inbox: Mutex::new(VecDeque::with_capacity(capacity)),
            state: AtomicU8::new(0),
            notifier,
        }
    }

    /// Any thread: hands `msg` to the worker and wakes it if it may be blocked.
    pub fn push(&self, msg: M) {
        lock(&self.inbox).push_back(msg);
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let next = (cur | PENDING) & !SLEEPING;
            match self
                .state
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if cur & SLEEPING != 0 {
            self.notifier.notify();
        }
    }

    /// Worker: moves every message into `out` (cheap when nothing is pending).
    pub fn drain_into(&self, out: &mut VecDeque<M>) {
        if self.state.fetch_and(!PENDING, Ordering::AcqRel) & PENDING == 0 {
            return;
        }
        let mut q = lock(&self.inbox);
        out.extend(q.drain(..));
    }

    /// Worker, before a blocking poll: `true` if it may block; `false` if messages are
    /// pending (then it must poll without blocking and drain).
    pub fn prepare_sleep(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & PENDING != 0 {
                return false;
            }
            match self.state.compare_exchange(
                cur,
                cur | SLEEPING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Worker: `true` if messages are pending (a hint for spinning; the decision to block
    /// is [`prepare_sleep`](Remote::prepare_sleep)'s).
    pub fn has_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) & PENDING != 0
    }

    /// Worker, after the poll returned.
    pub fn after_sleep(&self) {
        self.state.fetch_and(!SLEEPING, Ordering::AcqRel);
    }

    /// The notifier (the worker resets it when it sees its event).
    pub fn notifier(&self) -> &N {
        &self.notifier
    }
}
