//! The one place the scheduler's cross-thread algorithms take their primitives from.
//!
//! Under `--cfg anon_loom` these are loom's instrumented twins, so `tests/loom.rs` explores
//! the same code that ships (the park/unpark state machine in `state.rs` and the worker
//! inbox handshake in `remote.rs`). Code that never crosses threads uses `std` directly.

#[cfg(not(anon_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU8, Ordering},
    Mutex, MutexGuard,
};

#[cfg(anon_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU8, Ordering},
    Mutex, MutexGuard,
};

/// Locks `m`, ignoring poisoning: the scheduler never panics while holding its own locks,
/// and a panicking fiber unwinds only its own stack, after releasing what it held.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// [`lock`] for plain `std` mutexes (state that is never loom-modelled).
#[inline]
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
