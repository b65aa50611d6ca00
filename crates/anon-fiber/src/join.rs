//! [`JoinHandle`] and the one-shot result slot behind it.

use crate::fiber::{Fiber, FiberShared, WaitOn};
use crate::park::Parker;
use anon_queue::Park;
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Why [`JoinHandle::join`] has no value.
#[derive(thiserror::Error)]
pub enum JoinError {
    /// The fiber panicked; the payload is the panic's (as from `std::thread::JoinHandle`).
    #[error("fiber panicked: {}", panic_message(.0))]
    Panicked(Box<dyn Any + Send>),
    /// The fiber never finished: the runtime shut down, or no stack could be mapped for it.
    #[error("fiber was cancelled before it finished")]
    Cancelled,
}

impl std::fmt::Debug for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "Panicked({:?})", panic_message(p)),
            JoinError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl JoinError {
    /// `true` for [`JoinError::Panicked`].
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            JoinError::Cancelled => None,
        }
    }
}

fn panic_message(p: &Box<dyn Any + Send>) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string payload>")
}

struct State<T> {
    result: Option<Result<T, JoinError>>,
    done: bool,
    waiter: Option<Waker>,
}

/// A one-shot result slot with one waiter (a fiber or a thread).
pub(crate) struct JoinInner<T> {
    state: Mutex<State<T>>,
}

impl<T> JoinInner<T> {
    pub(crate) fn new() -> Arc<JoinInner<T>> {
        Arc::new(JoinInner {
            state: Mutex::new(State {
                result: None,
                done: false,
                waiter: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn set(&self, r: Result<T, JoinError>) {
        let waiter = {
            let mut s = self.lock();
            if s.done {
                return;
            }
            s.done = true;
            s.result = Some(r);
            s.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.lock().done
    }

    /// Waits for the result until `deadline`; `None` on timeout (the result stays).
    pub(crate) fn wait(
        &self,
        on: WaitOn,
        deadline: Option<Instant>,
    ) -> Option<Result<T, JoinError>> {
        let parker = Parker::waiting_on(on);
        loop {
            {
                let mut s = self.lock();
                if s.done {
                    return Some(s.result.take().unwrap_or(Err(JoinError::Cancelled)));
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    s.waiter = None;
                    return None;
                }
                let w = parker.waker();
                if !s.waiter.as_ref().is_some_and(|x| x.will_wake(&w)) {
                    s.waiter = Some(w);
                }
            }
            parker.park_until(deadline);
        }
    }
}

/// The producing side of a [`JoinInner`]: completes it once; if dropped without completing
/// (a cancelled fiber, a dropped job), completes it with [`JoinError::Cancelled`].
pub(crate) struct Completer<T> {
    inner: Option<Arc<JoinInner<T>>>,
}

impl<T> Completer<T> {
    pub(crate) fn new(inner: Arc<JoinInner<T>>) -> Completer<T> {
        Completer { inner: Some(inner) }
    }

    pub(crate) fn complete(mut self, r: Result<T, JoinError>) {
        if let Some(i) = self.inner.take() {
            i.set(r);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(i) = self.inner.take() {
            i.set(Err(JoinError::Cancelled));
        }
    }
}

/// An owned permission to wait for a fiber's result.
///
/// [`join`](JoinHandle::join) parks the calling fiber (or blocks the calling thread) until
/// the fiber finishes. Dropping the handle detaches the fiber: it keeps running.
pub struct JoinHandle<T> {
    inner: Arc<JoinInner<T>>,
    fiber: Fiber,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(inner: Arc<JoinInner<T>>, fiber: Arc<FiberShared>) -> JoinHandle<T> {
        JoinHandle {
            inner,
            fiber: Fiber(fiber),
        }
    }

    /// The fiber's handle (id, name, unpark).
    pub fn fiber(&self) -> &Fiber {
        &self.fiber
    }

    /// `true` once the fiber has finished (returned, panicked or was cancelled).
    pub fn is_finished(&self) -> bool {
        self.inner.is_done()
    }

    /// Waits for the fiber to finish and returns its value, or the panic it died of.
    pub fn join(self) -> Result<T, JoinError> {
        self.inner
            .wait(WaitOn::Join, None)
            .unwrap_or(Err(JoinError::Cancelled))
    }

    /// Like [`join`](JoinHandle::join) but gives the handle back after `timeout`.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        let deadline = Instant::now().checked_add(timeout);
        match self.inner.wait(WaitOn::Join, deadline) {
            Some(r) => Ok(r),
            None => Err(self),
        }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("fiber", &self.fiber)
            .field("finished", &self.is_finished())
            .finish()
    }
}
