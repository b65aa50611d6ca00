//! Integration tests of `anon-fiber` (one binary; a module per area).

mod blocking;
mod io;
mod overflow;
mod sched;
mod sync;

use std::time::{Duration, Instant};

/// A deadline for bounded waits in tests.
pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}
