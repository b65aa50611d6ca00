//! Admission control: one decision, [`Admission::admit`], that either grants an RAII
//! [`Permit`] or rejects with a [`Reason`] and a suggested retry-after.
//!
//! Policies consulted, in order:
//! 1. Queue-delay shedding after Facebook's "Fail at Scale" (a CoDel variant) on the wait
//!    *before* admission: a request that waited longer than `target` (5 ms) is shed if
//!    the queue has not been empty during the last `interval` (100 ms); if it has, the
//!    request may wait up to `interval`.
//! 2. The hard ceiling: at most `max_in_flight` permits out at once.
//! 3. The adaptive concurrency limit (on by default, see [`AdaptiveConfig`]): requests
//!    not known to be cheap count against a limit that follows the queueing delay they
//!    suffer after admission.
//!
//! Time is never read here: callers pass `Instant`s (a worker loop has its `now` anyway),
//! which also makes every decision reproducible in tests.

use crate::adaptive::{AdaptiveConfig, Controller, CostTable, Usage};
use crate::stats::{Histogram, HistogramSnapshot};
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
use std::time::{Duration, Instant};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// As many requests as the hard ceiling (`max_in_flight`) allows are in flight.
    ConcurrencyLimit,
    /// The request waited in the queue longer than the queue-delay target allows.
    QueueDelay,
    /// As many requests as the adaptive limit allows are in flight: more would queue
    /// longer than the target.
    AdaptiveLimit,
}

impl Reason {
    /// Every reason, in the order of [`AdmissionStats::rejected`].
    pub const ALL: [Reason; 3] = [
        Reason::ConcurrencyLimit,
        Reason::QueueDelay,
        Reason::AdaptiveLimit,
    ];

    fn index(self) -> usize {
        match self {
            Reason::ConcurrencyLimit => 0,
            Reason::QueueDelay => 1,
            Reason::AdaptiveLimit => 2,
        }
    }

    /// A short label for metrics: `ceiling`, `queue_delay`, `limit`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::ConcurrencyLimit => "ceiling",
            Reason::QueueDelay => "queue_delay",
            Reason::AdaptiveLimit => "limit",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::ConcurrencyLimit => "concurrency limit reached",
            Reason::QueueDelay => "waited too long in the queue",
            Reason::AdaptiveLimit => "adaptive concurrency limit reached",
        })
    }
}

/// A rejection: the reason, and how long the client should wait before trying again
/// (e.g. HTTP `Retry-After`).
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[error("not admitted ({reason}); retry after {retry_after:?}")]
pub struct Rejected {
    /// Which policy said no.
    pub reason: Reason,
    /// Suggested delay before retrying.
    pub retry_after: Duration,
}

/// Queue-delay shedding ("Fail at Scale" / CoDel) settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodelConfig {
    /// The delay allowed once a standing queue has formed (default 5 ms).
    pub target: Duration,
    /// The window in which the queue must have been empty for `interval` itself to be the
    /// allowed delay (default 100 ms).
    pub interval: Duration,
    /// Advise serving newest-first while a standing queue exists (see
    /// [`Admission::lifo`]). Off by default.
    pub adaptive_lifo: bool,
}

impl Default for CodelConfig {
    fn default() -> Self {
        CodelConfig {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
            adaptive_lifo: false,
        }
    }
}

/// Settings of an [`Admission`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// The hard ceiling on requests in flight; the adaptive limit works under it
    /// (default 1024).
    pub max_in_flight: usize,
    /// Queue-delay shedding before admission; on by default, `None` switches it off.
    pub codel: Option<CodelConfig>,
    /// The adaptive concurrency limit; on by default, `None` leaves only the ceiling.
    pub adaptive: Option<AdaptiveConfig>,
    /// The retry-after suggested with every rejection (default 1 s).
    pub retry_after: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_in_flight: 1024,
            codel: Some(CodelConfig::default()),
            adaptive: Some(AdaptiveConfig::default()),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Counters of an [`Admission`], read without locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Requests admitted (the sojourn histogram's count).
    pub admitted: u64,
    /// Rejections, indexed like [`Reason::ALL`].
    pub rejected: [u64; 3],
    /// Permits out now.
    pub in_flight: usize,
    /// Most permits out at once so far.
    pub max_in_flight: usize,
    /// The concurrency limit now: the adaptive limit, or the ceiling when it is off.
    pub limit: usize,
    /// The adaptive limit's queueing-delay target now (`None` when it is off).
    pub target: Option<Duration>,
    /// Queue delay before admission (`now - arrived`) of admitted requests.
    pub sojourn: HistogramSnapshot,
}

impl AdmissionStats {
    /// Rejections for `reason`.
    pub fn rejected_for(&self, reason: Reason) -> u64 {
        self.rejected[reason.index()]
    }
}

/// The adaptive part: the controller and the per-kind costs, under one lock that only
/// the admitting worker takes in practice (a caller that finds it busy skips the update,
/// or treats the kind as unknown).
#[derive(Debug)]
struct Adaptive {
    ctl: Controller,
    costs: CostTable,
}

/// Admission control: the one place that decides whether a request is served now.
///
/// ```
/// use anon_queue::{Admission, AdmissionConfig, Reason, Usage};
/// use std::time::{Duration, Instant};
///
/// let adm = Admission::new(AdmissionConfig { max_in_flight: 1, ..Default::default() });
/// let t0 = Instant::now();
/// let permit = adm.admit(t0, t0).unwrap();
/// // The only slot is taken: the next request is told when to come back.
/// let no = adm.admit(t0, t0).unwrap_err();
/// assert_eq!(no.reason, Reason::ConcurrencyLimit);
/// assert_eq!(no.retry_after, Duration::from_secs(1));
/// // Finishing the permit feeds what the request used to the adaptive limit and frees
/// // the slot.
/// let usage = Usage { service: Duration::from_micros(300), ..Usage::default() };
/// permit.finish(t0 + Duration::from_micros(300), usage);
/// assert!(adm.admit(t0, t0).is_ok());
///
/// // A request that queued for 200 ms is shed: serving it now would be wasted work.
/// let late = t0 + Duration::from_millis(200);
/// assert_eq!(adm.admit(t0, late).unwrap_err().reason, Reason::QueueDelay);
/// ```
pub struct Admission {
    /// Epoch of the nanosecond timestamps below.
    base: Instant,
    /// Permits out (all of them: the ceiling's count).
    in_flight: AtomicUsize,
    /// Permits out that count against the adaptive limit.
    limited: AtomicUsize,
    /// The hard ceiling.
    max: usize,
    /// The adaptive limit in force (the ceiling when adaptive admission is off).
    limit: AtomicUsize,
    /// The adaptive target in force, ns.
    target_ns: AtomicU64,
    /// When the queue was last seen empty, in ns since `base`.
    last_empty_ns: AtomicU64,
    codel: Option<CodelConfig>,
    adaptive: Option<Mutex<Adaptive>>,
    retry_after: Duration,
    max_in_flight: std::sync::atomic::AtomicUsize,
    rejected: [std::sync::atomic::AtomicU64; 3],
    sojourn: Histogram,
}

impl Admission {
    /// An admission controller; the queue counts as empty at creation.
    pub fn new(cfg: AdmissionConfig) -> Admission {
        Admission::new_at(cfg, Instant::now())
    }

    /// Like [`new`](Admission::new), with the creation time given (for reproducible tests:
    /// every `Instant` passed later must not be earlier than `now`).
    pub fn new_at(cfg: AdmissionConfig, now: Instant) -> Admission {
        let max = cfg.max_in_flight.max(1);
        let adaptive = cfg.adaptive.map(|a| Adaptive {
            ctl: Controller::new(a, max),
            costs: CostTable::new(),
        });
        let limit = adaptive.as_ref().map_or(max, |a| a.ctl.limit());
        let target = adaptive.as_ref().map_or(0, |a| nanos(a.ctl.target()));
        Admission {
            base: now,
            in_flight: AtomicUsize::new(0),
            limited: AtomicUsize::new(0),
            max,
            limit: AtomicUsize::new(limit),
            target_ns: AtomicU64::new(target),
            last_empty_ns: AtomicU64::new(0),
            codel: cfg.codel,
            adaptive: adaptive.map(Mutex::new),
            retry_after: cfg.retry_after,
            max_in_flight: std::sync::atomic::AtomicUsize::new(0),
            rejected: Default::default(),
            sojourn: Histogram::new(),
        }
    }

    #[inline]
    fn ns(&self, t: Instant) -> u64 {
        nanos(t.saturating_duration_since(self.base))
    }

    /// `true` when the queue has not been empty during the last `interval` before `now`.
    #[inline]
    fn standing_queue(&self, c: &CodelConfig, now: Instant) -> bool {
        let since = self
            .ns(now)
            .saturating_sub(self.last_empty_ns.load(Ordering::Relaxed));
        u128::from(since) > c.interval.as_nanos()
    }

    /// Decides on a request of unknown kind (it counts against the adaptive limit) that
    /// arrived (was queued) at `arrived` and is considered at `now`: an RAII [`Permit`]
    /// (hold it while serving; [`Permit::finish`] or dropping it releases the slot), or
    /// [`Rejected`] with the reason and a suggested retry-after.
    #[inline]
    pub fn admit(&self, arrived: Instant, now: Instant) -> Result<Permit<'_>, Rejected> {
        self.admit_kind(0, arrived, now, usize::MAX)
    }

    /// Like [`admit`](Admission::admit) for a request of kind `kind` (a hash such as
    /// [`kind_key`](crate::kind_key) of an HTTP path; 0 = unknown), with `waiting` the
    /// number of admitted requests ready to run but waiting for the CPU now, as the
    /// runtime knows it (`usize::MAX` when it does not).
    ///
    /// A kind whose measured service time is below [`AdaptiveConfig::cheap_below`] is
    /// admitted up to the hard ceiling without counting against the adaptive limit. A
    /// request over the adaptive limit is admitted anyway, raising the limit, when
    /// `waiting` is 0: the requests in flight are all parked (on I/O), nothing queues
    /// for the CPU, and a refusal would only leave it idle.
    #[inline]
    pub fn admit_kind(
        &self,
        kind: u64,
        arrived: Instant,
        now: Instant,
        waiting: usize,
    ) -> Result<Permit<'_>, Rejected> {
        let (sojourn, limited) = self.decide(kind, arrived, now, waiting, true)?;
        self.sojourn.record(sojourn);
        let cur = self.in_flight.load(Ordering::Relaxed);
        if cur > self.max_in_flight.load(Ordering::Relaxed) {
            self.max_in_flight.fetch_max(cur, Ordering::Relaxed);
        }
        Ok(Permit {
            adm: self,
            start: now,
            sojourn,
            kind,
            limited,
        })
    }

    /// The decision [`admit_kind`](Admission::admit_kind) would take now, without taking
    /// a permit: `Err` is a refusal (counted like one), `Ok` leaves everything as it was
    /// (nothing is recorded, the limit is not raised). For a runtime that can refuse
    /// cheaply before it commits to serving a request, and asks again if it serves.
    pub fn check_kind(
        &self,
        kind: u64,
        arrived: Instant,
        now: Instant,
        waiting: usize,
    ) -> Result<(), Rejected> {
        self.decide(kind, arrived, now, waiting, false).map(|_| ())
    }

    /// The shared decision: on success, with `take`, one slot is held (and one limited
    /// slot when the request counts against the adaptive limit); without, none is.
    /// Returns the pre-admission wait and whether the request is limited.
    #[inline]
    fn decide(
        &self,
        kind: u64,
        arrived: Instant,
        now: Instant,
        waiting: usize,
        take: bool,
    ) -> Result<(Duration, bool), Rejected> {
        let sojourn = now.saturating_duration_since(arrived);
        if let Some(c) = &self.codel {
            // Below the short target nothing else needs to be looked at.
            if sojourn > c.target {
                let allowed = if self.standing_queue(c, now) {
                    c.target
                } else {
                    c.interval
                };
                if sojourn > allowed {
                    return Err(self.reject(Reason::QueueDelay));
                }
            }
        }
        let limited = match &self.adaptive {
            None => false,
            Some(_) if kind == 0 => true,
            Some(a) => match a.try_lock() {
                Ok(a) => !(kind != 0 && a.costs.get(kind).is_some_and(|c| a.ctl.is_cheap(c))),
                Err(_) => true,
            },
        };
        if !try_increment(&self.in_flight, self.max) {
            return Err(self.reject(Reason::ConcurrencyLimit));
        }
        let slot = !limited || try_increment(&self.limited, self.limit.load(Ordering::Relaxed));
        if !slot && !(waiting == 0 && (!take || self.raise_limit())) {
            self.in_flight.fetch_sub(1, Ordering::Release);
            return Err(self.reject(Reason::AdaptiveLimit));
        }
        if !take {
            if limited && slot {
                self.limited.fetch_sub(1, Ordering::Release);
            }
            self.in_flight.fetch_sub(1, Ordering::Release);
        }
        Ok((sojourn, limited))
    }

    /// Takes one more limited slot by raising the adaptive limit to cover it; `false` if
    /// the controller is busy (another thread updates it).
    #[cold]
    fn raise_limit(&self) -> bool {
        let Some(a) = &self.adaptive else {
            return false;
        };
        let Ok(mut a) = a.try_lock() else {
            return false;
        };
        let n = self.limited.fetch_add(1, Ordering::Acquire) + 1;
        let limit = a.ctl.raise_to(n);
        self.limit.store(limit, Ordering::Relaxed);
        if n > limit {
            // At the ceiling already (the caller's ceiling check makes this rare).
            self.limited.fetch_sub(1, Ordering::Release);
            return false;
        }
        true
    }

    #[cold]
    fn reject(&self, reason: Reason) -> Rejected {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
        Rejected {
            reason,
            retry_after: self.retry_after,
        }
    }

    /// Tells the queue-delay policy that the request queue was empty at `now`. Call it
    /// whenever the queue drains.
    pub fn note_empty(&self, now: Instant) {
        let ns = self.ns(now);
        if ns > self.last_empty_ns.load(Ordering::Relaxed) {
            self.last_empty_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    /// Adaptive LIFO advice: `true` when `adaptive_lifo` is on and a standing queue exists
    /// at `now`; the runtime should then serve its newest queued request first (those are
    /// the ones whose clients are still waiting), returning to FIFO once the queue drains.
    pub fn lifo(&self, now: Instant) -> bool {
        match &self.codel {
            Some(c) if c.adaptive_lifo => self.standing_queue(c, now),
            _ => false,
        }
    }

    /// Whether a request of unknown kind would be refused now for the ceiling or the
    /// adaptive limit if some admitted request waits for the CPU (a hint: other threads
    /// may change it at once).
    pub fn is_saturated(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.max
            || (self.adaptive.is_some()
                && self.limited.load(Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed))
    }

    /// Permits out now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The concurrency limit in force: the adaptive limit, or the ceiling when it is off.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The adaptive limit's queueing-delay target (`None` when it is off).
    pub fn target(&self) -> Option<Duration> {
        self.adaptive
            .as_ref()
            .map(|_| Duration::from_nanos(self.target_ns.load(Ordering::Relaxed)))
    }

    /// The counters.
    pub fn stats(&self) -> AdmissionStats {
        let sojourn = self.sojourn.snapshot();
        AdmissionStats {
            admitted: sojourn.count(),
            rejected: std::array::from_fn(|i| self.rejected[i].load(Ordering::Relaxed)),
            in_flight: self.in_flight(),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
            limit: self.limit(),
            target: self.target(),
            sojourn,
        }
    }

    fn release(&self, limited: bool) {
        if limited {
            self.limited.fetch_sub(1, Ordering::Release);
        }
        self.in_flight.fetch_sub(1, Ordering::Release);
    }

    fn sample(&self, kind: u64, limited: bool, now: Instant, latency: Duration, usage: Usage) {
        let Some(a) = &self.adaptive else { return };
        // Skip the sample rather than wait if another thread is updating the estimate.
        if let Ok(mut a) = a.try_lock() {
            if kind != 0 {
                a.costs.record(kind, usage.service);
            }
            if limited {
                let in_flight = self.limited.load(Ordering::Relaxed);
                let limit = a.ctl.sample(now, usage, latency, in_flight);
                self.limit.store(limit, Ordering::Relaxed);
                self.target_ns
                    .store(nanos(a.ctl.target()), Ordering::Relaxed);
            }
        }
    }
}

/// Adds one to `counter` unless it is at `max` already.
#[inline]
fn try_increment(counter: &AtomicUsize, max: usize) -> bool {
    let mut cur = counter.load(Ordering::Relaxed);
    loop {
        if cur >= max {
            return false;
        }
        match counter.compare_exchange_weak(cur, cur + 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("in_flight", &self.in_flight())
            .field("limit", &self.limit())
            .field("max", &self.max)
            .field("codel", &self.codel)
            .field("adaptive", &self.adaptive.is_some())
            .finish()
    }
}

/// Proof of admission: one slot of the concurrency limit, given back on drop.
#[must_use = "dropping the permit at once releases the slot"]
#[derive(Debug)]
pub struct Permit<'a> {
    adm: &'a Admission,
    start: Instant,
    /// The wait before admission (`now - arrived`).
    sojourn: Duration,
    kind: u64,
    limited: bool,
}

impl Permit<'_> {
    /// Ends the request at `now` with what it used (its CPU time and its queueing delay
    /// after admission, as the runtime measured them), feeding both to the adaptive limit
    /// (if on) together with its wait before admission, and releases the slot. Dropping
    /// the permit releases it without a sample.
    pub fn finish(self, now: Instant, usage: Usage) {
        // The controller sees the whole wait: before admission and after it.
        let latency = now.saturating_duration_since(self.start) + self.sojourn;
        let usage = Usage {
            queued: usage.queued + self.sojourn,
            ..usage
        };
        self.adm
            .sample(self.kind, self.limited, now, latency, usage);
    }

    /// When the permit was granted.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Whether this request counts against the adaptive limit (it is not of a kind known
    /// to be cheap).
    pub fn is_limited(&self) -> bool {
        self.limited
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.adm.release(self.limited);
    }
}

/// "Busy mode" with hysteresis: enter above a high watermark, leave only below a low one, so
/// that a listener near its limit does not flap between accepting and refusing.
#[derive(Debug)]
pub struct Hysteresis {
    high: usize,
    low: usize,
    busy: std::sync::atomic::AtomicBool,
}

/// What [`Hysteresis::update`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyChange {
    /// The level rose above the high watermark: busy mode starts now.
    Entered,
    /// The level fell below the low watermark: busy mode ends now.
    Left,
    /// No change; the state is [`Hysteresis::is_busy`].
    Unchanged,
}

impl Hysteresis {
    /// Busy mode above `high`, normal again below `low`.
    ///
    /// # Panics
    /// If `low >= high` (a configuration error: there would be no band to stay in).
    pub fn new(low: usize, high: usize) -> Hysteresis {
        assert!(low < high, "anon_queue::Hysteresis needs low < high");
        Hysteresis {
            high,
            low,
            busy: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Feeds the current level (queue depth, in-flight count...).
    pub fn update(&self, level: usize) -> BusyChange {
        let busy = self.busy.load(Ordering::Relaxed);
        if !busy && level > self.high {
            if !self.busy.swap(true, Ordering::Relaxed) {
                return BusyChange::Entered;
            }
        } else if busy && level < self.low && self.busy.swap(false, Ordering::Relaxed) {
            return BusyChange::Left;
        }
        BusyChange::Unchanged
    }

    /// `true` while in busy mode.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// The watermarks `(low, high)`.
    pub fn watermarks(&self) -> (usize, usize) {
        (self.low, self.high)
    }
}
