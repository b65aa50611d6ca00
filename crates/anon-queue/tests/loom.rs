//! Loom models (run with `cargo xtask loom`).
#![cfg(anon_loom)]
