//! Watching a server during a run: its resident set, and on `hello` its admission state
//! scraped from the admin listener's `/metrics` every 100 ms.

use crate::peers::Server;
use anon_loadgen::http::parse_response;
use anon_loadgen::{run_with as load_with, Config, Report as LoadReport};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// How often the watcher samples.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(100);
/// Longest one scrape may take (a tick whose scrape takes longer records nothing).
const SCRAPE_BUDGET: Duration = Duration::from_millis(80);
/// Largest `/metrics` answer read.
const MAX_METRICS_BYTES: usize = 4 << 20;

/// One scrape of `hello`'s `/metrics` during a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct LimitSample {
    /// When the scrape began, ms from the start of the schedule.
    pub(crate) t_ms: u64,
    /// `anon_admission_limit`, summed over the workers (requests); `None` when the
    /// server does not export it.
    pub(crate) limit: Option<u64>,
    /// `anon_admission_target_nanoseconds`, mean over the workers that export it, µs.
    pub(crate) target_us: Option<f64>,
    /// `anon_requests_in_flight` (summed over its samples).
    pub(crate) in_flight: Option<u64>,
    /// `anon_requests_rejected_total` by `reason` label (cumulative since the start).
    pub(crate) rejected: BTreeMap<String, u64>,
}

/// What the watcher saw during one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watched {
    /// Largest resident set of the server's process tree, KiB, sampled every 100 ms and
    /// at both ends of the run.
    pub(crate) peak_rss_kib: u64,
    /// The admission state every 100 ms (only the scrapes that succeeded).
    pub(crate) limit: Vec<LimitSample>,
    /// Growth of the kernel's ListenOverflows counter from the schedule's start (the
    /// generator's pool is open by then) to the end of the run: connections dropped
    /// because a listen queue was full (machine-wide).
    pub(crate) listen_overflows: u64,
}

impl Watched {
    /// Median of the limits scraped, if any.
    pub(crate) fn limit_p50(&self) -> Option<u64> {
        let mut v: Vec<u64> = self.limit.iter().filter_map(|s| s.limit).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(v[v.len() / 2])
    }
}

/// Runs `cfg` against `server` while a thread samples its RSS and, with `scrape` and an
/// admin listener, its `/metrics`; `at_start` is called with the schedule's start (as
/// `anon_loadgen::run_with` does).
pub(crate) fn watched_load(
    server: &Server,
    cfg: &Config,
    scrape: bool,
    at_start: impl FnOnce(Instant),
) -> Result<(LoadReport, Watched), String> {
    let stop = AtomicBool::new(false);
    let (tx, rx) = channel::<Instant>();
    let admin = if scrape { server.admin } else { None };
    std::thread::scope(|s| {
        let stop_ref = &stop;
        let watcher = s.spawn(move || watch(server, admin, rx, stop_ref));
        let r = load_with(cfg, move |t| {
            let _ = tx.send(t);
            at_start(t);
        });
        stop.store(true, Ordering::Relaxed);
        let w = watcher.join().unwrap_or_default();
        let r = r.map_err(|e| format!("{}: {e}", server.kind.name()))?;
        Ok((r, w))
    })
}

fn watch(
    server: &Server,
    admin: Option<SocketAddr>,
    started: Receiver<Instant>,
    stop: &AtomicBool,
) -> Watched {
    let mut w = Watched {
        peak_rss_kib: server.rss_kib(),
        ..Watched::default()
    };
    // The pool may take a while to open; no start = the run failed before its schedule.
    let Ok(start) = started.recv_timeout(Duration::from_secs(60)) else {
        return w;
    };
    let overflows = listen_overflows();
    let mut tick: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let at = start + WATCH_EVERY * tick;
        let now = Instant::now();
        if at > now {
            std::thread::sleep((at - now).min(Duration::from_millis(50)));
            continue;
        }
        w.peak_rss_kib = w.peak_rss_kib.max(server.rss_kib());
        if let Some(addr) = admin {
            if let Some(mut sample) = scrape_metrics(addr) {
                sample.t_ms = now.saturating_duration_since(start).as_millis() as u64;
                w.limit.push(sample);
            }
        }
        // Skip the ticks a slow sample overran, rather than bunching them.
        let elapsed = Instant::now().saturating_duration_since(start);
        tick = (tick + 1).max((elapsed.as_millis() / WATCH_EVERY.as_millis()) as u32);
    }
    w.peak_rss_kib = w.peak_rss_kib.max(server.rss_kib());
    w.listen_overflows = listen_overflows().saturating_sub(overflows);
    w
}

/// The kernel's `TcpExtListenOverflows` counter (what `nstat` reports), read from
/// `/proc/net/netstat`; 0 when unreadable.
pub(crate) fn listen_overflows() -> u64 {
    std::fs::read_to_string("/proc/net/netstat")
        .ok()
        .and_then(|s| netstat_field(&s, "TcpExt:", "ListenOverflows"))
        .unwrap_or(0)
}

/// A field of `/proc/net/netstat`: a header line `PREFIX name...` followed by a values
/// line `PREFIX value...`.
fn netstat_field(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let i = names.split_whitespace().position(|n| n == name);
        if let Some(i) = i {
            return values.split_whitespace().nth(i)?.parse().ok();
        }
    }
    None
}

/// `GET /metrics` on `addr` within [`SCRAPE_BUDGET`]; `None` when anything fails.
pub(crate) fn scrape_metrics(addr: SocketAddr) -> Option<LimitSample> {
    let deadline = Instant::now() + SCRAPE_BUDGET;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(50)).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(50))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: anon-bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut end = None;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())?;
        s.set_read_timeout(Some(left)).ok()?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_METRICS_BYTES {
                    return None;
                }
                if let Ok(Some(r)) = parse_response(&buf, MAX_METRICS_BYTES) {
                    end = Some(r.len);
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    if !(buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")) {
        return None;
    }
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let body = &buf[head..end.unwrap_or(buf.len()).max(head)];
    Some(parse_metrics(std::str::from_utf8(body).ok()?))
}

/// The admission figures in a Prometheus text exposition (`t_ms` left 0).
pub(crate) fn parse_metrics(text: &str) -> LimitSample {
    let mut out = LimitSample::default();
    let mut targets = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((lhs, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        if !v.is_finite() || v < 0.0 {
            continue;
        }
        let (name, labels) = match lhs.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
            None => (lhs, ""),
        };
        match name {
            "anon_admission_limit" => *out.limit.get_or_insert(0) += v as u64,
            "anon_admission_target_nanoseconds" => targets.push(v / 1000.0),
            "anon_requests_in_flight" => *out.in_flight.get_or_insert(0) += v as u64,
            "anon_requests_rejected_total" => {
                let reason = label(labels, "reason").unwrap_or("").to_string();
                *out.rejected.entry(reason).or_insert(0) += v as u64;
            }
            _ => {}
        }
    }
    if !targets.is_empty() {
        out.target_us = Some(targets.iter().sum::<f64>() / targets.len() as f64);
    }
    out
}

/// The value of label `key` in `a="x",b="y"` (no escapes expected in these labels).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP anon_admission_limit The concurrency limit in force.
# TYPE anon_admission_limit gauge
anon_admission_limit{worker=\"0\"} 12
anon_admission_limit{worker=\"1\"} 30
# TYPE anon_admission_target_nanoseconds gauge
anon_admission_target_nanoseconds{worker=\"0\"} 2000000
anon_admission_target_nanoseconds{worker=\"1\"} 4000000
anon_requests_rejected_total{reason=\"limit\"} 17
anon_requests_rejected_total{reason=\"ceiling\"} 0
anon_requests_rejected_total{reason=\"queue_delay\"} 3
anon_requests_in_flight 9
anon_admission_limit_other 99
anon_connections_open{listener=\"0\"} 256
garbage line
";

    #[test]
    fn parses_the_admission_metrics() {
        let s = parse_metrics(METRICS);
        assert_eq!(s.limit, Some(42));
        assert_eq!(s.target_us, Some(3000.0));
        assert_eq!(s.in_flight, Some(9));
        assert_eq!(s.rejected.get("limit"), Some(&17));
        assert_eq!(s.rejected.get("ceiling"), Some(&0));
        assert_eq!(s.rejected.get("queue_delay"), Some(&3));
        assert_eq!(s.rejected.len(), 3);
    }

    #[test]
    fn missing_metrics_stay_none() {
        let s = parse_metrics("anon_requests_in_flight 2\n");
        assert_eq!((s.limit, s.target_us, s.in_flight), (None, None, Some(2)));
        assert!(s.rejected.is_empty());
    }

    #[test]
    fn scrapes_over_http_and_fails_softly() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let body = "anon_admission_limit{worker=\"0\"} 5\n";
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            // Keep the connection open: the scrape must stop at Content-Length.
            std::thread::sleep(Duration::from_millis(300));
        });
        let s = scrape_metrics(addr).expect("scrape");
        assert_eq!(s.limit, Some(5));
        server.join().unwrap();
        // Nobody listening any more: no sample, no error.
        assert!(scrape_metrics(addr).is_none());
    }

    #[test]
    fn netstat_fields() {
        let t = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                 TcpExt: 0 143 144\n\
                 IpExt: InNoRoutes\n\
                 IpExt: 7\n";
        assert_eq!(netstat_field(t, "TcpExt:", "ListenOverflows"), Some(143));
        assert_eq!(netstat_field(t, "IpExt:", "InNoRoutes"), Some(7));
        assert_eq!(netstat_field(t, "TcpExt:", "Nope"), None);
        // This machine's counter reads (Linux).
        assert!(std::fs::read_to_string("/proc/net/netstat")
            .ok()
            .and_then(|s| netstat_field(&s, "TcpExt:", "ListenOverflows"))
            .is_some());
    }

    #[test]
    fn limit_median() {
        let w = Watched {
            peak_rss_kib: 0,
            listen_overflows: 0,
            limit: [3, 1, 2, 9]
                .iter()
                .map(|&l| LimitSample {
                    limit: Some(l),
                    ..LimitSample::default()
                })
                .collect(),
        };
        assert_eq!(w.limit_p50(), Some(3));
        assert_eq!(Watched::default().limit_p50(), None);
    }
}
