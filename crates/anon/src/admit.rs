//! Per-request admission for HTTP: `anon_queue::Admission` (hard ceiling, adaptive
//! concurrency limit, CoDel queue-delay shedding) behind `anon_http`'s admission hook, one
//! per worker.
//!
//! An admitted request's fiber is marked with `anon_fiber::begin_request`, so its worker
//! resumes it after unadmitted work and oldest admission first, and measures its CPU time
//! and its queueing delay; `release` hands both to the adaptive limit. The request's kind
//! (for the cheap-request rule) is its path without the query.
//!
//! Why per worker: fibers never migrate, so a request is served by the worker that
//! accepted its connection; the in-flight limit is split evenly over the workers like
//! anon-fiber splits its fiber bound, and each worker's queue delay is its own.
//!
//! Why a lag probe: the driver reports a request's arrival as the moment its bytes were
//! read, which happens on the request's fiber, i.e. after it waited in the worker's run
//! queue. That wait is the queue delay CoDel must see. Each worker therefore runs a probe
//! fiber that every [`PROBE_PERIOD`] yields once and measures how long the run queue kept
//! it waiting; admission treats a request as having arrived that much earlier.

use crate::server::Shared;
use anon_http::server::Admission as HttpAdmission;
use anon_http::Again;
use anon_queue::{
    kind_key, AdaptiveConfig, Admission, AdmissionConfig, CodelConfig, Permit, Reason, Usage,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often each worker's probe measures its run-queue delay.
pub(crate) const PROBE_PERIOD: Duration = Duration::from_millis(10);
/// A measured run-queue delay below this counts as "the queue was empty".
const EMPTY_BELOW: Duration = Duration::from_millis(1);

/// One worker's admission state.
pub(crate) struct WorkerAdmission {
    pub(crate) adm: Admission,
    /// The last run-queue delay the probe measured, in ns.
    pub(crate) lag_ns: AtomicU64,
}

/// The admission controllers of all workers (shared by every HTTP listener).
pub(crate) struct Admissions {
    pub(crate) workers: Vec<WorkerAdmission>,
}

impl Admissions {
    /// `max_in_flight` for the whole server (split over `workers`, at least 1 each);
    /// `queue_delay`: the CoDel target, `None` for no queue-delay shedding; `adaptive`:
    /// each worker's adaptive limit, `None` for the ceiling alone.
    pub(crate) fn new(
        workers: usize,
        max_in_flight: usize,
        queue_delay: Option<Duration>,
        adaptive: Option<AdaptiveConfig>,
    ) -> Admissions {
        let per_worker = max_in_flight.div_ceil(workers.max(1)).max(1);
        let codel = queue_delay.map(|target| CodelConfig {
            target,
            interval: (target * 20).max(Duration::from_millis(100)),
            adaptive_lifo: false,
        });
        let cfg = AdmissionConfig {
            max_in_flight: per_worker,
            codel,
            adaptive,
            retry_after: Duration::from_secs(1),
        };
        Admissions {
            workers: (0..workers.max(1))
                .map(|_| WorkerAdmission {
                    adm: Admission::new(cfg),
                    lag_ns: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn here(&self) -> &WorkerAdmission {
        let i = anon_fiber::worker_index().unwrap_or(0);
        &self.workers[i % self.workers.len()]
    }

    /// Requests admitted and in flight now, over all workers.
    pub(crate) fn in_flight(&self) -> usize {
        self.workers.iter().map(|w| w.adm.in_flight()).sum()
    }

    /// Rejections for `reason`, over all workers.
    pub(crate) fn rejected(&self, reason: Reason) -> u64 {
        self.workers
            .iter()
            .map(|w| w.adm.stats().rejected_for(reason))
            .sum()
    }
}

/// The probe fiber of worker `index`: measures the run-queue delay until the server stops.
pub(crate) fn probe(shared: Arc<Shared>, index: usize) {
    let Some(w) = shared.admissions.workers.get(index) else {
        return;
    };
    while !shared.is_stopping() {
        anon_fiber::sleep(PROBE_PERIOD);
        let t0 = Instant::now();
        anon_fiber::yield_now();
        let now = Instant::now();
        let lag = now.saturating_duration_since(t0);
        w.lag_ns.store(
            u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if lag < EMPTY_BELOW {
            w.adm.note_empty(now);
        }
    }
}

impl WorkerAdmission {
    /// What admission is asked about `head`: its kind (the path without the query), when
    /// it started waiting (its arrival, or earlier by the run-queue delay the probe
    /// measured), and now.
    fn ask(&self, head: &anon_http::Request<'_>, arrived: Instant) -> (u64, Instant, Instant) {
        let now = Instant::now();
        let lag = Duration::from_nanos(self.lag_ns.load(Ordering::Relaxed));
        let queued_since = now.checked_sub(lag).map_or(arrived, |t| t.min(arrived));
        let target = head.target();
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        (kind_key(path.as_bytes()), queued_since, now)
    }
}

/// Admitted requests waiting for this worker's CPU (unknown, so "many", off a worker).
fn waiting() -> usize {
    anon_fiber::admitted_waiting().unwrap_or(usize::MAX)
}

/// `anon_http`'s admission hook over [`Admissions`].
#[derive(Clone)]
pub(crate) struct SharedAdmission(pub(crate) Arc<Admissions>);

/// An admitted request: its slot, and whether its fiber's request clock runs.
pub(crate) struct HttpPermit<'a> {
    permit: Option<Permit<'a>>,
    clocked: bool,
}

impl Drop for HttpPermit<'_> {
    fn drop(&mut self) {
        // Not given back through `release` (an unwinding fiber): stop the clock so the
        // fiber is not scheduled as an admitted request any more; no sample.
        if self.clocked {
            let _ = anon_fiber::end_request();
        }
    }
}

impl HttpAdmission for SharedAdmission {
    type Permit<'a> = HttpPermit<'a>;

    fn admit<'a>(
        &'a self,
        head: &anon_http::Request<'_>,
        arrived: Instant,
    ) -> Result<HttpPermit<'a>, Again> {
        let w = self.0.here();
        let (kind, queued_since, now) = w.ask(head, arrived);
        let permit = w
            .adm
            .admit_kind(kind, queued_since, now, waiting())
            .map_err(|r| Again::after(r.retry_after))?;
        Ok(HttpPermit {
            permit: Some(permit),
            clocked: anon_fiber::begin_request(now),
        })
    }

    fn refuse_early(&self, head: &anon_http::Request<'_>, arrived: Instant) -> Option<Again> {
        let w = self.0.here();
        // Only while the limits are reached: otherwise the fiber admits it anyway.
        if !w.adm.is_saturated() {
            return None;
        }
        let (kind, queued_since, now) = w.ask(head, arrived);
        w.adm
            .check_kind(kind, queued_since, now, waiting())
            .err()
            .map(|r| Again::after(r.retry_after))
    }

    fn release(&self, mut permit: HttpPermit<'_>) {
        let Some(p) = permit.permit.take() else {
            return;
        };
        if !std::mem::take(&mut permit.clocked) {
            return;
        }
        let now = Instant::now();
        if let Some(u) = anon_fiber::end_request_at(now) {
            p.finish(
                now,
                Usage {
                    service: u.cpu,
                    queued: u.queued,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_split_over_workers_and_never_zero() {
        let a = Admissions::new(4, 10, None, None);
        assert_eq!(a.workers.len(), 4);
        assert!(a.workers.iter().all(|w| w.adm.limit() == 3));
        let a = Admissions::new(2, 1, Some(Duration::from_millis(5)), None);
        assert!(a.workers.iter().all(|w| w.adm.limit() == 1));
    }

    #[test]
    fn a_measured_lag_makes_requests_older() {
        let a = Arc::new(Admissions::new(1, 8, Some(Duration::from_millis(5)), None));
        let hook = SharedAdmission(Arc::clone(&a));
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut slots = [anon_http::HeaderSlot::EMPTY; 4];
        let anon_http::Status::Complete(req) =
            anon_http::parse_request(raw, &anon_http::Config::default(), &mut slots).unwrap()
        else {
            panic!("complete head expected");
        };
        // No lag: admitted.
        let p = hook.admit(&req, Instant::now()).unwrap();
        hook.release(p);
        // A run queue 500 ms deep: older than even CoDel's interval allows.
        a.workers[0].lag_ns.store(500_000_000, Ordering::Relaxed);
        assert!(hook.admit(&req, Instant::now()).is_err());
        assert_eq!(a.rejected(Reason::QueueDelay), 1);
        assert_eq!(a.in_flight(), 0);
    }
}
