//! Admission control: one decision, [`Admission::admit`], that either grants an RAII
//! [`Permit`] or rejects with a [`Reason`] and a suggested retry-after.
//!
//! Policies consulted, in order:
//! 1. Queue-delay shedding after Facebook's "Fail at Scale" (a CoDel variant): a request that
//!    waited longer than `target` (5 ms) is shed if the queue has not been empty during the
//!    last `interval` (100 ms); if it has, the request may wait up to `interval`.
//! 2. A concurrency limit: at most `limit` permits out at once. The limit is fixed
//!    (`max_in_flight`) unless the gradient-style adaptive limit is switched on.
//!
//! Time is never read here: callers pass `Instant`s (a worker loop has its `now` anyway),
//! which also makes every decision reproducible in tests.

use crate::stats::{Histogram, HistogramSnapshot};
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
use std::time::{Duration, Instant};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// As many requests as the concurrency limit allows are already in flight.
    ConcurrencyLimit,
    /// The request waited in the queue longer than the queue-delay target allows.
    QueueDelay,
}

impl Reason {
    /// Every reason, in the order of [`AdmissionStats::rejected`].
    pub const ALL: [Reason; 2] = [Reason::ConcurrencyLimit, Reason::QueueDelay];

    fn index(self) -> usize {
        match self {
            Reason::ConcurrencyLimit => 0,
            Reason::QueueDelay => 1,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::ConcurrencyLimit => "concurrency limit reached",
            Reason::QueueDelay => "waited too long in the queue",
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

/// Gradient-style adaptive concurrency limit settings (after Netflix's Gradient2).
///
/// Each completed request's latency updates a long-term average (the no-load latency
/// estimate) and a short-term one; the limit moves towards
/// `limit × clamp(tolerance × long / short, 0.5, 1) + √limit`, smoothed, within
/// `min_limit..=max_in_flight`. It does not grow while less than half of it is in use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientConfig {
    /// The limit to start from (default 20).
    pub initial_limit: usize,
    /// The floor (default 1).
    pub min_limit: usize,
    /// Weight of each new limit estimate, `0..=1` (default 0.2).
    pub smoothing: f64,
    /// How much slower than the long-term latency the short-term one may be before the
    /// limit shrinks (default 1.5).
    pub tolerance: f64,
    /// Samples in the long-term average's window (default 600).
    pub long_window: u32,
    /// Samples in the short-term average's window (default 10).
    pub short_window: u32,
}

impl Default for GradientConfig {
    fn default() -> Self {
        GradientConfig {
            initial_limit: 20,
            min_limit: 1,
            smoothing: 0.2,
            tolerance: 1.5,
            long_window: 600,
            short_window: 10,
        }
    }
}

/// Settings of an [`Admission`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// The concurrency limit, or the ceiling of the adaptive limit (default 1024).
    pub max_in_flight: usize,
    /// Queue-delay shedding; on by default, `None` switches it off.
    pub codel: Option<CodelConfig>,
    /// Adaptive concurrency limit; off (`None`) by default.
    pub adaptive: Option<GradientConfig>,
    /// The retry-after suggested with every rejection (default 1 s).
    pub retry_after: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_in_flight: 1024,
            codel: Some(CodelConfig::default()),
            adaptive: None,
            retry_after: Duration::from_secs(1),
        }
    }
}

/// The adaptive limit's running state, updated under a `try_lock` (a sample that finds it
/// busy is skipped rather than waited for).
#[derive(Debug, Clone)]
struct Gradient {
    cfg: GradientConfig,
    max: usize,
    limit: f64,
    long_rtt: f64,
    short_rtt: f64,
    samples: u64,
}

impl Gradient {
    fn new(cfg: GradientConfig, max: usize) -> Gradient {
        let min = cfg.min_limit.clamp(1, max);
        Gradient {
            cfg: GradientConfig {
                min_limit: min,
                ..cfg
            },
            max,
            limit: cfg.initial_limit.clamp(min, max) as f64,
            long_rtt: 0.0,
            short_rtt: 0.0,
            samples: 0,
        }
    }

    /// Feeds one completed request; returns the new limit.
    fn sample(&mut self, rtt: Duration, in_flight: usize) -> usize {
        let rtt = (rtt.as_nanos() as f64).max(1.0);
        self.samples += 1;
        let n = self.samples as f64;
        self.long_rtt += (rtt - self.long_rtt) / n.min(f64::from(self.cfg.long_window.max(1)));
        self.short_rtt += (rtt - self.short_rtt) / n.min(f64::from(self.cfg.short_window.max(1)));
        // After a lasting latency drop, let the long-term estimate catch up faster.
        if self.long_rtt / self.short_rtt > 2.0 {
            self.long_rtt *= 0.95;
        }
        // Application-limited: too little in flight to learn anything about the limit.
        if (in_flight as f64) < self.limit / 2.0 {
            return self.current();
        }
        let gradient = (self.cfg.tolerance * self.long_rtt / self.short_rtt).clamp(0.5, 1.0);
        let estimate = self.limit * gradient + self.limit.sqrt();
        let s = self.cfg.smoothing.clamp(0.0, 1.0);
        self.limit = (self.limit * (1.0 - s) + estimate * s)
            .clamp(self.cfg.min_limit as f64, self.max as f64);
        self.current()
    }

    fn current(&self) -> usize {
        (self.limit as usize).clamp(self.cfg.min_limit, self.max)
    }
}

/// Counters of an [`Admission`], read without locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Requests admitted (the sojourn histogram's count).
    pub admitted: u64,
    /// Rejections, indexed like [`Reason::ALL`].
    pub rejected: [u64; 2],
    /// Permits out now.
    pub in_flight: usize,
    /// Most permits out at once so far.
    pub max_in_flight: usize,
    /// The concurrency limit now.
    pub limit: usize,
    /// Queue delay (`now - arrived`) of admitted requests.
    pub sojourn: HistogramSnapshot,
}

impl AdmissionStats {
    /// Rejections for `reason`.
    pub fn rejected_for(&self, reason: Reason) -> u64 {
        self.rejected[reason.index()]
    }
}

/// Admission control: the one place that decides whether a request is served now.
///
/// ```
/// use anon_queue::{Admission, AdmissionConfig, Reason};
/// use std::time::{Duration, Instant};
///
/// let adm = Admission::new(AdmissionConfig { max_in_flight: 1, ..Default::default() });
/// let t0 = Instant::now();
/// let permit = adm.admit(t0, t0).unwrap();
/// // The only slot is taken: the next request is told when to come back.
/// let no = adm.admit(t0, t0).unwrap_err();
/// assert_eq!(no.reason, Reason::ConcurrencyLimit);
/// assert_eq!(no.retry_after, Duration::from_secs(1));
/// drop(permit); // releasing the permit frees the slot
/// assert!(adm.admit(t0, t0).is_ok());
///
/// // A request that queued for 200 ms is shed: serving it now would be wasted work.
/// let late = t0 + Duration::from_millis(200);
/// assert_eq!(adm.admit(t0, late).unwrap_err().reason, Reason::QueueDelay);
/// ```
pub struct Admission {
    /// Epoch of the nanosecond timestamps below.
    base: Instant,
    in_flight: AtomicUsize,
    /// The concurrency limit in force (fixed, or the adaptive limit's latest value).
    limit: AtomicUsize,
    /// When the queue was last seen empty, in ns since `base`.
    last_empty_ns: AtomicU64,
    codel: Option<CodelConfig>,
    gradient: Option<Mutex<Gradient>>,
    retry_after: Duration,
    max_in_flight: std::sync::atomic::AtomicUsize,
    rejected: [std::sync::atomic::AtomicU64; 2],
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
        let gradient = cfg.adaptive.map(|g| Gradient::new(g, max));
        let limit = gradient.as_ref().map_or(max, Gradient::current);
        Admission {
            base: now,
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            last_empty_ns: AtomicU64::new(0),
            codel: cfg.codel,
            gradient: gradient.map(Mutex::new),
            retry_after: cfg.retry_after,
            max_in_flight: std::sync::atomic::AtomicUsize::new(0),
            rejected: Default::default(),
            sojourn: Histogram::new(),
        }
    }

    #[inline]
    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// `true` when the queue has not been empty during the last `interval` before `now`.
    #[inline]
    fn standing_queue(&self, c: &CodelConfig, now: Instant) -> bool {
        let since = self
            .ns(now)
            .saturating_sub(self.last_empty_ns.load(Ordering::Relaxed));
        u128::from(since) > c.interval.as_nanos()
    }

    /// Decides on a request that arrived (was queued) at `arrived` and is considered at
    /// `now`: an RAII [`Permit`] (hold it while serving; dropping it releases the slot), or
    /// [`Rejected`] with the reason and a suggested retry-after.
    #[inline]
    pub fn admit(&self, arrived: Instant, now: Instant) -> Result<Permit<'_>, Rejected> {
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
        let limit = self.limit.load(Ordering::Relaxed);
        let mut cur = self.in_flight.load(Ordering::Relaxed);
        loop {
            if cur >= limit {
                return Err(self.reject(Reason::ConcurrencyLimit));
            }
            match self.in_flight.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now_in_flight) => cur = now_in_flight,
            }
        }
        self.sojourn.record(sojourn);
        if cur + 1 > self.max_in_flight.load(Ordering::Relaxed) {
            self.max_in_flight.fetch_max(cur + 1, Ordering::Relaxed);
        }
        Ok(Permit {
            adm: self,
            start: now,
        })
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

    /// Permits out now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The concurrency limit in force.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
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
            sojourn,
        }
    }

    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::Release);
    }

    fn sample(&self, latency: Duration) {
        let Some(g) = &self.gradient else { return };
        // Skip the sample rather than wait if another thread is updating the estimate.
        if let Ok(mut g) = g.try_lock() {
            let limit = g.sample(latency, self.in_flight.load(Ordering::Relaxed));
            self.limit.store(limit, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("in_flight", &self.in_flight())
            .field("limit", &self.limit())
            .field("codel", &self.codel)
            .field("adaptive", &self.gradient.is_some())
            .finish()
    }
}

/// Proof of admission: one slot of the concurrency limit, given back on drop.
#[must_use = "dropping the permit at once releases the slot"]
#[derive(Debug)]
pub struct Permit<'a> {
    adm: &'a Admission,
    start: Instant,
}

impl Permit<'_> {
    /// Ends the request at `now`, feeding its latency to the adaptive limit (if on), and
    /// releases the slot. Dropping the permit releases it without a sample.
    pub fn finish(self, now: Instant) {
        self.adm.sample(now.saturating_duration_since(self.start));
    }

    /// When the permit was granted.
    pub fn started(&self) -> Instant {
        self.start
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.adm.release();
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

#[cfg(all(test, not(anon_loom)))]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn gradient_shrinks_when_latency_rises_and_regrows() {
        let mut g = Gradient::new(GradientConfig::default(), 100);
        assert_eq!(g.current(), 20);
        for _ in 0..200 {
            g.sample(ms(10), 20);
        }
        let steady = g.current();
        assert!(
            steady > 20,
            "full use at steady latency grows the limit: {steady}"
        );
        for _ in 0..50 {
            g.sample(ms(100), steady);
        }
        let congested = g.current();
        assert!(congested < steady, "{congested} !< {steady}");
        assert!(congested >= 1);
    }

    #[test]
    fn gradient_does_not_grow_when_app_limited() {
        let mut g = Gradient::new(GradientConfig::default(), 100);
        for _ in 0..100 {
            g.sample(ms(10), 1);
        }
        assert_eq!(g.current(), 20);
    }
}
