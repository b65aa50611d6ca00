//! The synchronisation facade: std atomics normally, loom's under `--cfg anon_loom` so the
//! waker's coalescing protocol can be model-checked.

#[cfg(anon_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(anon_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
