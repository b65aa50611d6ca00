//! The park/unpark state machine of one fiber.
//!
//! Exactly one party may put a parked fiber back on its worker's run queue: the one whose
//! compare-and-swap moves the state from `PARKED` to `RUNNING`. An unpark that finds the
//! fiber running leaves a token (`NOTIFIED`) that the next park consumes instead of
//! sleeping. So an unpark is never lost and a fiber is never queued twice (loom-checked in
//! `tests/loom.rs`).
//!
//! ```text
//!            park (token present)            unpark (was RUNNING)
//!   RUNNING <───────────────────── NOTIFIED <───────────────────── RUNNING
//!   RUNNING ──commit_park──> PARKED ──unpark (CAS winner queues it)──> RUNNING
//!   any ──finish──> DONE  (unpark of a DONE fiber does nothing)
//! ```

use crate::sync::{AtomicU8, Ordering};

const RUNNING: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;
const DONE: u8 = 3;

/// What a fiber is doing, as seen by the scheduler (for the fiber dump).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Running, or queued to run, on its worker.
    Runnable,
    /// Runnable with an unpark token pending.
    Notified,
    /// Parked: waiting for an unpark.
    Parked,
    /// Finished.
    Done,
}

/// The atomic park state of one fiber. See the module docs.
#[derive(Debug)]
#[doc(hidden)]
pub struct ParkState(AtomicU8);

impl Default for ParkState {
    fn default() -> Self {
        ParkState::new()
    }
}

impl ParkState {
    /// A running fiber without a token.
    pub fn new() -> ParkState {
        ParkState(AtomicU8::new(RUNNING))
    }

    /// Fiber side, before switching out to park: consumes a pending token. `true` means
    /// "an unpark already happened, don't park".
    pub fn try_consume_token(&self) -> bool {
        self.0
            .compare_exchange(NOTIFIED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Scheduler side, after the fiber has switched out asking to park. `true`: the fiber
    /// is now parked and whoever unparks it will queue it. `false`: a token arrived in the
    /// meantime; it is consumed here and the caller must queue the fiber again itself.
    pub fn commit_park(&self) -> bool {
        match self
            .0
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // Only NOTIFIED can be here (PARKED/DONE are set by the owner alone):
                // consume the token.
                self.0.store(RUNNING, Ordering::Release);
                false
            }
        }
    }

    /// Any thread. `true` means the caller won the right (and duty) to queue the fiber on
    /// its worker; `false` means nothing more is to be done (token left, or done).
    pub fn unpark(&self) -> bool {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let next = match cur {
                PARKED => RUNNING,
                RUNNING => NOTIFIED,
                _ => return false,
            };
            match self
                .0
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return cur == PARKED,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Owner side: the fiber finished; later unparks are ignored.
    pub fn finish(&self) {
        self.0.store(DONE, Ordering::Release);
    }

    /// A snapshot, for diagnostics.
    pub fn get(&self) -> RunState {
        match self.0.load(Ordering::Acquire) {
            RUNNING => RunState::Runnable,
            NOTIFIED => RunState::Notified,
            PARKED => RunState::Parked,
            _ => RunState::Done,
        }
    }
}
