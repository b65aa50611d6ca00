//! One worker: an OS thread owning an epoll reactor, a timer wheel, a run queue, a stack
//! pool and the fibers spawned on it. Fibers never leave their worker.
//!
//! Everything here except [`WorkerShared`] is thread-local to the worker thread and uses
//! `Cell`/`RefCell`; no borrow is ever held across a fiber switch or a call into user code.

use crate::fiber::{FiberInfo, FiberShared, WaitOn};
use crate::io::IoSlot;
use crate::join::{Completer, JoinHandle, JoinInner};
use crate::remote::{Notifier, Remote};
use crate::runtime::RuntimeShared;
use crate::SpawnError;
use anon_reactor::{Events, Poll, Registry, TimerKey, TimerWheel, Token};
use slab::Slab;
use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

/// A fiber's coroutine: a `generator` 0.8 generator on a guarded mmap stack.
pub(crate) type Gen = generator::Generator<'static, (), ()>;

/// At most this many fibers run between two polls of the reactor (fairness with I/O and
/// timers); fewer when fewer were runnable at the start of the turn.
const BUDGET: usize = 256;

/// How long one turn runs admitted requests' slices before polling the reactor again.
const ADMITTED_STEP: Duration = Duration::from_micros(200);

/// The waker's token; I/O tokens are `slab key + 1`.
const WAKE_TOKEN: Token = Token(0);

/// A message to a worker from another thread.
pub(crate) enum Msg {
    /// Queue this parked fiber (its state was already moved to running).
    Wake(Arc<FiberShared>),
    /// Start a fiber spawned from another thread (its live slot is already reserved).
    Spawn(Arc<FiberShared>, Box<dyn FnOnce() + Send>),
    /// Reply with this worker's fibers.
    Dump(Arc<JoinInner<Vec<FiberInfo>>>),
    /// Stop: cancel the fibers and exit.
    Shutdown,
}

/// The reactor's eventfd waker as the inbox's notifier.
pub(crate) struct EventfdNotifier(pub(crate) anon_reactor::Waker);

impl Notifier for EventfdNotifier {
    fn notify(&self) {
        // An eventfd write fails only if the descriptor is gone, i.e. the worker exited.
        let _ = self.0.wake();
    }
}

/// The part of a worker other threads touch.
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    /// Unique in the process (several runtimes may coexist).
    pub(crate) uid: u64,
    pub(crate) remote: Remote<Msg, EventfdNotifier>,
    pub(crate) registry: Registry,
    /// Registered descriptors; token = key + 1. Locked once per poll by the worker, and by
    /// whoever registers or deregisters a descriptor.
    pub(crate) io: Mutex<Slab<Arc<IoSlot>>>,
    /// Live fibers (reserved at spawn, released at exit).
    pub(crate) live: AtomicUsize,
    pub(crate) max_live: usize,
}

impl WorkerShared {
    /// Reserves a live-fiber slot; `false` when the bound is reached.
    pub(crate) fn try_reserve(&self) -> bool {
        let prev = self.live.fetch_add(1, Ordering::AcqRel);
        if prev >= self.max_live {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub(crate) fn release(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a fiber switched back to its worker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Switch {
    Yield,
    Park,
}

/// A timer's action.
pub(crate) enum TimerEntry {
    Wake(Waker),
    /// A hibernation's timeout: the slot and the hibernation's epoch.
    Hibernate(Arc<IoSlot>, u64),
}

struct Slot {
    /// `None` while the fiber runs (the worker holds it).
    gen: Option<Gen>,
    fiber: Arc<FiberShared>,
    /// Fiber-local values, keyed by the `FiberLocal` static's address.
    locals: Vec<(usize, Rc<dyn Any>)>,
    /// The admitted request this fiber serves, if any (see [`begin_request`]).
    req: Option<ReqClock>,
}

/// The clock of an admitted request: while a fiber has one, the worker resumes it after
/// unadmitted work, oldest admission first, and accounts its time.
#[derive(Debug, Clone, Copy)]
struct ReqClock {
    /// When the request was admitted: its place in the admitted queue.
    since: Instant,
    /// When the running slice began (`None` while the fiber is not running).
    slice_start: Option<Instant>,
    /// When the fiber became runnable (`None` while it runs or is parked).
    runnable_since: Option<Instant>,
    cpu: Duration,
    queued: Duration,
}

/// What an admitted request used, as its worker measured it (see [`begin_request`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestUsage {
    /// Time the request's fiber ran (its slices, from admission to the end).
    pub cpu: Duration,
    /// Time the request's fiber was ready to run but waited for the worker, whatever
    /// ran instead (older requests, refusals, other connections): its queueing delay
    /// after admission. `latency - queued` is what the request would take unloaded.
    pub queued: Duration,
}

/// What [`Worker::resume`] saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Resumed {
    /// The fiber yielded while serving an admitted request: it used a slice of CPU.
    AdmittedSlice,
    /// Anything else (parked, finished, yielded unadmitted, gone).
    Other,
}

/// Per-worker configuration.
pub(crate) struct WorkerConfig {
    pub(crate) stack_words: usize,
    pub(crate) pool_max: usize,
    pub(crate) event_capacity: usize,
    pub(crate) pin_cpu: Option<usize>,
}

/// The thread-local worker.
pub(crate) struct Worker {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) rt: Arc<RuntimeShared>,
    fibers: RefCell<Slab<Slot>>,
    /// Runnable fibers not serving an admitted request, first in first out.
    runq: RefCell<VecDeque<usize>>,
    /// Runnable fibers serving an admitted request, oldest admission first.
    admitted: RefCell<BinaryHeap<Reverse<(Instant, usize)>>>,
    current: Cell<Option<usize>>,
    switch: Cell<Switch>,
    pool: RefCell<Vec<Gen>>,
    pub(crate) timers: RefCell<TimerWheel<TimerEntry>>,
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    inbox: RefCell<VecDeque<Msg>>,
    /// The inbox brought messages since the last reactor turn.
    inbox_active: Cell<bool>,
    ready: RefCell<Vec<(Arc<IoSlot>, u8)>>,
    cfg: WorkerConfig,
}

thread_local! {
    static WORKER: OnceCell<Worker> = const { OnceCell::new() };
}

/// Runs `f` with this thread's worker (`None` on other threads, or during thread exit).
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&Worker>) -> R) -> R {
    let mut f = Some(f);
    match WORKER.try_with(|w| (f.take().expect("called once"))(w.get())) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called"))(None),
    }
}

/// Queues `fiber` on this thread's run queue if this thread is its worker.
pub(crate) fn schedule_local(fiber: &Arc<FiberShared>) -> bool {
    with_worker(|w| match w {
        Some(w) if w.shared.uid == fiber.owner.uid => {
            w.runq
                .borrow_mut()
                .push_back(fiber.key.load(Ordering::Relaxed));
            true
        }
        _ => false,
    })
}

/// The running fiber's shared state.
pub(crate) fn current_fiber() -> Option<Arc<FiberShared>> {
    with_worker(|w| {
        let w = w?;
        let key = w.current.get()?;
        w.fibers.borrow().get(key).map(|s| Arc::clone(&s.fiber))
    })
}

/// Switches out to let others run; `false` outside a fiber.
pub(crate) fn yield_fiber() -> bool {
    with_worker(|w| match w {
        Some(w) if w.in_fiber() => {
            w.switch_out(Switch::Yield);
            true
        }
        _ => false,
    })
}

/// Parks the running fiber until unparked or `deadline`; `false` outside a fiber.
pub(crate) fn park_fiber(on: WaitOn, deadline: Option<Instant>) -> bool {
    with_worker(|w| {
        let Some(w) = w else { return false };
        let Some(key) = w.current.get() else {
            return false;
        };
        let fiber = match w.fibers.borrow().get(key) {
            Some(s) => Arc::clone(&s.fiber),
            None => return false,
        };
        if fiber.state.try_consume_token() {
            return true;
        }
        let timer = deadline.map(|d| {
            w.timers
                .borrow_mut()
                .insert(d, TimerEntry::Wake(Waker::from(Arc::clone(&fiber))))
        });
        fiber.set_wait(on);
        w.switch_out(Switch::Park);
        fiber.set_wait(WaitOn::Nothing);
        if let Some(t) = timer {
            let _ = w.timers.borrow_mut().cancel(t);
        }
        true
    })
}

/// This fiber's value for a `FiberLocal` key; `None` outside a fiber.
pub(crate) fn fiber_local(key: usize, init: &dyn Fn() -> Rc<dyn Any>) -> Option<Rc<dyn Any>> {
    with_worker(|w| {
        let w = w?;
        let fk = w.current.get()?;
        if let Some((_, v)) = w
            .fibers
            .borrow()
            .get(fk)?
            .locals
            .iter()
            .find(|(k, _)| *k == key)
        {
            return Some(Rc::clone(v));
        }
        // Run `init` without a borrow: it is user code and may touch other locals.
        let v = init();
        w.fibers
            .borrow_mut()
            .get_mut(fk)?
            .locals
            .push((key, Rc::clone(&v)));
        Some(v)
    })
}

/// Spawns `f` on this thread's worker; `None` if this thread is no worker.
pub(crate) fn spawn_here<F, T>(
    name: Option<Box<str>>,
    f: F,
) -> Option<Result<JoinHandle<T>, SpawnError>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut f = Some(f);
    let mut name = Some(name);
    with_worker(|w| {
        let w = w?;
        Some(w.spawn(name.take().flatten(), f.take().expect("once")))
    })
}

/// Spawns `f` on this thread's worker, handing `f` back on refusal.
pub(crate) fn try_spawn_here<F, T>(
    name: Option<Box<str>>,
    f: F,
) -> Result<JoinHandle<T>, (SpawnError, F)>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut f = Some(f);
    let mut name = Some(name);
    let r = with_worker(|w| {
        let w = w?;
        Some(w.try_spawn(name.take().flatten(), f.take().expect("once")))
    });
    match r {
        Some(r) => r,
        None => Err((SpawnError::NoRuntime, f.take().expect("not moved"))),
    }
}

/// Marks the running fiber as serving a request admitted at `since` (normally "now").
///
/// Until [`end_request`], the worker resumes this fiber after the unadmitted runnable
/// fibers of each turn (accepting, reading heads, refusing), and among admitted fibers
/// the oldest admission first, for up to about 200 µs of slices per turn; it also measures
/// the request's CPU time and its queueing delay (time ready to run but not running). A
/// fiber serves one request at a time: a second call restarts the clock. Returns `false`
/// (and does nothing) outside a fiber.
///
/// ```
/// use anon_fiber::{begin_request, end_request, Runtime};
/// use std::time::Instant;
///
/// let rt = Runtime::builder().workers(1).build()?;
/// let usage = rt.spawn(|| {
///     assert!(begin_request(Instant::now()));
///     anon_fiber::yield_now(); // queued behind older admitted requests, if any
///     end_request().expect("a request was open")
/// })?.join().unwrap();
/// assert!(usage.cpu > std::time::Duration::ZERO);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn begin_request(since: Instant) -> bool {
    with_worker(|w| w.is_some_and(|w| w.begin_request(since)))
}

/// Ends the running fiber's admitted request (see [`begin_request`]) and returns what it
/// used; `None` if none was open (or outside a fiber).
pub fn end_request() -> Option<RequestUsage> {
    end_request_at(Instant::now())
}

/// [`end_request`] with the current time given (a caller that just read the clock).
pub fn end_request_at(now: Instant) -> Option<RequestUsage> {
    with_worker(|w| w.and_then(|w| w.end_request(now)))
}

/// How many fibers of this worker serve an admitted request and are ready to run but
/// waiting for their turn (see [`begin_request`]); `None` if this thread is no worker.
pub fn admitted_waiting() -> Option<usize> {
    with_worker(|w| w.map(|w| w.admitted.borrow().len()))
}

/// Inserts a timer on this thread's worker; `None` if this thread is no worker.
pub(crate) fn insert_timer(deadline: Instant, entry: TimerEntry) -> Option<TimerKey> {
    with_worker(|w| w.map(|w| w.timers.borrow_mut().insert(deadline, entry)))
}

/// Releases a worker's live-fiber slot when dropped.
struct LiveSlot(Arc<WorkerShared>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The fiber body: runs `f`, catching its panic for the join handle. A `generator`
/// cancellation (runtime shutdown) is let through so the generator can finish unwinding.
///
/// The body owns the fiber's live slot (reserved by the spawner) and releases it just
/// before publishing the result, so a joiner that spawns again is not refused. The stack
/// itself returns to the pool right after, before the worker runs anything else: the bound
/// can be exceeded by at most one finishing fiber per worker. A body that never runs (or is
/// cancelled) releases the slot when dropped.
pub(crate) fn fiber_body<F, T>(
    f: F,
    completer: Completer<T>,
    owner: Arc<WorkerShared>,
) -> impl FnOnce() + Send + 'static
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let live = LiveSlot(owner);
    move || {
        let completer = completer;
        let live = live;
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        if let Err(p) = r {
            if crate::is_cancellation(&*p) {
                panic::resume_unwind(p);
            }
            drop(live);
            completer.complete(Err(crate::JoinError::Panicked(p)));
            return;
        }
        drop(live);
        if let Ok(v) = r {
            completer.complete(Ok(v));
        }
    }
}

impl Worker {
    /// Installs the worker on the current thread and runs it until shutdown.
    pub(crate) fn run_thread(
        shared: Arc<WorkerShared>,
        rt: Arc<RuntimeShared>,
        poll: Poll,
        cfg: WorkerConfig,
    ) {
        if let Some(cpu) = cfg.pin_cpu {
            // Pinning is an optimisation: a refusal (cgroup cpuset) leaves the thread free.
            let _ = crate::sys::pin_current_thread(cpu);
        }
        let worker = Worker {
            shared,
            rt,
            fibers: RefCell::new(Slab::with_capacity(64)),
            runq: RefCell::new(VecDeque::with_capacity(256)),
            admitted: RefCell::new(BinaryHeap::with_capacity(64)),
            current: Cell::new(None),
            switch: Cell::new(Switch::Yield),
            pool: RefCell::new(Vec::with_capacity(cfg.pool_max)),
            timers: RefCell::new(TimerWheel::new(Instant::now())),
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(cfg.event_capacity)),
            inbox: RefCell::new(VecDeque::with_capacity(64)),
            inbox_active: Cell::new(false),
            ready: RefCell::new(Vec::with_capacity(cfg.event_capacity)),
            cfg,
        };
        WORKER.with(|cell| {
            if cell.set(worker).is_err() {
                return;
            }
            if let Some(w) = cell.get() {
                w.run();
                w.shutdown();
            }
        });
    }

    pub(crate) fn in_fiber(&self) -> bool {
        self.current.get().is_some()
    }

    fn switch_out(&self, why: Switch) {
        self.switch.set(why);
        #[allow(deprecated)]
        generator::yield_with(());
    }

    fn run(&self) {
        loop {
            if self.drain_inbox() {
                return;
            }
            // Unadmitted work first, first in first out: accepting, reading and parsing
            // request heads, admission decisions and refusals, connection set-up. Resume
            // only the fibers that were runnable when the turn began: a fiber that yields
            // (or is woken) during the turn waits for the next one, after the reactor has
            // been polled, so socket readiness is never starved.
            let runnable = self.runq.borrow().len().min(BUDGET);
            let mut now = None;
            for _ in 0..runnable {
                let next = self.runq.borrow_mut().pop_front();
                match next {
                    Some(key) => {
                        if !self.defer_admitted(key, &mut now) {
                            self.resume(key);
                        }
                    }
                    None => break,
                }
            }
            // Then admitted requests, oldest admission first, for up to ADMITTED_STEP of
            // slices: a request's latency is its queueing behind older ones plus its own
            // service time, not (requests in flight) × (service time) as under round
            // robin. The step ends at the first yield past the budget, so the reactor is
            // polled (and unadmitted work runs) at least every ADMITTED_STEP plus a slice,
            // without an epoll_wait per slice of a CPU-bound handler.
            let step = Instant::now();
            for _ in 0..BUDGET {
                let next = self.admitted.borrow_mut().pop();
                let Some(Reverse((_, key))) = next else { break };
                if self.resume(key) == Resumed::AdmittedSlice && step.elapsed() >= ADMITTED_STEP {
                    break;
                }
            }
            self.turn();
        }
    }

    /// Moves a runnable fiber that serves an admitted request to the admitted queue
    /// (marking when it became runnable); `false` for unadmitted fibers.
    fn defer_admitted(&self, key: usize, now: &mut Option<Instant>) -> bool {
        let mut fibers = self.fibers.borrow_mut();
        let Some(req) = fibers.get_mut(key).and_then(|s| s.req.as_mut()) else {
            return false;
        };
        if req.runnable_since.is_none() {
            req.runnable_since = Some(*now.get_or_insert_with(Instant::now));
        }
        let since = req.since;
        drop(fibers);
        self.admitted.borrow_mut().push(Reverse((since, key)));
        true
    }

    /// Handles the inbox; `true` on shutdown.
    fn drain_inbox(&self) -> bool {
        let mut inbox = self.inbox.borrow_mut();
        self.shared.remote.drain_into(&mut inbox);
        if inbox.is_empty() {
            return false;
        }
        let msgs: Vec<Msg> = inbox.drain(..).collect();
        drop(inbox);
        self.inbox_active.set(true);
        let mut stop = false;
        for m in msgs {
            match m {
                Msg::Wake(f) => self
                    .runq
                    .borrow_mut()
                    .push_back(f.key.load(Ordering::Relaxed)),
                Msg::Spawn(fiber, body) => {
                    if stop {
                        // Dropping the body releases its live slot and cancels its handle.
                        continue;
                    }
                    // On failure the body is dropped, which cancels its join handle.
                    let _ = self.start(fiber, body);
                }
                Msg::Dump(reply) => {
                    let infos = self.dump();
                    Completer::new(reply).complete(Ok(infos));
                }
                Msg::Shutdown => stop = true,
            }
        }
        stop
    }

    /// One reactor turn: poll (blocking only when nothing is runnable), wake I/O waiters,
    /// fire due timers.
    fn turn(&self) {
        crate::fiber::tick_coarse_clock();
        let now = Instant::now();
        let runnable = !self.runq.borrow().is_empty() || !self.admitted.borrow().is_empty();
        let mut timeout = if runnable {
            Some(Duration::ZERO)
        } else {
            self.timers.borrow().timeout(now)
        };
        let may_block = timeout != Some(Duration::ZERO);
        if may_block && self.inbox_active.replace(false) && self.spin_for_inbox() {
            timeout = Some(Duration::ZERO);
        }
        if may_block && !self.shared.remote.prepare_sleep() {
            timeout = Some(Duration::ZERO);
        }
        {
            let mut events = self.events.borrow_mut();
            let r = self.poll.borrow_mut().poll(&mut events, timeout);
            if may_block {
                self.shared.remote.after_sleep();
            }
            if r.is_err() {
                // epoll_wait fails only on a broken epoll descriptor; avoid a hot loop.
                std::thread::sleep(Duration::from_millis(1));
                return;
            }
            let mut ready = self.ready.borrow_mut();
            let mut woke = false;
            {
                let io = crate::sync::lock_std(&self.shared.io);
                for ev in events.iter() {
                    if ev.token() == WAKE_TOKEN {
                        woke = true;
                        continue;
                    }
                    let mut bits = 0u8;
                    let closed = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
                    if ev.is_readable() || closed {
                        bits |= crate::io::READ;
                    }
                    if ev.is_writable() || closed {
                        bits |= crate::io::WRITE;
                    }
                    if let Some(slot) = io.get(ev.token().0.wrapping_sub(1)) {
                        ready.push((Arc::clone(slot), bits));
                    }
                }
            }
            if woke {
                self.shared.remote.notifier().0.reset();
            }
        }
        let ready: Vec<(Arc<IoSlot>, u8)> = self.ready.borrow_mut().drain(..).collect();
        for (slot, bits) in ready {
            slot.on_event(bits);
        }
        let now = Instant::now();
        loop {
            let due = self.timers.borrow_mut().pop_expired(now);
            match due {
                Some((_, TimerEntry::Wake(w))) => w.wake(),
                Some((_, TimerEntry::Hibernate(slot, epoch))) => {
                    slot.on_hibernate_timeout(epoch);
                }
                None => break,
            }
        }
    }

    /// Before blocking in `epoll_wait`, watches the inbox for a few microseconds — only
    /// when the inbox brought work since the last turn (cross-worker traffic is active): a
    /// handoff that answers quickly then costs no eventfd wake and no sleep/wake of this
    /// thread. Bounded (`SPIN`), so an idle worker sleeps soon; workers without
    /// cross-worker traffic never spin (readiness is not watched while spinning).
    fn spin_for_inbox(&self) -> bool {
        const SPIN: Duration = Duration::from_micros(5);
        let start = Instant::now();
        loop {
            for _ in 0..32 {
                if self.shared.remote.has_pending() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN {
                return false;
            }
        }
    }

    fn resume(&self, key: usize) -> Resumed {
        let gen = {
            let mut fibers = self.fibers.borrow_mut();
            let Some(slot) = fibers.get_mut(key) else {
                return Resumed::Other;
            };
            if let Some(req) = &mut slot.req {
                let now = Instant::now();
                if let Some(at) = req.runnable_since.take() {
                    req.queued += now.saturating_duration_since(at);
                }
                req.slice_start = Some(now);
            }
            slot.gen.take()
        };
        let Some(mut gen) = gen else {
            return Resumed::Other;
        };
        self.current.set(Some(key));
        self.switch.set(Switch::Yield);
        let r = panic::catch_unwind(AssertUnwindSafe(|| gen.resume()));
        self.current.set(None);
        if let Err(p) = r {
            self.crashed(key, p);
        }
        if gen.is_done() {
            self.finish(key, gen);
            return Resumed::Other;
        }
        let why = self.switch.get();
        let (requeue, admitted) = {
            let mut fibers = self.fibers.borrow_mut();
            let Some(slot) = fibers.get_mut(key) else {
                return Resumed::Other;
            };
            slot.gen = Some(gen);
            let requeue = match why {
                Switch::Yield => true,
                Switch::Park => !slot.fiber.state.commit_park(),
            };
            let admitted = slot.req.as_mut().map(|req| {
                let now = Instant::now();
                if let Some(s) = req.slice_start.take() {
                    req.cpu += now.saturating_duration_since(s);
                }
                if requeue {
                    req.runnable_since = Some(now);
                }
                req.since
            });
            (requeue, admitted)
        };
        match (requeue, admitted) {
            (false, _) => Resumed::Other,
            (true, None) => {
                self.runq.borrow_mut().push_back(key);
                Resumed::Other
            }
            (true, Some(since)) => {
                self.admitted.borrow_mut().push(Reverse((since, key)));
                if why == Switch::Yield {
                    Resumed::AdmittedSlice
                } else {
                    Resumed::Other
                }
            }
        }
    }

    /// Starts the admitted-request clock of the running fiber (see [`begin_request`]).
    fn begin_request(&self, since: Instant) -> bool {
        let Some(key) = self.current.get() else {
            return false;
        };
        let mut fibers = self.fibers.borrow_mut();
        let Some(slot) = fibers.get_mut(key) else {
            return false;
        };
        slot.req = Some(ReqClock {
            since,
            slice_start: Some(since),
            runnable_since: None,
            cpu: Duration::ZERO,
            queued: Duration::ZERO,
        });
        true
    }

    /// Stops the running fiber's admitted-request clock (see [`end_request`]).
    fn end_request(&self, now: Instant) -> Option<RequestUsage> {
        let key = self.current.get()?;
        let mut fibers = self.fibers.borrow_mut();
        let mut req = fibers.get_mut(key)?.req.take()?;
        if let Some(s) = req.slice_start.take() {
            req.cpu += now.saturating_duration_since(s);
        }
        Some(RequestUsage {
            cpu: req.cpu,
            queued: req.queued,
        })
    }

    /// A fiber's generator reported an error out of `resume`: only a stack overflow gets
    /// here (ordinary panics are caught inside the fiber body). Report it, naming the fiber,
    /// and abort: the overflowed stack cannot be unwound.
    fn crashed(&self, key: usize, payload: Box<dyn Any + Send>) -> ! {
        let fiber = self.fibers.borrow().get(key).map(|s| Arc::clone(&s.fiber));
        let (id, name) = match &fiber {
            Some(f) => (
                f.id.to_string(),
                f.name.as_deref().unwrap_or("<unnamed>").to_string(),
            ),
            None => ("?".to_string(), "?".to_string()),
        };
        let what = match payload.downcast_ref::<generator::Error>() {
            Some(generator::Error::StackErr) => "overflowed its stack",
            _ => "failed inside the generator",
        };
        let stack_kib = self.cfg.stack_words * std::mem::size_of::<usize>() / 1024;
        eprintln!(
            "anon-fiber: fiber {id} \"{name}\" on worker {} {what} ({stack_kib} KiB stack); \
             aborting. Raise Builder::stack_size or reduce recursion depth.",
            self.shared.index
        );
        std::process::abort();
    }

    fn finish(&self, key: usize, gen: Gen) {
        let slot = self.fibers.borrow_mut().try_remove(key);
        {
            let mut pool = self.pool.borrow_mut();
            if pool.len() < self.cfg.pool_max {
                pool.push(gen);
                drop(pool);
            } else {
                drop(pool);
                drop(gen);
            }
        }
        if let Some(slot) = slot {
            slot.fiber.state.finish();
            // Fiber-local values drop here, without a borrow held.
            drop(slot);
        }
    }

    /// Spawns on this worker.
    pub(crate) fn spawn<F, T>(
        &self,
        name: Option<Box<str>>,
        f: F,
    ) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.try_spawn(name, f).map_err(|(e, _)| e)
    }

    /// Spawns on this worker; on refusal hands `f` back with the reason. Everything that
    /// can fail (shutdown, the live bound, mapping a stack) is decided before `f` is
    /// wrapped into the fiber body.
    pub(crate) fn try_spawn<F, T>(
        &self,
        name: Option<Box<str>>,
        f: F,
    ) -> Result<JoinHandle<T>, (SpawnError, F)>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.rt.is_shutdown() {
            return Err((SpawnError::Shutdown, f));
        }
        if !self.shared.try_reserve() {
            return Err((SpawnError::Again, f));
        }
        let Some(gen) = self.take_stack() else {
            self.shared.release();
            return Err((SpawnError::Again, f));
        };
        let fiber = FiberShared::new(name, Arc::clone(&self.shared));
        let inner = JoinInner::new();
        let body = fiber_body(
            f,
            Completer::new(Arc::clone(&inner)),
            Arc::clone(&self.shared),
        );
        self.install(Arc::clone(&fiber), gen, body);
        Ok(JoinHandle::new(inner, fiber))
    }

    /// Gives `fiber` a stack (pooled if possible) and queues it. On failure the body is
    /// dropped, which releases its live slot and cancels its join handle.
    pub(crate) fn start(
        &self,
        fiber: Arc<FiberShared>,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), SpawnError> {
        let Some(gen) = self.take_stack() else {
            return Err(SpawnError::Again);
        };
        self.install(fiber, gen, body);
        Ok(())
    }

    /// A stack from the pool, or a freshly mapped one (holding a no-op body until
    /// [`install`](Worker::install)); `None` when the kernel refuses the mapping (memory or
    /// map-count limit): "try again".
    fn take_stack(&self) -> Option<Gen> {
        let pooled = self.pool.borrow_mut().pop();
        if pooled.is_some() {
            return pooled;
        }
        let words = self.cfg.stack_words;
        panic::catch_unwind(move || generator::Gn::<()>::new_opt(words, || {})).ok()
    }

    /// Puts `body` on `gen` and queues the fiber.
    fn install(&self, fiber: Arc<FiberShared>, mut gen: Gen, body: impl FnOnce() + Send + 'static) {
        gen.init_code(body);
        let key = self.fibers.borrow_mut().insert(Slot {
            gen: Some(gen),
            fiber: Arc::clone(&fiber),
            locals: Vec::new(),
            req: None,
        });
        fiber.key.store(key, Ordering::Relaxed);
        self.runq.borrow_mut().push_back(key);
    }

    /// This worker's fibers.
    pub(crate) fn dump(&self) -> Vec<FiberInfo> {
        let cur = self.current.get();
        self.fibers
            .borrow()
            .iter()
            .map(|(k, s)| s.fiber.info(cur == Some(k)))
            .collect()
    }

    /// Registers `fd` with this worker's reactor; returns the slot and its key.
    pub(crate) fn register_io(
        &self,
        fd: std::os::fd::RawFd,
    ) -> std::io::Result<(usize, Arc<IoSlot>)> {
        let slot = Arc::new(IoSlot::new());
        let key = crate::sync::lock_std(&self.shared.io).insert(Arc::clone(&slot));
        let interest = anon_reactor::Interest::READABLE | anon_reactor::Interest::WRITABLE;
        if let Err(e) = self.shared.registry.register(fd, Token(key + 1), interest) {
            crate::sync::lock_std(&self.shared.io).try_remove(key);
            return Err(e);
        }
        Ok((key, slot))
    }

    /// Cancels every fiber (unwinding its stack), drops queued work and pooled stacks.
    fn shutdown(&self) {
        let mut inbox = self.inbox.borrow_mut();
        self.shared.remote.drain_into(&mut inbox);
        let msgs: Vec<Msg> = inbox.drain(..).collect();
        drop(inbox);
        // Dropping queued spawns releases their live slots and cancels their handles.
        drop(msgs);
        self.runq.borrow_mut().clear();
        self.admitted.borrow_mut().clear();
        loop {
            let next = {
                let mut fibers = self.fibers.borrow_mut();
                let key = fibers.iter().next().map(|(k, _)| k);
                key.and_then(|k| fibers.try_remove(k))
            };
            let Some(slot) = next else { break };
            slot.fiber.state.finish();
            // Dropping a suspended generator resumes it with a cancel panic that unwinds
            // its stack (running destructors, which cancel join handles).
            drop(slot);
        }
        self.pool.borrow_mut().clear();
        // Hibernating connections hold their streams inside the slots: release them.
        let slots: Vec<Arc<IoSlot>> = crate::sync::lock_std(&self.shared.io).drain().collect();
        for s in slots {
            s.clear_hibernation();
        }
        while self.timers.borrow_mut().pop_expired(far_future()).is_some() {}
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Cancel a suspended fiber outside any borrow (the caller took the slot out).
        if let Some(g) = self.gen.take() {
            drop(g);
        }
    }
}

fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365 * 100))
        .unwrap_or(now)
}
