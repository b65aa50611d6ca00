//! The blocking pool: a bounded set of threads with a bounded queue, for closures that
//! would stall a worker (file I/O, DNS, CPU-heavy work).

use crate::fiber::WaitOn;
use crate::join::{Completer, JoinError, JoinInner};
use crate::BlockingError;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

pub(crate) struct BlockingPool {
    state: Arc<(Mutex<State>, Condvar)>,
    max_threads: usize,
    queue_cap: usize,
    name: String,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl BlockingPool {
    pub(crate) fn new(name: String, max_threads: usize, queue_cap: usize) -> BlockingPool {
        BlockingPool {
            state: Arc::new((
                Mutex::new(State {
                    queue: VecDeque::with_capacity(queue_cap.min(1024)),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                }),
                Condvar::new(),
            )),
            max_threads,
            queue_cap,
            name,
        }
    }

    /// Queues `f`; [`BlockingError::Again`] when `queue_cap` closures already wait.
    pub(crate) fn submit<F, T>(&self, f: F) -> Result<BlockingHandle<T>, BlockingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let inner = JoinInner::new();
        let completer = Completer::new(Arc::clone(&inner));
        let job: Job = Box::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::Panicked);
            completer.complete(r);
        });
        let (m, cv) = &*self.state;
        let mut s = lock(m);
        if s.shutdown {
            return Err(BlockingError::Shutdown);
        }
        // Waiting closures beyond the idle threads that will take them at once.
        if s.queue.len() >= self.queue_cap + s.idle {
            return Err(BlockingError::Again);
        }
        s.queue.push_back(job);
        if s.idle > 0 {
            cv.notify_one();
        } else if s.threads < self.max_threads {
            let state = Arc::clone(&self.state);
            let spawned = std::thread::Builder::new()
                .name(self.name.clone())
                .spawn(move || run(&state));
            match spawned {
                Ok(_) => s.threads += 1,
                Err(_) if s.threads == 0 => {
                    s.queue.pop_back();
                    return Err(BlockingError::Again);
                }
                Err(_) => {}
            }
        }
        Ok(BlockingHandle { inner })
    }

    pub(crate) fn shutdown(&self) {
        let (m, cv) = &*self.state;
        let dropped: Vec<Job> = {
            let mut s = lock(m);
            s.shutdown = true;
            s.queue.drain(..).collect()
        };
        cv.notify_all();
        // Dropping a job cancels its handle.
        drop(dropped);
    }
}

fn run(state: &(Mutex<State>, Condvar)) {
    let (m, cv) = state;
    let mut s = lock(m);
    loop {
        if let Some(job) = s.queue.pop_front() {
            drop(s);
            job();
            s = lock(m);
            continue;
        }
        if s.shutdown {
            s.threads -= 1;
            return;
        }
        s.idle += 1;
        s = match cv.wait(s) {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        s.idle -= 1;
    }
}

/// The result of a closure submitted with [`Handle::spawn_blocking`](crate::Handle::spawn_blocking).
pub struct BlockingHandle<T> {
    inner: Arc<JoinInner<T>>,
}

impl<T> BlockingHandle<T> {
    /// Waits (parking the fiber, or blocking the thread) for the closure's value.
    pub fn join(self) -> Result<T, BlockingError> {
        match self.inner.wait(WaitOn::Blocking, None) {
            Some(Ok(v)) => Ok(v),
            Some(Err(JoinError::Panicked(p))) => Err(BlockingError::Panicked(p)),
            Some(Err(JoinError::Cancelled)) | None => Err(BlockingError::Shutdown),
        }
    }

    /// `true` once the closure has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_done()
    }
}

impl<T> std::fmt::Debug for BlockingHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Runs `f` on the runtime's blocking pool and parks the calling fiber until it returns.
///
/// [`BlockingError::Again`] when the pool's queue is full (no waiting: the caller answers
/// "try again"). Outside a runtime's threads, `f` simply runs on the calling thread.
pub fn spawn_blocking<F, T>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match crate::Handle::current() {
        Some(h) => h.spawn_blocking(f)?.join(),
        None => Ok(f()),
    }
}
