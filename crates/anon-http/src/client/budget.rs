//! The retry budget (a token bucket) and the backoff jitter.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Settings of the retry budget: retries may be at most `ratio` of the requests, with at
/// most `max_tokens` saved up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// Tokens each request (not a retry) adds; a retry costs one. Default 0.1, so retries
    /// stay at or below 10 % of the requests.
    pub ratio: f64,
    /// The most tokens saved (how large a burst of retries may be). Default 10.
    pub max_tokens: f64,
    /// Tokens at start. Default 0: no retry before ten requests have been made.
    pub initial_tokens: f64,
}

impl RetryBudgetConfig {
    /// The defaults listed on each field.
    pub const DEFAULT: RetryBudgetConfig = RetryBudgetConfig {
        ratio: 0.1,
        max_tokens: 10.0,
        initial_tokens: 0.0,
    };
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig::DEFAULT
    }
}

/// Tokens are kept in thousandths so that the bucket is one atomic integer.
const UNIT: u64 = 1000;

fn milli(t: f64) -> u64 {
    if t.is_finite() && t > 0.0 {
        (t * UNIT as f64).round().min(u64::MAX as f64 / 2.0) as u64
    } else {
        0
    }
}

/// A token bucket shared by every request of a client.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    tokens: AtomicU64,
    deposit: u64,
    max: u64,
}

impl RetryBudget {
    pub(crate) fn new(cfg: RetryBudgetConfig) -> RetryBudget {
        let max = milli(cfg.max_tokens);
        RetryBudget {
            tokens: AtomicU64::new(milli(cfg.initial_tokens).min(max)),
            deposit: milli(cfg.ratio),
            max,
        }
    }

    /// A request was made: add its share.
    pub(crate) fn deposit(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(self.deposit).min(self.max))
            });
    }

    /// Takes one token for a retry; `false` if the budget is spent.
    pub(crate) fn withdraw(&self) -> bool {
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                t.checked_sub(UNIT)
            })
            .is_ok()
    }

    /// Tokens now (for observation).
    pub(crate) fn tokens(&self) -> f64 {
        self.tokens.load(Ordering::Relaxed) as f64 / UNIT as f64
    }
}

/// A small, lock-free pseudo-random source for jitter (splitmix64 over an atomic state,
/// seeded from the standard library's per-process random keys). Not for cryptography.
#[derive(Debug)]
pub(crate) struct Jitter {
    state: AtomicU64,
}

impl Jitter {
    pub(crate) fn new() -> Jitter {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Jitter {
            state: AtomicU64::new(h.finish()),
        }
    }

    fn next(&self) -> u64 {
        let s = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration uniformly drawn from `[d, d * 1.5)`.
    pub(crate) fn spread(&self, d: Duration) -> Duration {
        let half = d.as_nanos() / 2;
        if half == 0 {
            return d;
        }
        let extra = u128::from(self.next()) % half;
        d + Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stay_within_the_ratio() {
        let b = RetryBudget::new(RetryBudgetConfig::DEFAULT);
        let mut retries = 0;
        for _ in 0..1000 {
            b.deposit();
            if b.withdraw() {
                retries += 1;
            }
        }
        assert_eq!(retries, 100);
    }

    #[test]
    fn saved_tokens_are_capped() {
        let b = RetryBudget::new(RetryBudgetConfig {
            ratio: 1.0,
            max_tokens: 3.0,
            initial_tokens: 100.0,
        });
        assert_eq!(b.tokens(), 3.0);
        for _ in 0..50 {
            b.deposit();
        }
        assert!(b.withdraw() && b.withdraw() && b.withdraw());
        assert!(!b.withdraw());
    }

    #[test]
    fn jitter_stays_in_range() {
        let j = Jitter::new();
        let d = Duration::from_millis(100);
        for _ in 0..1000 {
            let s = j.spread(d);
            assert!(s >= d && s < d + d / 2, "{s:?}");
        }
        assert_eq!(j.spread(Duration::ZERO), Duration::ZERO);
    }
}
