//! Lock-free counters shared by the primitives: a log2 histogram of durations, a clock hook.

// Plain std atomics even under loom: these are relaxed statistics that no algorithm reads
// back, and forty loom atomics per histogram would only slow the models down.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Number of buckets of a [`Histogram`]: bucket `i` counts durations in `[2^i, 2^(i+1))` ns
/// (bucket 0 also counts 0); the last bucket counts everything from about 9 minutes up.
pub const BUCKETS: usize = 40;

/// A histogram of durations on power-of-two nanosecond buckets. Recording is one relaxed
/// atomic add; reading takes no lock (a snapshot may mix records in flight).
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The bucket a duration of `ns` nanoseconds falls in.
    #[inline]
    pub fn bucket_of(ns: u64) -> usize {
        let b = 63 - (ns | 1).leading_zeros() as usize;
        b.min(BUCKETS - 1)
    }

    /// Counts one duration.
    #[inline]
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// The counts of a [`Histogram`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// `buckets[i]` counts durations in `[2^i, 2^(i+1))` nanoseconds.
    pub buckets: [u64; BUCKETS],
}

impl HistogramSnapshot {
    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// An upper bound of the `q` quantile (`0.0..=1.0`): the top of the bucket holding it.
    /// `None` when empty.
    pub fn quantile_upper_bound(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_nanos(
                    1u64.checked_shl(i as u32 + 1).unwrap_or(u64::MAX),
                ));
            }
        }
        None
    }
}

/// A source of time, so that waiting primitives can be driven by a fake clock in tests.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// [`Clock`] reading `Instant::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdClock;

impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(all(test, not(anon_loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(Histogram::bucket_of(0), 0);
        assert_eq!(Histogram::bucket_of(1), 0);
        assert_eq!(Histogram::bucket_of(2), 1);
        assert_eq!(Histogram::bucket_of(1023), 9);
        assert_eq!(Histogram::bucket_of(1024), 10);
        assert_eq!(Histogram::bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_come_from_bucket_tops() {
        let h = Histogram::new();
        assert_eq!(h.snapshot().quantile_upper_bound(0.5), None);
        for _ in 0..9 {
            h.record(Duration::from_nanos(100));
        }
        h.record(Duration::from_micros(100));
        let s = h.snapshot();
        assert_eq!(s.count(), 10);
        assert_eq!(s.quantile_upper_bound(0.5), Some(Duration::from_nanos(128)));
        assert_eq!(
            s.quantile_upper_bound(1.0),
            Some(Duration::from_nanos(131_072))
        );
    }
}
