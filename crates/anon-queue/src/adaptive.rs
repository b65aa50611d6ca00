//! The adaptive concurrency limit: pure logic, time given by the caller.
//!
//! The signal is a request's **queueing delay after admission** (the time it was ready to
//! run but waited for the CPU, whatever ran instead), measured by the runtime, compared
//! with a **target derived from the unloaded latency the server measures**: each
//! request's latency minus its queueing delay (its CPU time plus its waits on I/O), which
//! is what it would take if nothing queued. Latency splits into service + queueing +
//! waiting on I/O; only queueing says the server holds more than it can serve in time,
//! so the limit rises for I/O-bound handlers (they queue little however many are in
//! flight, and their long unloaded latency tolerates more) and falls for CPU-bound ones. `docs/decisions/001-adaptive-admission.md`
//! compares this with Netflix's Gradient2 and Vegas, Envoy's gradient controller,
//! Breakwater and CoDel.
//!
//! Once per window (the target long, within [`AdaptiveConfig::window`] and 5 ms, and at
//! least 8 requests unless they come slowly):
//! - the window's mean queueing delay `q` above the target `T`: the limit shrinks to
//!   `limit × max(T / q, 1/2)` (multiplicative decrease, proportional to the excess);
//! - `q ≤ T` while at least half of the limit was in use: the limit grows, by a quarter
//!   while `q < T / 2` (fast, for I/O-bound work that needs many in flight), else by one;
//! - less than half in use: unchanged (nothing was learned), but a limit above
//!   [`AdaptiveConfig::initial_limit`] decays by 1/16 towards it, so that a long quiet spell
//!   does not leave a limit the next burst would overrun.
//!
//! Between windows, one more rule: a request over the limit is admitted anyway, and the
//! limit raised to let it in, when no admitted request is waiting for the CPU at that
//! moment (the runtime says how many are): the limit then only counts requests parked
//! on I/O, and refusing would leave the CPU idle. This is how a server of I/O-bound
//! handlers reaches the concurrency it needs without refusing the first burst.
//!
//! `T = clamp(target_ratio × b, min_target, max_target)`, where `b` is the unloaded
//! latency averaged with each request weighted by its CPU time (`E[s·b] / E[s]`,
//! exponentially averaged): the latency of the requests that make up the CPU's work, not
//! of the many cheap ones beside them. For CPU-bound requests `b` is their service time.

use std::time::{Duration, Instant};

/// Settings of the adaptive concurrency limit (on by default in
/// [`AdmissionConfig`](crate::AdmissionConfig)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    /// The limit to start from, and the floor a quiet limit decays to (default 10).
    pub initial_limit: usize,
    /// The lowest the limit goes (default 1).
    pub min_limit: usize,
    /// The queueing-delay target as a multiple of the measured unloaded latency (default
    /// 2: under overload a request takes about three times what it takes unloaded).
    pub target_ratio: f64,
    /// The lowest target (default 100 µs): below it scheduling noise dominates.
    pub min_target: Duration,
    /// The highest target (default 50 ms).
    pub max_target: Duration,
    /// The shortest control window (default 1 ms); a window lasts the target, within
    /// this and 5 ms.
    pub window: Duration,
    /// Requests whose kind (e.g. the HTTP path) was measured to cost less CPU than this
    /// are admitted up to the hard ceiling without counting against the adaptive limit
    /// (default 25 µs): they finish within their first slice, ahead of queued work, so they
    /// never wait behind it, and refusing them because slow requests fill the limit would
    /// let expensive requests starve cheap ones. `Duration::ZERO` counts every request.
    pub cheap_below: Duration,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            initial_limit: 10,
            min_limit: 1,
            target_ratio: 2.0,
            min_target: Duration::from_micros(100),
            max_target: Duration::from_millis(50),
            window: Duration::from_millis(1),
            cheap_below: Duration::from_micros(25),
        }
    }
}

/// What one finished request used, as the runtime measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU time the request used (its running slices).
    pub service: Duration,
    /// Time it was ready to run but waited for the CPU, whatever ran instead (older
    /// requests, refusals, other connections): its queueing delay after admission, the
    /// control signal. Latency minus this is the request's unloaded latency, from which
    /// the target is derived.
    pub queued: Duration,
}

/// The longest control window (a window with fewer than [`MIN_SAMPLES`] lasts up to four
/// times this).
const MAX_WINDOW: Duration = Duration::from_millis(5);

/// Samples a window waits for before it closes (see [`Controller::sample`]).
const MIN_SAMPLES: u32 = 8;

/// Weight of each new sample in the service-time averages.
const SERVICE_EWMA: f64 = 1.0 / 32.0;

/// The controller's state.
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    cfg: AdaptiveConfig,
    max: usize,
    limit: f64,
    /// Exponential averages of s and s·b (ns, ns²) over completed requests: service time
    /// and service time × unloaded latency.
    s1: f64,
    sb: f64,
    seen: bool,
    win_start: Option<Instant>,
    /// Sum of the window's queueing delays (ns) and their count.
    win_q: f64,
    win_n: u32,
    win_peak: usize,
}

impl Controller {
    /// A controller whose limit stays within `min_limit..=max`.
    pub(crate) fn new(cfg: AdaptiveConfig, max: usize) -> Controller {
        let max = max.max(1);
        let min = cfg.min_limit.clamp(1, max);
        let cfg = AdaptiveConfig {
            min_limit: min,
            initial_limit: cfg.initial_limit.clamp(min, max),
            target_ratio: if cfg.target_ratio.is_finite() && cfg.target_ratio > 0.0 {
                cfg.target_ratio
            } else {
                AdaptiveConfig::default().target_ratio
            },
            max_target: cfg.max_target.max(cfg.min_target),
            ..cfg
        };
        Controller {
            max,
            limit: cfg.initial_limit as f64,
            cfg,
            s1: 0.0,
            sb: 0.0,
            seen: false,
            win_start: None,
            win_q: 0.0,
            win_n: 0,
            win_peak: 0,
        }
    }

    /// The limit in force.
    pub(crate) fn limit(&self) -> usize {
        // Clamped on every update; the cast floors.
        (self.limit as usize).clamp(self.cfg.min_limit, self.max)
    }

    /// The queueing-delay target in force.
    pub(crate) fn target(&self) -> Duration {
        let s = if self.s1 > 0.0 {
            self.sb / self.s1
        } else {
            0.0
        };
        let t = Duration::from_nanos((self.cfg.target_ratio * s).min(1e15) as u64);
        t.clamp(self.cfg.min_target, self.cfg.max_target)
    }

    /// Feeds one finished request: `now`, what it used, its latency (admission to
    /// response) and how many limited requests were in flight (itself included). Returns
    /// the limit in force afterwards.
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        usage: Usage,
        latency: Duration,
        in_flight: usize,
    ) -> usize {
        // A request with no measured CPU still weighs a little, so a server of pure
        // waiters gets a target from their latency.
        let s = (usage.service.as_nanos() as f64).max(1.0);
        let q = usage.queued.as_nanos() as f64;
        let b = (latency.as_nanos() as f64 - q).max(s);
        if self.seen {
            self.s1 += (s - self.s1) * SERVICE_EWMA;
            self.sb += (s * b - self.sb) * SERVICE_EWMA;
        } else {
            self.s1 = s;
            self.sb = s * b;
            self.seen = true;
        }
        let start = *self.win_start.get_or_insert(now);
        self.win_q += q;
        self.win_n += 1;
        self.win_peak = self.win_peak.max(in_flight);
        let target = self.target();
        let window = target.min(MAX_WINDOW).max(self.cfg.window);
        let elapsed = now.saturating_duration_since(start);
        // Enough samples for a mean that is not one request's luck, unless they come
        // slowly: then the window closes at four times its length with what it has.
        if elapsed >= window && (self.win_n >= MIN_SAMPLES || elapsed >= window * 4) {
            self.update(target.as_nanos() as f64);
            self.win_start = Some(now);
            self.win_q = 0.0;
            self.win_n = 0;
            self.win_peak = 0;
        }
        self.limit()
    }

    fn update(&mut self, target: f64) {
        // The mean, not the largest: at saturation every admitted request has the same
        // number of older ones ahead, so the two agree; the mean is not thrown by bursts
        // (timers that fire together) or by one slice the kernel stole.
        let q = self.win_q / f64::from(self.win_n.max(1));
        let used = self.win_peak as f64 >= self.limit / 2.0;
        if q > target {
            self.limit *= (target / q).max(0.5);
        } else if used {
            self.limit += if q < target / 2.0 {
                (self.limit / 4.0).max(1.0)
            } else {
                1.0
            };
        } else if self.limit > self.cfg.initial_limit as f64 {
            self.limit = (self.limit * (15.0 / 16.0)).max(self.cfg.initial_limit as f64);
        }
        self.limit = self.limit.clamp(self.cfg.min_limit as f64, self.max as f64);
    }

    /// Raises the limit to at least `n` (within the ceiling); returns the limit.
    pub(crate) fn raise_to(&mut self, n: usize) -> usize {
        self.limit = self.limit.max(n as f64).min(self.max as f64);
        self.limit()
    }

    /// Whether a kind measured at `cost` is cheap enough to skip the limit.
    pub(crate) fn is_cheap(&self, cost: Duration) -> bool {
        cost < self.cfg.cheap_below
    }
}

/// Per-kind service-time estimates (e.g. per HTTP path), a small direct-mapped table:
/// a kind not in it (never seen, or evicted by another) counts as expensive.
#[derive(Debug)]
pub(crate) struct CostTable {
    /// `(key, average ns)`; key 0 is "empty".
    slots: Vec<(u64, u64)>,
}

/// Entries of a [`CostTable`].
const COST_SLOTS: usize = 256;

impl CostTable {
    pub(crate) fn new() -> CostTable {
        CostTable {
            slots: vec![(0, 0); COST_SLOTS],
        }
    }

    fn index(key: u64) -> usize {
        // The key is a hash already; fold its high bits in for the index.
        ((key ^ (key >> 32)) as usize) % COST_SLOTS
    }

    /// The average cost of `key`, if known.
    pub(crate) fn get(&self, key: u64) -> Option<Duration> {
        let key = key.max(1);
        let (k, ns) = self.slots[Self::index(key)];
        (k == key).then(|| Duration::from_nanos(ns))
    }

    /// Folds one measured cost into `key`'s average (an eighth per sample).
    pub(crate) fn record(&mut self, key: u64, cost: Duration) {
        let key = key.max(1);
        let ns = u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX);
        let slot = &mut self.slots[Self::index(key)];
        if slot.0 == key {
            let old = slot.1 as i128;
            slot.1 = (old + (ns as i128 - old) / 8).max(0) as u64;
        } else {
            *slot = (key, ns);
        }
    }
}

/// A 64-bit FNV-1a hash of `bytes`: the key of a request kind for
/// [`Admission::admit_kind`](crate::Admission::admit_kind).
///
/// ```
/// assert_eq!(anon_queue::kind_key(b"/plaintext"), anon_queue::kind_key(b"/plaintext"));
/// assert_ne!(anon_queue::kind_key(b"/plaintext"), anon_queue::kind_key(b"/work"));
/// ```
pub fn kind_key(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(all(test, not(anon_loom)))]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Drives the controller with `n` requests of `service` each, `in_flight` at a time
    /// on one CPU served oldest first: the k-th of a batch queues (k-1) × service.
    fn batches(c: &mut Controller, t: &mut Instant, service: Duration, rounds: usize) {
        for _ in 0..rounds {
            let n = c.limit();
            for k in 0..n {
                *t += service;
                c.sample(
                    *t,
                    Usage {
                        service,
                        queued: service * k as u32,
                    },
                    service * (k as u32 + 1),
                    n - k,
                );
            }
        }
    }

    #[test]
    fn cpu_bound_work_settles_near_the_target() {
        let mut c = Controller::new(AdaptiveConfig::default(), 1024);
        let mut t = Instant::now();
        batches(&mut c, &mut t, us(1000), 200);
        assert_eq!(c.target(), us(2000));
        // A batch of L queues 0, 1, .. L-1 ms, a mean of (L-1)/2 ms: about 2 ms allowed,
        // so the limit hovers around 5 (the one above it overshoots, the one below grows).
        let l = c.limit();
        assert!((3..=6).contains(&l), "limit {l}");
    }

    #[test]
    fn io_bound_work_grows_the_limit_fast() {
        let mut c = Controller::new(AdaptiveConfig::default(), 1024);
        let mut t = Instant::now();
        // 100 µs of CPU and 30 ms of waiting, no queueing, the limit fully used.
        for _ in 0..40 {
            let n = c.limit();
            for _ in 0..n {
                let usage = Usage {
                    service: us(100),
                    ..Usage::default()
                };
                c.sample(t, usage, Duration::from_millis(30), n);
            }
            t += Duration::from_millis(30);
        }
        assert!(c.limit() > 200, "limit {}", c.limit());
        assert_eq!(c.target(), Duration::from_millis(50));
    }

    #[test]
    fn the_target_follows_the_costly_requests_of_a_mix() {
        let mut c = Controller::new(AdaptiveConfig::default(), 1024);
        let t = Instant::now();
        for i in 0..2000 {
            let service = if i % 10 == 0 { us(5000) } else { us(5) };
            let usage = Usage {
                service,
                ..Usage::default()
            };
            c.sample(t, usage, service, 1);
        }
        let target = c.target();
        assert!(target > us(6000) && target <= us(10_000), "{target:?}");
    }

    #[test]
    fn cost_table_learns_and_forgets_by_eviction() {
        let mut t = CostTable::new();
        let k = kind_key(b"/a");
        assert_eq!(t.get(k), None);
        t.record(k, us(800));
        assert_eq!(t.get(k), Some(us(800)));
        for _ in 0..40 {
            t.record(k, us(8));
        }
        assert!(t.get(k).unwrap() < us(12));
        // A key landing on the same slot replaces it.
        let other = (0u64..)
            .map(|i| kind_key(format!("/b{i}").as_bytes()))
            .find(|&o| o != k && CostTable::index(o) == CostTable::index(k))
            .unwrap();
        t.record(other, us(1));
        assert_eq!(t.get(k), None);
    }
}
