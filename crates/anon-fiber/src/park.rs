//! [`Parker`]: the execution context that waits — the current fiber, or the current thread
//! outside fibers — and its implementation of `anon_queue`'s [`Park`] hook.

use crate::fiber::{FiberShared, WaitOn};
use crate::worker;
use anon_queue::{Park, ThreadParker};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

/// The current fiber (or, outside fibers, the current thread) as something that can park
/// and be woken. Implements [`anon_queue::Park`], so `anon_queue`'s channel and wait lists
/// park fibers without knowing what a fiber is.
///
/// Make it on the context that will park, and keep it there (it is `!Send` in spirit: a
/// fiber parker used from another fiber would park that other fiber).
#[derive(Debug, Clone)]
pub struct Parker {
    inner: Inner,
    on: WaitOn,
}

#[derive(Clone)]
enum Inner {
    Fiber(Arc<FiberShared>),
    Thread(ThreadParker),
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inner::Fiber(s) => write!(f, "Fiber({})", s.id),
            Inner::Thread(_) => f.write_str("Thread"),
        }
    }
}

impl Parker {
    /// A parker for the calling fiber or thread.
    pub fn current() -> Parker {
        Parker::waiting_on(WaitOn::Park)
    }

    /// Like [`current`](Parker::current), recording `on` as what a parked fiber waits for
    /// (shown in the fiber dump).
    pub fn waiting_on(on: WaitOn) -> Parker {
        let inner = match worker::current_fiber() {
            Some(f) => Inner::Fiber(f),
            None => Inner::Thread(ThreadParker::current()),
        };
        Parker { inner, on }
    }

    /// `true` if this parks a fiber (not a thread).
    pub fn is_fiber(&self) -> bool {
        matches!(self.inner, Inner::Fiber(_))
    }

    /// Parks until woken, or until `deadline` (then returns; re-check the condition).
    pub fn park_until(&self, deadline: Option<Instant>) {
        match &self.inner {
            Inner::Fiber(_) => {
                worker::park_fiber(self.on, deadline);
            }
            Inner::Thread(t) => match deadline {
                // Through the hook, so loom's park is used under `--cfg anon_loom`.
                None => t.park(),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if !left.is_zero() {
                        std::thread::park_timeout(left);
                    }
                }
            },
        }
    }
}

impl Park for Parker {
    fn waker(&self) -> Waker {
        match &self.inner {
            Inner::Fiber(f) => Waker::from(Arc::clone(f)),
            Inner::Thread(t) => t.waker(),
        }
    }

    fn park(&self) {
        self.park_until(None);
    }
}
