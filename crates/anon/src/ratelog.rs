//! Rate-limited logging: at most one line per period for a recurring condition, with the
//! number of occurrences that were not logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds since the first call (a process-wide monotonic clock).
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Lets one log line through per `period`; counts the ones it holds back.
#[derive(Debug)]
pub(crate) struct RateLimit {
    period_ns: u64,
    /// When the last line went out, plus one (0 = never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    pub(crate) const fn new(period: Duration) -> RateLimit {
        RateLimit {
            period_ns: period.as_nanos() as u64,
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` if a line may go out now (`n` lines were held back since the last one);
    /// `None` if it must be dropped.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = now_ns().saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.period_ns {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Some(self.suppressed.swap(0, Ordering::Relaxed)),
            Err(_) => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// Logs at `level` through `limit`: `ratelog!(limit, Level::Warn, "...", args)`.
macro_rules! ratelog {
    ($limit:expr, $level:expr, $($arg:tt)+) => {
        if log::log_enabled!($level) {
            if let Some(held) = $limit.allow() {
                if held > 0 {
                    log::log!($level, "{} ({} similar messages suppressed)", format_args!($($arg)+), held);
                } else {
                    log::log!($level, $($arg)+);
                }
            }
        }
    };
}
pub(crate) use ratelog;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_rest_counted() {
        let r = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        assert_eq!(r.suppressed.load(Ordering::Relaxed), 2);
        let r = RateLimit::new(Duration::ZERO);
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), Some(0));
    }
}
