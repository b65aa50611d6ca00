//! Fiber identity, the shared per-fiber state, handles, and the park/yield entry points.

use crate::state::{ParkState, RunState};
use crate::worker::{self, Msg, WorkerShared};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Wake;
use std::time::{Duration, Instant};

/// A fiber's process-unique id (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiberId(pub u64);

impl fmt::Display for FiberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a parked fiber waits for (shown by the fiber dump).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WaitOn {
    /// Not waiting (running, runnable, or parked by [`park`](crate::park) directly).
    Nothing = 0,
    /// [`park`](crate::park) / [`park_timeout`](crate::park_timeout).
    Park,
    /// [`sleep`](crate::sleep).
    Sleep,
    /// A socket to become readable (or a connection to arrive).
    Readable,
    /// A socket to become writable (or a connect to finish).
    Writable,
    /// Another fiber to finish ([`JoinHandle::join`](crate::JoinHandle::join)).
    Join,
    /// A channel (room to send or an item to receive).
    Channel,
    /// A [`Mutex`](crate::lock::Mutex).
    Lock,
    /// A [`Notify`](crate::lock::Notify) or [`Condvar`](crate::lock::Condvar).
    Notify,
    /// A [`WaitGroup`](crate::lock::WaitGroup).
    WaitGroup,
    /// A closure on the blocking pool ([`spawn_blocking`](crate::spawn_blocking)).
    Blocking,
    /// A reply from another worker (the fiber dump).
    Reply,
}

impl WaitOn {
    fn from_u8(v: u8) -> WaitOn {
        const ALL: [WaitOn; 12] = [
            WaitOn::Nothing,
            WaitOn::Park,
            WaitOn::Sleep,
            WaitOn::Readable,
            WaitOn::Writable,
            WaitOn::Join,
            WaitOn::Channel,
            WaitOn::Lock,
            WaitOn::Notify,
            WaitOn::WaitGroup,
            WaitOn::Blocking,
            WaitOn::Reply,
        ];
        ALL.get(usize::from(v)).copied().unwrap_or(WaitOn::Nothing)
    }
}

impl fmt::Display for WaitOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WaitOn::Nothing => "-",
            WaitOn::Park => "park",
            WaitOn::Sleep => "sleep",
            WaitOn::Readable => "readable",
            WaitOn::Writable => "writable",
            WaitOn::Join => "join",
            WaitOn::Channel => "channel",
            WaitOn::Lock => "lock",
            WaitOn::Notify => "notify",
            WaitOn::WaitGroup => "wait-group",
            WaitOn::Blocking => "blocking-pool",
            WaitOn::Reply => "reply",
        };
        f.write_str(s)
    }
}

/// Nanoseconds since the first call, a monotonic clock for the dump's "since".
pub(crate) fn clock_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let e = *EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `clock_ns()` as of the latest reactor turn of any worker: what parking records, so a
/// park costs no clock read (the dump's "since" is accurate to one turn).
static COARSE_NS: AtomicU64 = AtomicU64::new(0);

/// Called by each worker once per reactor turn.
pub(crate) fn tick_coarse_clock() {
    COARSE_NS.fetch_max(clock_ns(), Ordering::Relaxed);
}

/// The state of one fiber that other threads may touch (through [`Fiber`] handles and
/// wakers). The generator itself is owned by the worker, never shared.
pub(crate) struct FiberShared {
    pub(crate) id: FiberId,
    pub(crate) name: Option<Box<str>>,
    pub(crate) state: ParkState,
    /// Slab key on the owner worker; written by the owner before the fiber first runs.
    pub(crate) key: AtomicUsize,
    pub(crate) owner: Arc<WorkerShared>,
    /// `WaitOn` as u8, for the dump.
    pub(crate) wait: AtomicU8,
    /// `clock_ns()` when `wait` was last set.
    pub(crate) since: AtomicU64,
}

impl FiberShared {
    pub(crate) fn new(name: Option<Box<str>>, owner: Arc<WorkerShared>) -> Arc<FiberShared> {
        Arc::new(FiberShared {
            id: FiberId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            name,
            state: ParkState::new(),
            key: AtomicUsize::new(usize::MAX),
            owner,
            wait: AtomicU8::new(WaitOn::Nothing as u8),
            since: AtomicU64::new(COARSE_NS.load(Ordering::Relaxed)),
        })
    }

    /// Wakes the fiber: queues it on its own worker if it was parked, else leaves a token.
    pub(crate) fn unpark(self: &Arc<Self>) {
        if self.state.unpark() && !worker::schedule_local(self) {
            self.owner.remote.push(Msg::Wake(Arc::clone(self)));
        }
    }

    pub(crate) fn set_wait(&self, on: WaitOn) {
        self.wait.store(on as u8, Ordering::Relaxed);
        if on != WaitOn::Nothing {
            self.since
                .store(COARSE_NS.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    pub(crate) fn info(&self, running: bool) -> FiberInfo {
        let since = clock_ns().saturating_sub(self.since.load(Ordering::Relaxed));
        let state = match self.state.get() {
            RunState::Runnable if running => FiberState::Running,
            RunState::Runnable | RunState::Notified => FiberState::Runnable,
            RunState::Parked => FiberState::Parked,
            RunState::Done => FiberState::Done,
        };
        FiberInfo {
            id: self.id,
            name: self.name.as_deref().map(str::to_string),
            worker: self.owner.index,
            state,
            waiting_on: if state == FiberState::Parked {
                WaitOn::from_u8(self.wait.load(Ordering::Relaxed))
            } else {
                WaitOn::Nothing
            },
            since: Duration::from_nanos(since),
        }
    }
}

impl Wake for FiberShared {
    fn wake(self: Arc<Self>) {
        self.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.unpark();
    }
}

/// A handle to a fiber: its identity, and a way to unpark it from any thread.
#[derive(Clone)]
pub struct Fiber(pub(crate) Arc<FiberShared>);

impl Fiber {
    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.0.id
    }

    /// The fiber's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// Index of the worker the fiber runs on (it never moves).
    pub fn worker(&self) -> usize {
        self.0.owner.index
    }

    /// Wakes the fiber if it is parked in [`park`](crate::park); otherwise its next `park`
    /// returns at once. Callable from any thread; a fiber on another worker is woken
    /// through that worker's eventfd.
    pub fn unpark(&self) {
        self.0.unpark();
    }

    /// A `std::task::Waker` whose `wake` unparks this fiber.
    pub fn waker(&self) -> std::task::Waker {
        std::task::Waker::from(Arc::clone(&self.0))
    }
}

impl fmt::Debug for Fiber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("id", &self.0.id)
            .field("name", &self.0.name)
            .field("worker", &self.0.owner.index)
            .finish()
    }
}

/// The scheduler's view of a fiber, for [`FiberInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiberState {
    /// Running now (it asked for the dump, or the dump was taken on its worker).
    Running,
    /// Queued to run.
    Runnable,
    /// Parked, waiting for [`FiberInfo::waiting_on`].
    Parked,
    /// Finished (seen only in a race with its exit).
    Done,
}

/// One line of the fiber dump ([`Runtime::dump`](crate::Runtime::dump)).
#[derive(Debug, Clone)]
pub struct FiberInfo {
    /// The fiber's id.
    pub id: FiberId,
    /// The fiber's name.
    pub name: Option<String>,
    /// The worker it runs on.
    pub worker: usize,
    /// What it is doing.
    pub state: FiberState,
    /// What it waits on, when parked.
    pub waiting_on: WaitOn,
    /// How long since it last parked (or was spawned).
    pub since: Duration,
}

impl fmt::Display for FiberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fiber {} {:?} worker {} {:?} on {} for {:?}",
            self.id,
            self.name.as_deref().unwrap_or("-"),
            self.worker,
            self.state,
            self.waiting_on,
            self.since
        )
    }
}

/// The fiber running on this thread, or `None` outside a fiber.
pub fn current() -> Option<Fiber> {
    worker::current_fiber().map(Fiber)
}

/// `true` when called from inside a fiber.
pub fn in_fiber() -> bool {
    worker::with_worker(|w| w.is_some_and(|w| w.in_fiber()))
}

/// The index of the worker this thread is (also inside its fibers), or `None`.
pub fn worker_index() -> Option<usize> {
    worker::with_worker(|w| w.map(|w| w.shared.index))
}

/// Lets the other runnable fibers of this worker run, then continues. Outside a fiber,
/// `std::thread::yield_now`.
pub fn yield_now() {
    if !worker::yield_fiber() {
        std::thread::yield_now();
    }
}

/// Parks the current fiber until [`Fiber::unpark`] (or its waker) is called; returns at
/// once if an unpark came since the last park. May return spuriously: re-check your
/// condition. Outside a fiber, `std::thread::park`.
pub fn park() {
    if !worker::park_fiber(WaitOn::Park, None) {
        std::thread::park();
    }
}

/// Like [`park`], but returns after `timeout` at the latest.
pub fn park_timeout(timeout: Duration) {
    let deadline = Instant::now().checked_add(timeout);
    if !worker::park_fiber(WaitOn::Park, deadline) {
        std::thread::park_timeout(timeout);
    }
}

/// Suspends the current fiber for at least `d` (driven by the worker's timer wheel, no timer
/// thread; millisecond resolution, never early). Outside a fiber, `std::thread::sleep`.
pub fn sleep(d: Duration) {
    if !worker::with_worker(|w| w.is_some_and(|w| w.in_fiber())) {
        std::thread::sleep(d);
        return;
    }
    let Some(deadline) = Instant::now().checked_add(d) else {
        // Forever, in practice.
        loop {
            worker::park_fiber(WaitOn::Sleep, None);
        }
    };
    while Instant::now() < deadline {
        worker::park_fiber(WaitOn::Sleep, Some(deadline));
    }
}

/// Fiber-local storage: one value per fiber, created on first access by `init`.
///
/// Declare it as a `static`; every fiber sees its own value, dropped when the fiber ends.
/// Outside a fiber each thread has its own value. Thread-locals (`thread_local!`) are also
/// sound inside fibers, because a fiber never migrates: they are shared by all the fibers of
/// one worker.
///
/// ```
/// use anon_fiber::{FiberLocal, Runtime};
/// use std::cell::Cell;
///
/// static COUNT: FiberLocal<Cell<u32>> = FiberLocal::new(|| Cell::new(0));
/// let rt = Runtime::builder().workers(1).build()?;
/// let h = rt.spawn(|| {
///     COUNT.with(|c| c.set(c.get() + 1));
///     COUNT.with(|c| c.get())
/// })?;
/// assert_eq!(h.join().unwrap(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FiberLocal<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> FiberLocal<T> {
    /// A key whose per-fiber value starts as `init()`.
    pub const fn new(init: fn() -> T) -> FiberLocal<T> {
        FiberLocal { init }
    }

    /// Runs `f` with this fiber's value.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let v = worker::fiber_local(key, &|| std::rc::Rc::new((self.init)()))
            .unwrap_or_else(|| thread_fallback(key, &|| std::rc::Rc::new((self.init)())));
        match v.downcast::<T>() {
            Ok(v) => f(&v),
            // The key is this static's address: one type per key.
            Err(_) => unreachable!("anon_fiber: FiberLocal key with two types"),
        }
    }
}

impl<T: 'static> fmt::Debug for FiberLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FiberLocal { .. }")
    }
}

type LocalValue = std::rc::Rc<dyn std::any::Any>;

fn thread_fallback(key: usize, init: &dyn Fn() -> LocalValue) -> LocalValue {
    thread_local! {
        static MAP: std::cell::RefCell<Vec<(usize, LocalValue)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    MAP.with(|m| {
        if let Some((_, v)) = m.borrow().iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let v = init();
        m.borrow_mut().push((key, v.clone()));
        v
    })
}
