//! Counters, their Prometheus text rendering, and the admin listener that serves them.

use crate::server::Shared;
use anon_queue::{HistogramSnapshot, Reason};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A counter bumped by several workers (relaxed; alone on its cache line).
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a connection was refused at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Busy mode: the open-connection bound.
    Connections = 0,
    /// Busy mode: the live-fiber bound.
    Fibers = 1,
    /// Out of file descriptors (`EMFILE`/`ENFILE`).
    Descriptors = 2,
}

impl Refusal {
    pub(crate) const ALL: [Refusal; 3] =
        [Refusal::Connections, Refusal::Fibers, Refusal::Descriptors];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Connections => "connections",
            Refusal::Fibers => "fibers",
            Refusal::Descriptors => "descriptors",
        }
    }
}

/// One listener's accept-path counters.
#[derive(Debug, Default)]
pub(crate) struct ListenerStats {
    pub(crate) accepted: Counter,
    pub(crate) refused: [Counter; 3],
}

/// A Prometheus text-format writer (exposition format 0.0.4): each metric's `# HELP` and
/// `# TYPE` lines are written once, before its first sample.
#[derive(Debug, Default)]
pub struct Prom {
    out: String,
    seen: HashSet<&'static str>,
}

impl Prom {
    fn header(&mut self, name: &'static str, help: &str, kind: &str) {
        if self.seen.insert(name) {
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
        }
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
    }

    /// A counter sample.
    pub fn counter(&mut self, name: &'static str, help: &str, labels: &str, value: u64) {
        self.header(name, help, "counter");
        self.sample(name, labels, value);
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &'static str, help: &str, labels: &str, value: u64) {
        self.header(name, help, "gauge");
        self.sample(name, labels, value);
    }

    /// A histogram of durations in seconds from anon-queue's log2 nanosecond buckets
    /// (`le` = each bucket's upper edge).
    pub fn histogram(&mut self, name: &'static str, help: &str, h: &HistogramSnapshot) {
        self.header(name, help, "histogram");
        let mut cumulative = 0u64;
        let last = h.buckets.iter().rposition(|&n| n > 0).unwrap_or(0);
        for (i, n) in h.buckets.iter().enumerate().take(last + 1) {
            cumulative += n;
            let le = 2f64.powi(i as i32 + 1) / 1e9;
            self.sample(
                &format!("{name}_bucket"),
                &format!("le=\"{le:e}\""),
                cumulative,
            );
        }
        self.sample(&format!("{name}_bucket"), "le=\"+Inf\"", cumulative);
        // The sum is estimated from the bucket midpoints (the histogram keeps no sum).
        let sum: f64 = h
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &n)| n as f64 * 1.5 * 2f64.powi(i as i32) / 1e9)
            .sum();
        self.sample(&format!("{name}_sum"), "", sum);
        self.sample(&format!("{name}_count"), "", cumulative);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Renders every metric of the server.
pub(crate) fn render(shared: &Shared) -> String {
    let mut p = Prom::default();
    let listeners = shared.listeners();
    for l in listeners.iter() {
        let labels = format!(
            "listener=\"{}\",protocol=\"{}\"",
            l.local,
            l.engine.protocol()
        );
        p.counter(
            "anon_connections_accepted_total",
            "Connections accepted.",
            &labels,
            l.stats.accepted.get(),
        );
        for r in Refusal::ALL {
            p.counter(
                "anon_connections_refused_total",
                "Connections accepted and answered \"try again\" at once, by reason.",
                &format!("{labels},reason=\"{}\"", r.label()),
                l.stats.refused[r as usize].get(),
            );
        }
        p.gauge(
            "anon_connections_open",
            "Connections open now.",
            &labels,
            l.engine.open(),
        );
        l.engine.metrics(&mut p, &labels);
    }
    let adm = &shared.admissions;
    for reason in Reason::ALL {
        p.counter(
            "anon_requests_rejected_total",
            "Requests refused by admission (answered 503 before the handler), by reason: \
             limit (adaptive), ceiling (max_in_flight), queue_delay.",
            &format!("reason=\"{}\"", reason.label()),
            adm.rejected(reason),
        );
    }
    for (i, w) in adm.workers.iter().enumerate() {
        p.gauge(
            "anon_admission_limit",
            "The concurrency limit in force (adaptive, or the ceiling), per worker.",
            &format!("worker=\"{i}\""),
            w.adm.limit() as u64,
        );
        if let Some(t) = w.adm.target() {
            p.gauge(
                "anon_admission_target_nanoseconds",
                "The adaptive limit's queueing-delay target, per worker.",
                &format!("worker=\"{i}\""),
                u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
            );
        }
    }
    p.gauge(
        "anon_requests_in_flight",
        "Requests admitted and not finished.",
        "",
        adm.in_flight() as u64,
    );
    for (i, w) in adm.workers.iter().enumerate() {
        p.gauge(
            "anon_worker_run_queue_delay_nanoseconds",
            "The last run-queue delay the worker's probe measured.",
            &format!("worker=\"{i}\""),
            w.lag_ns.load(Ordering::Relaxed),
        );
    }
    let mut sojourn = HistogramSnapshot {
        buckets: [0; anon_queue::BUCKETS],
    };
    for w in &adm.workers {
        let s = w.adm.stats().sojourn;
        for (a, b) in sojourn.buckets.iter_mut().zip(s.buckets) {
            *a += b;
        }
    }
    p.histogram(
        "anon_request_queue_delay_seconds",
        "Queue delay of admitted requests (run-queue delay included).",
        &sojourn,
    );
    p.gauge(
        "anon_fibers_live",
        "Fibers alive now.",
        "",
        shared.handle().map_or(0, |h| h.live_fibers()) as u64,
    );
    p.gauge(
        "anon_fibers_max",
        "The live-fiber bound.",
        "",
        shared.max_fibers as u64,
    );
    p.gauge(
        "anon_busy",
        "1 while the accept path is in busy mode.",
        "",
        u64::from(shared.is_busy()),
    );
    p.gauge(
        "anon_draining",
        "1 once the server drains.",
        "",
        u64::from(shared.is_draining()),
    );
    p.finish()
}

/// The fiber dump as text: one line per fiber.
pub(crate) fn render_fibers(shared: &Shared) -> String {
    let mut out = String::new();
    let Some(h) = shared.handle() else {
        return out;
    };
    for f in h.dump() {
        let _ = writeln!(
            out,
            "{} worker={} state={:?} waiting_on={:?} since={:?} name={}",
            f.id,
            f.worker,
            f.state,
            f.waiting_on,
            f.since,
            f.name.as_deref().unwrap_or("-")
        );
    }
    out
}

/// The admin listener's thread: `GET /metrics` (Prometheus text) and `GET /fibers` (the
/// fiber dump), one connection at a time, each closed after its reply. Runs on a thread
/// of its own so that it answers while the workers are overloaded.
pub(crate) fn admin_loop(shared: Arc<Shared>, listener: anon_fiber::net::TcpListener) {
    use anon_http::server::{Body, Server, ServerConfig};
    use http::{header, Request, Response, StatusCode};
    use std::time::Duration;

    let sh = Arc::clone(&shared);
    let server = Arc::new(
        Server::from_fn(move |req: Request<Body<'_>>| {
            let (body, kind) = match req.uri().path() {
                "/metrics" => (render(&sh), "text/plain; version=0.0.4"),
                "/fibers" => (render_fibers(&sh), "text/plain"),
                _ => return Err(StatusCode::NOT_FOUND.into()),
            };
            Ok(Response::builder()
                .header(header::CONTENT_TYPE, kind)
                .header(header::CONNECTION, "close")
                .body(body)
                .expect("static headers are valid"))
        })
        .with_config(ServerConfig {
            head_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            linger: Duration::from_millis(100),
            ..ServerConfig::DEFAULT
        }),
    );
    let _ = listener.set_accept_timeout(Some(Duration::from_millis(100)));
    while !shared.is_stopping() {
        match server.accept_loop(&listener) {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => {
                log::error!("admin listener failed: {e}");
                return;
            }
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_type_once_per_metric() {
        let mut p = Prom::default();
        p.counter("a_total", "A.", "x=\"1\"", 1);
        p.counter("a_total", "A.", "x=\"2\"", 2);
        p.gauge("b", "B.", "", 7);
        let s = p.finish();
        assert_eq!(
            s,
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\n\
             # HELP b B.\n# TYPE b gauge\nb 7\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf() {
        let h = anon_queue::Histogram::new();
        h.record(std::time::Duration::from_nanos(3));
        h.record(std::time::Duration::from_nanos(5));
        let mut p = Prom::default();
        p.histogram("d_seconds", "D.", &h.snapshot());
        let s = p.finish();
        assert!(s.contains("d_seconds_bucket{le=\"4e-9\"} 1\n"), "{s}");
        assert!(s.contains("d_seconds_bucket{le=\"8e-9\"} 2\n"), "{s}");
        assert!(s.contains("d_seconds_bucket{le=\"+Inf\"} 2\n"), "{s}");
        assert!(s.contains("d_seconds_count 2\n"), "{s}");
    }
}
