//! A worker's inbox: how other threads hand it work (wake a fiber, start a fiber) without
//! touching its run queue, and wake its `epoll_wait` only when it may be sleeping.
//!
//! The handshake (Dekker-style, all `SeqCst`):
//! - a sender pushes under the lock and sets `pending`, then swaps `sleeping` to `false`;
//!   if it was `true`, it wakes the worker's eventfd;
//! - the worker, before blocking, sets `sleeping = true` and then reads `pending`; if set,
//!   it does not block.
//!
//! At least one side sees the other's write, so a message is never left in the inbox while
//! the worker blocks without a wake pending (loom-checked in `tests/loom.rs`). The inbox
//! is bounded by construction: each fiber is queued in it at most once (see `state.rs`) and
//! spawns are counted against the worker's live-fiber bound before they are pushed.

use crate::sync::{lock, AtomicBool, Mutex, Ordering};
use std::collections::VecDeque;

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
    pending: AtomicBool,
    sleeping: AtomicBool,
    notifier: N,
}

impl<M, N: Notifier> Remote<M, N> {
    /// An empty inbox with room reserved for `capacity` messages.
    pub fn new(capacity: usize, notifier: N) -> Self {
        Remote {
            inbox: Mutex::new(VecDeque::with_capacity(capacity)),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            notifier,
        }
    }

    /// Any thread: hands `msg` to the worker and wakes it if it may be blocked.
    pub fn push(&self, msg: M) {
        {
            let mut q = lock(&self.inbox);
            q.push_back(msg);
            self.pending.store(true, Ordering::SeqCst);
        }
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.notifier.notify();
        }
    }

    /// Worker: moves every message into `out` (cheap when nothing is pending).
    pub fn drain_into(&self, out: &mut VecDeque<M>) {
        if !self.pending.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut q = lock(&self.inbox);
        out.extend(q.drain(..));
    }

    /// Worker, before a blocking poll: `true` if it may block; `false` if messages are
    /// pending (then it must poll without blocking and drain).
    pub fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Worker, after the poll returned.
    pub fn after_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// The notifier (the worker resets it when it sees its event).
    pub fn notifier(&self) -> &N {
        &self.notifier
    }
}
