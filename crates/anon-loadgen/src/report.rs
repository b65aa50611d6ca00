//! What a run measured: outcome counts, latency summaries, the 100 ms time series, and
//! the verdict on whether the schedule was kept.

use crate::config::Config;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Width of one time-series bucket.
pub const BUCKET: Duration = Duration::from_millis(100);

/// How one request (one attempt) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer.
    Success,
    /// A 503 answer: the server said "try again".
    TryAgain,
    /// Any other status.
    OtherStatus,
    /// No complete answer within the timeout (sent or still queued in the generator).
    Timeout,
    /// Connection refused or reset, closed before the answer, or an unusable answer.
    Error,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::TryAgain,
        Outcome::OtherStatus,
        Outcome::Timeout,
        Outcome::Error,
    ];

    /// The outcome of a complete answer with this status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Success,
            503 => Outcome::TryAgain,
            _ => Outcome::OtherStatus,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why a request ended in [`Outcome::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Connection refused.
    Refused,
    /// Connection reset (or broken pipe, aborted).
    Reset,
    /// Orderly close before the answer was complete.
    Closed,
    /// An answer the reader could not use.
    Malformed,
    /// Any other I/O error (e.g. no local port left).
    Io,
}

/// Count per outcome; the sum equals the number of requests sent ([`Report::requests`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// 2xx answers.
    pub success: u64,
    /// 503 answers.
    pub try_again: u64,
    /// Other statuses.
    pub other_status: u64,
    /// No answer within the timeout.
    pub timeout: u64,
    /// Refused, reset, closed early, malformed.
    pub error: u64,
}

impl Counts {
    /// Sum over every outcome.
    pub fn total(&self) -> u64 {
        self.success + self.try_again + self.other_status + self.timeout + self.error
    }

    /// Requests that got no answer at all (timeouts and errors).
    pub fn no_answer(&self) -> u64 {
        self.timeout + self.error
    }

    pub(crate) fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Success => self.success += 1,
            Outcome::TryAgain => self.try_again += 1,
            Outcome::OtherStatus => self.other_status += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Error => self.error += 1,
        }
    }

    /// The count of one outcome.
    pub fn get(&self, o: Outcome) -> u64 {
        match o {
            Outcome::Success => self.success,
            Outcome::TryAgain => self.try_again,
            Outcome::OtherStatus => self.other_status,
            Outcome::Timeout => self.timeout,
            Outcome::Error => self.error,
        }
    }
}

/// Count per [`ErrorKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Refused connections.
    pub refused: u64,
    /// Resets.
    pub reset: u64,
    /// Early closes.
    pub closed: u64,
    /// Unusable answers.
    pub malformed: u64,
    /// Other I/O errors.
    pub io: u64,
}

impl ErrorCounts {
    pub(crate) fn add(&mut self, k: ErrorKind) {
        match k {
            ErrorKind::Refused => self.refused += 1,
            ErrorKind::Reset => self.reset += 1,
            ErrorKind::Closed => self.closed += 1,
            ErrorKind::Malformed => self.malformed += 1,
            ErrorKind::Io => self.io += 1,
        }
    }
}

/// A latency distribution in microseconds, summarised from an HDR histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Smallest, µs.
    pub min_us: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest, µs.
    pub max_us: u64,
}

impl Summary {
    /// Summarises `h` (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Latency (from the original intended send time) per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// 2xx answers.
    pub success: Summary,
    /// 503 answers: the rejection latency.
    pub try_again: Summary,
    /// Other statuses.
    pub other_status: Summary,
    /// Timeouts (about the timeout itself).
    pub timeout: Summary,
    /// Errors.
    pub error: Summary,
}

/// One 100 ms bucket of the time series, by intended send time unless said otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket, ms from the start of the schedule.
    pub t_ms: u64,
    /// Requests (attempts) whose intended send time falls in the bucket.
    pub sent: u64,
    /// Outcomes of those requests.
    pub outcomes: Counts,
    /// Of the successes, those answered within the SLO (all of them when no SLO is set).
    pub success_in_slo: u64,
    /// Median latency of the successes, µs (0 when none).
    pub p50_us: u64,
    /// 99th percentile latency of the successes, µs (0 when none).
    pub p99_us: u64,
    /// Successes within the SLO that COMPLETED in this bucket (goodput as it happened).
    pub completed_in_slo: u64,
}

/// What the requests to one target of the mix got ([`Report::paths`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStats {
    /// The request target.
    pub path: String,
    /// Its weight in the mix (1 without a mix).
    pub weight: u32,
    /// Attempts sent to it (retries included); equals `outcomes.total()`.
    pub requests: u64,
    /// Count per outcome (per attempt).
    pub outcomes: Counts,
    /// Of the successes, those answered within the SLO (all of them when no SLO is set).
    pub success_in_slo: u64,
    /// Latency of the 2xx answers, µs from the original intended send time.
    pub success: Summary,
    /// Latency of the 503 answers, µs from the original intended send time.
    pub try_again: Summary,
}

/// Did the generator send on schedule?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// True when at most `lag_fraction` of the requests left more than `lag_threshold`
    /// after their intended time.
    pub kept: bool,
    /// Fraction of requests that left late (a request never sent counts as late).
    pub late_fraction: f64,
    /// Fraction of requests the generator itself noticed late (its own loop fell behind).
    pub generator_late_fraction: f64,
    /// Plain-language reading, naming the cause when not kept.
    pub message: String,
}

/// How hard the generator itself worked during the schedule ([`Report::generator`]).
///
/// While requests are outstanding the engine polls without sleeping, so its thread's CPU
/// time is close to a whole core whatever the rate: it says nothing about headroom. The
/// busy share counts instead the loop's turns that did something (a request fell due or
/// left, an answer or a connection event arrived, a timeout sweep ran) and leaves out the
/// turns whose poll found nothing and the time asleep in a poll. Near 1, the generator
/// cannot keep up: it reads answers late, and every latency it stamps grows by its own
/// backlog (lateness in *sending* shows in [`Verdict::generator_late_fraction`], this also
/// catches lateness in *reading*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorLoad {
    /// Wall time measured: from the schedule's start to its end (or to the end of the run
    /// when that came first), seconds.
    pub window_s: f64,
    /// Share of the window the engine's loop spent working rather than polling with
    /// nothing to do, 0..=1 (of one core).
    pub busy_fraction: f64,
    /// The engine thread's CPU time (user + system, `/proc/thread-self/schedstat`) over
    /// the window ÷ the window, idle polling included; `None` when unreadable.
    pub cpu_fraction: Option<f64>,
}

/// Everything one run measured. Serialises to the JSON the binary prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The configuration that ran.
    pub config: Config,
    /// Wall time from the schedule's start to the last outcome, seconds.
    pub elapsed_s: f64,
    /// Requests the schedule produced (first attempts).
    pub scheduled: u64,
    /// Retries sent on top of them.
    pub retries: u64,
    /// All attempts: `scheduled + retries`; equals `outcomes.total()`.
    pub requests: u64,
    /// Count per outcome (per attempt).
    pub outcomes: Counts,
    /// Breakdown of [`Outcome::Error`].
    pub errors: ErrorCounts,
    /// Latency per outcome, µs from the original intended send time.
    pub latency: Latencies,
    /// Successes answered within the SLO (equals `outcomes.success` without an SLO).
    pub success_in_slo: u64,
    /// `success_in_slo` per second of schedule.
    pub goodput_rps: f64,
    /// Offered load actually scheduled, per second of schedule.
    pub offered_rps: f64,
    /// Send lag (actual send − intended time), µs, for the requests that were sent.
    pub send_lag: Summary,
    /// Requests that never left the generator (timed out in its queue).
    pub unsent: u64,
    /// Connections opened during the run (pool and reconnections).
    pub connects: u64,
    /// Whether the schedule was kept.
    pub verdict: Verdict,
    /// The 100 ms time series.
    pub series: Vec<Bucket>,
    /// Per request target, in the order of [`Config::paths`] (one entry without a mix).
    #[serde(default)]
    pub paths: Vec<PathStats>,
    /// The generator's own load during the schedule.
    #[serde(default)]
    pub generator: GeneratorLoad,
}

impl Report {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Parses what [`Report::to_json`] wrote.
    pub fn from_json(s: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// The figures of the requests to `path` (the first entry of that target).
    pub fn path(&self, path: &str) -> Option<&PathStats> {
        self.paths.iter().find(|p| p.path == path)
    }

    /// Index of the first bucket at or after `from_ms` from which every bucket up to
    /// `until_ms` (exclusive) has its successes' p99 within `slo_us` and at least one
    /// success; returns its start in ms, or `None` if the series never settles.
    pub fn settled_after(&self, from_ms: u64, until_ms: u64, slo_us: u64) -> Option<u64> {
        let window: Vec<&Bucket> = self
            .series
            .iter()
            .filter(|b| b.t_ms >= from_ms && b.t_ms < until_ms)
            .collect();
        let good = |b: &&Bucket| b.outcomes.success > 0 && b.p99_us <= slo_us;
        let mut start = None;
        for b in &window {
            if good(b) {
                start.get_or_insert(b.t_ms);
            } else {
                start = None;
            }
        }
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(t_ms: u64, success: u64, p99_us: u64) -> Bucket {
        Bucket {
            t_ms,
            outcomes: Counts {
                success,
                ..Counts::default()
            },
            p99_us,
            ..Bucket::default()
        }
    }

    fn report_with(series: Vec<Bucket>) -> Report {
        Report {
            config: Config::new("127.0.0.1:1".parse().unwrap(), "/"),
            elapsed_s: 0.0,
            scheduled: 0,
            retries: 0,
            requests: 0,
            outcomes: Counts::default(),
            errors: ErrorCounts::default(),
            latency: Latencies::default(),
            success_in_slo: 0,
            goodput_rps: 0.0,
            offered_rps: 0.0,
            send_lag: Summary::default(),
            unsent: 0,
            connects: 0,
            verdict: Verdict {
                kept: true,
                late_fraction: 0.0,
                generator_late_fraction: 0.0,
                message: String::new(),
            },
            series,
            paths: Vec::new(),
            generator: GeneratorLoad::default(),
        }
    }

    #[test]
    fn settled_after_finds_the_last_good_stretch() {
        let r = report_with(vec![
            bucket(0, 5, 100),
            bucket(100, 5, 900), // over the SLO
            bucket(200, 0, 0),   // no success: not settled
            bucket(300, 5, 100),
            bucket(400, 5, 200),
            bucket(500, 5, 5000), // outside the window
        ]);
        assert_eq!(r.settled_after(0, 500, 500), Some(300));
        assert_eq!(r.settled_after(0, 200, 500), None);
        assert_eq!(r.settled_after(300, 500, 500), Some(300));
        assert_eq!(r.settled_after(0, 600, 500), None);
    }

    #[test]
    fn counts_and_statuses() {
        let mut c = Counts::default();
        for o in Outcome::ALL {
            c.add(o);
        }
        assert_eq!((c.total(), c.no_answer()), (5, 2));
        assert_eq!(Outcome::of_status(204), Outcome::Success);
        assert_eq!(Outcome::of_status(503), Outcome::TryAgain);
        assert_eq!(Outcome::of_status(429), Outcome::OtherStatus);
    }
}
