//! The one place this crate takes its concurrency primitives from.
//!
//! Algorithm code imports atomics, mutexes, `Arc` and thread parking from here. Under
//! `--cfg anon_loom` every item is loom's instrumented twin, so the models in
//! `tests/loom.rs` explore the same code that ships.

#[cfg(not(anon_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

#[cfg(anon_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// Thread parking, used by [`crate::ThreadParker`].
pub(crate) mod thread {
    #[cfg(anon_loom)]
    pub(crate) use loom::thread::{current, park, Thread};
    #[cfg(not(anon_loom))]
    pub(crate) use std::thread::{current, park, Thread};
}

/// Waiting for another thread to finish its step on a slot: spin a little, longer each
/// time, then yield the CPU (the other thread may have been preempted mid-operation).
/// Under loom every wait is a yield, so the model can make progress.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    const SPIN_LIMIT: u32 = 6;

    #[inline]
    pub(crate) fn wait(&mut self) {
        #[cfg(not(anon_loom))]
        {
            if self.step <= Self::SPIN_LIMIT {
                for _ in 0..1u32 << self.step {
                    std::hint::spin_loop();
                }
                self.step += 1;
            } else {
                std::thread::yield_now();
            }
        }
        #[cfg(anon_loom)]
        {
            self.step = (self.step + 1).min(Self::SPIN_LIMIT + 1);
            loom::thread::yield_now();
        }
    }
}

/// A single busy-wait hint (for loops that re-read a value another thread is about to
/// publish); under loom a yield.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(anon_loom))]
    std::hint::spin_loop();
    #[cfg(anon_loom)]
    loom::thread::yield_now();
}

/// Locks `m`, ignoring poisoning: no code in this crate panics while holding a lock it
/// shares, and every guarded value stays consistent at each unlock.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
