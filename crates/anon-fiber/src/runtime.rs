//! [`Runtime`], its [`Builder`] and [`Handle`]: N pinned worker threads.

use crate::blocking::{BlockingHandle, BlockingPool};
use crate::fiber::{FiberInfo, FiberShared, WaitOn};
use crate::join::{Completer, JoinHandle, JoinInner};
use crate::remote::Remote;
use crate::worker::{self, fiber_body, EventfdNotifier, Msg, Worker, WorkerConfig, WorkerShared};
use crate::{BlockingError, SpawnError};
use anon_reactor::{Poll, Token};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static NEXT_WORKER_UID: AtomicU64 = AtomicU64::new(1);

/// Runtime configuration. Every limit has a default that keeps a process far below
/// Linux's `vm.max_map_count` (each guarded stack costs two memory maps).
#[derive(Debug, Clone)]
pub struct Builder {
    workers: usize,
    stack_size: usize,
    max_fibers: Option<usize>,
    stack_pool: usize,
    pin: bool,
    blocking_threads: usize,
    blocking_queue: usize,
    event_capacity: usize,
    name: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Defaults: one worker per available core, 64 KiB stacks, a live-fiber bound derived
    /// from `vm.max_map_count` (see [`max_fibers`](Builder::max_fibers)), a pool of 256
    /// stacks per worker, no pinning, 8 blocking threads with a queue of 256.
    pub fn new() -> Builder {
        Builder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            stack_size: 64 * 1024,
            max_fibers: None,
            stack_pool: 256,
            pin: false,
            blocking_threads: 8,
            blocking_queue: 256,
            event_capacity: 1024,
            name: "anon-worker".to_string(),
        }
    }

    /// Number of worker threads (at least 1).
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = n.max(1);
        self
    }

    /// Usable stack bytes per fiber (rounded up to whole pages; a guard page is added
    /// below). Memory is committed only as the stack is touched.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes.max(16 * 1024);
        self
    }

    /// The most fibers alive at once in the whole runtime, split evenly over the workers;
    /// spawning past a worker's share returns [`SpawnError::Again`]. Default: a quarter of
    /// `vm.max_map_count` divided by the two maps of a stack (about 8 000 for 65 530),
    /// capped at 100 000: room for pooled stacks and other runtimes in the process.
    pub fn max_fibers(mut self, n: usize) -> Builder {
        self.max_fibers = Some(n.max(1));
        self
    }

    /// Finished stacks each worker keeps for reuse (no `mmap` on a warm spawn).
    pub fn stack_pool(mut self, n: usize) -> Builder {
        self.stack_pool = n;
        self
    }

    /// Pins worker `i` to CPU `i % cores` (ignored where the kernel refuses).
    pub fn pin_workers(mut self, pin: bool) -> Builder {
        self.pin = pin;
        self
    }

    /// Threads of the [`spawn_blocking`](crate::spawn_blocking) pool (started on demand).
    pub fn blocking_threads(mut self, n: usize) -> Builder {
        self.blocking_threads = n.max(1);
        self
    }

    /// Closures that may wait for a blocking thread; one more gets
    /// [`BlockingError::Again`].
    pub fn blocking_queue(mut self, n: usize) -> Builder {
        self.blocking_queue = n;
        self
    }

    /// Worker thread name prefix (threads are `<prefix>-<index>`).
    pub fn name(mut self, prefix: &str) -> Builder {
        self.name = prefix.to_string();
        self
    }

    /// Starts the workers.
    pub fn build(self) -> io::Result<Runtime> {
        let n = self.workers;
        let total = self.max_fibers.unwrap_or_else(default_max_fibers);
        let per_worker = total.div_ceil(n).max(1);
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let mut polls = Vec::with_capacity(n);
        let mut shared = Vec::with_capacity(n);
        for index in 0..n {
            let poll = Poll::new()?;
            let waker = anon_reactor::Waker::new(poll.registry(), Token(0))?;
            let registry = poll.registry().try_clone()?;
            shared.push(Arc::new(WorkerShared {
                index,
                uid: NEXT_WORKER_UID.fetch_add(1, Ordering::Relaxed),
                remote: Remote::new(64, EventfdNotifier(waker)),
                registry,
                io: Mutex::new(slab::Slab::with_capacity(64)),
                live: AtomicUsize::new(0),
                max_live: per_worker,
            }));
            polls.push(poll);
        }
        let rt = Arc::new(RuntimeShared {
            workers: shared,
            shutdown: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            blocking: BlockingPool::new(
                format!("{}-blocking", self.name),
                self.blocking_threads,
                self.blocking_queue,
            ),
        });
        let words = self.stack_size.div_ceil(std::mem::size_of::<usize>());
        // generator: an odd size asks for full usage tracking (a write to every word).
        let words = words + (words & 1);
        let mut threads = Vec::with_capacity(n);
        for (index, poll) in polls.into_iter().enumerate() {
            let cfg = WorkerConfig {
                stack_words: words,
                pool_max: self.stack_pool,
                event_capacity: self.event_capacity,
                pin_cpu: self.pin.then_some(index % cores),
            };
            let ws = Arc::clone(&rt.workers[index]);
            let rt2 = Arc::clone(&rt);
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{index}", self.name))
                .spawn(move || Worker::run_thread(ws, rt2, poll, cfg));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let partial = Runtime {
                        shared: rt,
                        threads,
                    };
                    drop(partial);
                    return Err(e);
                }
            }
        }
        Ok(Runtime {
            shared: rt,
            threads,
        })
    }
}

/// The default live-fiber bound: a quarter of the memory-map budget.
fn default_max_fibers() -> usize {
    let maps = crate::sys::max_map_count().unwrap_or(65_530);
    (maps / 2 / 4).clamp(64, 100_000)
}

pub(crate) struct RuntimeShared {
    pub(crate) workers: Vec<Arc<WorkerShared>>,
    shutdown: AtomicBool,
    next: AtomicUsize,
    pub(crate) blocking: BlockingPool,
}

impl RuntimeShared {
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// A set of worker threads running fibers. Dropping it shuts it down: every fiber still
/// alive is cancelled (its stack unwound, its join handle answering
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled)) and the workers are joined.
///
/// ```
/// use anon_fiber::Runtime;
/// let rt = Runtime::builder().workers(2).build()?;
/// let h = rt.spawn(|| 6 * 7)?;
/// assert_eq!(h.join().unwrap(), 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    shared: Arc<RuntimeShared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Runtime {
    /// A [`Builder`] with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the defaults.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A cloneable, `Send + Sync` handle for spawning from anywhere.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Spawns `f` as a fiber: on the calling worker when called from one of this runtime's
    /// fibers, else on the workers in turn. [`SpawnError::Again`] past the live-fiber bound.
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(&self.shared, None, None, f)
    }

    /// Spawns `f` on worker `worker`.
    pub fn spawn_on<F, T>(&self, worker: usize, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(&self.shared, Some(worker), None, f)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Fibers alive now, over all workers.
    pub fn live_fibers(&self) -> usize {
        self.handle().live_fibers()
    }

    /// Every fiber of every worker: id, name, state, what it waits on, since when.
    pub fn dump(&self) -> Vec<FiberInfo> {
        self.handle().dump()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for w in &self.shared.workers {
            w.remote.push(Msg::Shutdown);
        }
        self.shared.blocking.shutdown();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // Dropped from one of its own fibers: cannot join itself; the workers still stop.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.workers.len())
            .finish()
    }
}

/// A handle to a [`Runtime`]: spawn from any thread, read live-fiber counts, dump fibers.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<RuntimeShared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.shared.workers.len())
            .finish()
    }
}

impl Handle {
    /// The runtime of the calling worker thread (or fiber), if any.
    pub fn current() -> Option<Handle> {
        worker::with_worker(|w| {
            w.map(|w| Handle {
                shared: Arc::clone(&w.rt),
            })
        })
    }

    /// See [`Runtime::spawn`].
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(&self.shared, None, None, f)
    }

    /// See [`Runtime::spawn_on`].
    pub fn spawn_on<F, T>(&self, worker: usize, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(&self.shared, Some(worker), None, f)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Fibers alive now, over all workers.
    pub fn live_fibers(&self) -> usize {
        self.shared
            .workers
            .iter()
            .map(|w| w.live.load(Ordering::Relaxed))
            .sum()
    }

    /// Fibers alive now on worker `worker` (0 for an unknown index).
    pub fn live_fibers_on(&self, worker: usize) -> usize {
        self.shared
            .workers
            .get(worker)
            .map_or(0, |w| w.live.load(Ordering::Relaxed))
    }

    /// The live-fiber bound of one worker.
    pub fn max_fibers_per_worker(&self) -> usize {
        self.shared.workers.first().map_or(0, |w| w.max_live)
    }

    /// Submits `f` to the blocking pool without waiting; see
    /// [`spawn_blocking`](crate::spawn_blocking).
    pub fn spawn_blocking<F, T>(&self, f: F) -> Result<BlockingHandle<T>, BlockingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared.blocking.submit(f)
    }

    /// See [`Runtime::dump`]. A worker busy in a fiber that does not yield for a second is
    /// left out (its fibers cannot be listed without it).
    pub fn dump(&self) -> Vec<FiberInfo> {
        let here = worker::with_worker(|w| w.map(|w| (w.shared.uid, w.dump())));
        let mut out = Vec::new();
        let mut waits = Vec::new();
        for w in &self.shared.workers {
            match &here {
                Some((uid, infos)) if *uid == w.uid => out.extend(infos.iter().cloned()),
                _ => {
                    let reply = JoinInner::new();
                    w.remote.push(Msg::Dump(Arc::clone(&reply)));
                    waits.push(reply);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        for r in waits {
            if let Some(Ok(v)) = r.wait(WaitOn::Reply, Some(deadline)) {
                out.extend(v);
            }
        }
        out.sort_by_key(|i| i.id);
        out
    }
}

/// Spawns on `target`, or the current worker of this runtime, or round-robin.
pub(crate) fn spawn_in<F, T>(
    rt: &Arc<RuntimeShared>,
    target: Option<usize>,
    name: Option<Box<str>>,
    f: F,
) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let here =
        worker::with_worker(|w| w.filter(|w| Arc::ptr_eq(&w.rt, rt)).map(|w| w.shared.index));
    let index = match (target, here) {
        (Some(t), _) => t,
        (None, Some(h)) => h,
        (None, None) => rt.next.fetch_add(1, Ordering::Relaxed) % rt.workers.len(),
    };
    let Some(ws) = rt.workers.get(index) else {
        return Err(SpawnError::NoSuchWorker(index));
    };
    if here == Some(index) {
        let mut f = Some(f);
        let mut name = Some(name);
        if let Some(r) = worker::with_worker(|w| {
            w.map(|w| w.spawn(name.take().flatten(), f.take().expect("once")))
        }) {
            return r;
        }
        return Err(SpawnError::Shutdown);
    }
    if rt.is_shutdown() {
        return Err(SpawnError::Shutdown);
    }
    if !ws.try_reserve() {
        return Err(SpawnError::Again);
    }
    let fiber = FiberShared::new(name, Arc::clone(ws));
    let inner = JoinInner::new();
    let body = fiber_body(f, Completer::new(Arc::clone(&inner)), Arc::clone(ws));
    ws.remote
        .push(Msg::Spawn(Arc::clone(&fiber), Box::new(body)));
    Ok(JoinHandle::new(inner, fiber))
}

/// Spawns a fiber on the current worker (the HTTP driver's "a fiber per connection").
///
/// Called from a fiber or a worker-thread callback, the fiber runs on this worker;
/// elsewhere [`SpawnError::NoRuntime`].
pub fn spawn<F, T>(f: F) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    worker::spawn_here(None, f).unwrap_or(Err(SpawnError::NoRuntime))
}

/// Like [`spawn`], but a refusal hands the closure back (as a full queue hands back the
/// value): on [`SpawnError::Again`] the caller still owns everything `f` captured, e.g. a
/// connection to answer with "try again".
///
/// ```
/// use anon_fiber::Runtime;
///
/// let rt = Runtime::builder().workers(1).build()?;
/// let answer = rt.spawn(|| {
///     match anon_fiber::try_spawn(|| 42) {
///         Ok(h) => h.join().unwrap(),
///         Err(refused) => (refused.into_inner())(), // run it here instead
///     }
/// })?;
/// assert_eq!(answer.join().unwrap(), 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn try_spawn<F, T>(f: F) -> Result<JoinHandle<T>, TrySpawnError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    worker::try_spawn_here(None, f).map_err(|(error, f)| TrySpawnError { error, f })
}

/// Why [`try_spawn`] did not start a fiber, with the closure handed back.
#[derive(thiserror::Error)]
#[error("{error}")]
pub struct TrySpawnError<F> {
    error: SpawnError,
    f: F,
}

impl<F> TrySpawnError<F> {
    /// The reason ([`SpawnError::Again`] is the backpressure answer).
    pub fn error(&self) -> SpawnError {
        self.error
    }

    /// The closure, unrun.
    pub fn into_inner(self) -> F {
        self.f
    }
}

impl<F> std::fmt::Debug for TrySpawnError<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrySpawnError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Spawn options for one fiber: a name (shown in the dump and in the stack-overflow
/// diagnostic) and where to run.
#[derive(Debug, Default, Clone)]
pub struct FiberBuilder {
    name: Option<String>,
}

impl FiberBuilder {
    /// Default options.
    pub fn new() -> FiberBuilder {
        FiberBuilder::default()
    }

    /// The fiber's name.
    pub fn name(mut self, name: impl Into<String>) -> FiberBuilder {
        self.name = Some(name.into());
        self
    }

    /// Spawns on the current worker, like [`spawn`].
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        worker::spawn_here(self.name.map(String::into_boxed_str), f)
            .unwrap_or(Err(SpawnError::NoRuntime))
    }

    /// Spawns through `handle`, on `worker` or (with `None`) like [`Handle::spawn`].
    pub fn spawn_in<F, T>(
        self,
        handle: &Handle,
        worker: Option<usize>,
        f: F,
    ) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(
            &handle.shared,
            worker,
            self.name.map(String::into_boxed_str),
            f,
        )
    }
}
