//! `overload`: what happens past capacity, measured open-loop with `anon-loadgen`.
//!
//! Method (`/work/shared/NOTES.md`): a handler with a fixed CPU service time
//! (`GET /work?us=N`, N = 1000 and 100), 1 server worker pinned to CPU 0, the generator
//! (this process) pinned to CPU 1, 256 keep-alive connections, constant arrivals, latency
//! from the intended send time, SLO = 10 × service time. Per contender:
//! - capacity C = the highest probed rate with ≥ 99.9 % successes, p99 ≤ SLO and the
//!   schedule kept;
//! - a sweep at 0.5, 1, 2, 4, 10 × C: goodput (successes within the SLO per second),
//!   p50/p99 of successes, rejection (503) latency, requests with no answer (timeouts,
//!   resets, refusals), kernel ListenOverflows (`nstat`), server RSS;
//! - a step from 0.8 C to 1.4 C and to 4 C: how long until every 100 ms bucket is back
//!   within the SLO;
//! - a 2 s stall (SIGSTOP/SIGCONT) at 0.8 C with naive clients (1 s timeout, up to 3
//!   immediate retries): how long until back within the SLO.
//!
//! Contenders, same run: Anon's `hello` with `--max-inflight K`, hyper unbounded, hyper
//! behind tower `LoadShed` + `ConcurrencyLimit(K)`. Charts go to `docs/bench/` (full runs)
//! or `target/bench/charts/` (`--quick`).

use crate::peers::{
    build, check_get, clk_tck, ensure_tools, loadavg, machine, pin_self, raise_priority, Kind,
    Server, LOAD_CPU, SERVER_CPU,
};
use crate::report::{workspace_root, Report, Row};
use anon_loadgen::{run as load, run_with as load_with, Bucket, Config, Phase};
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Largest fraction of requests the generator itself may notice more than 1 ms late for a
/// point to count. On the shared machine other work still gets about 1 % of the CPU in
/// slices of milliseconds, even at autogroup nice -20; latency counts from the intended
/// time anyway, so such lateness only adds to the measured latency. Beyond this the
/// offered load itself would be wrong.
const GENERATOR_LATE_OK: f64 = 0.05;

/// Load factors of the sweep (× C).
const SWEEP: [f64; 5] = [0.5, 1.0, 2.0, 4.0, 10.0];
/// Calibration probes, as fractions of the ideal rate 1 / service time, tried downwards.
const PROBES: [f64; 10] = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.35, 0.2, 0.1];

#[derive(Debug, Clone)]
struct Args {
    quick: bool,
    services_us: Vec<u64>,
    max_inflight: usize,
    connections: usize,
    point: Duration,
    probe: Duration,
    step_phase: Duration,
    stall_run: Duration,
    timeout: Duration,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        services_us: vec![1000, 100],
        max_inflight: 8,
        connections: 256,
        point: Duration::from_secs(3),
        probe: Duration::from_millis(1500),
        step_phase: Duration::from_secs(3),
        stall_run: Duration::from_secs(8),
        timeout: Duration::from_secs(2),
    };
    let mut i = 0;
    while i < args.len() {
        let val = || {
            args.get(i + 1)
                .ok_or_else(|| format!("{} needs a value", args[i]))
        };
        match args[i].as_str() {
            "--quick" => {
                a.quick = true;
                a.services_us = vec![1000];
                a.point = Duration::from_millis(1500);
                a.probe = Duration::from_secs(1);
                a.step_phase = Duration::from_millis(1500);
            }
            "--service-us" => {
                a.services_us = val()?
                    .split(',')
                    .map(|v| v.parse().map_err(|_| format!("bad service time {v:?}")))
                    .collect::<Result<_, _>>()?;
                i += 1;
            }
            "--max-inflight" => {
                a.max_inflight = val()?.parse().map_err(|_| "bad --max-inflight")?;
                i += 1;
            }
            "--connections" => {
                a.connections = val()?.parse().map_err(|_| "bad --connections")?;
                i += 1;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; use --quick, --service-us 1000,100, \
                     --max-inflight K, --connections N"
                ))
            }
        }
        i += 1;
    }
    if a.services_us.is_empty() || a.services_us.iter().any(|&u| !(10..=100_000).contains(&u)) {
        return Err("service times must be 10..=100000 µs".into());
    }
    if a.max_inflight == 0 || a.max_inflight > 10_000 || a.connections == 0 || a.connections > 5000
    {
        return Err("--max-inflight must be 1..=10000 and --connections 1..=5000".into());
    }
    Ok(a)
}

/// One measured load point.
#[derive(Debug, Clone, Serialize)]
struct Point {
    contender: String,
    service_us: u64,
    capacity: f64,
    factor: f64,
    offered_rps: f64,
    goodput_rps: f64,
    goodput_over_c: f64,
    success: u64,
    try_again: u64,
    other_status: u64,
    no_answer: u64,
    requests: u64,
    p50_us: u64,
    p99_us: u64,
    reject_p50_us: u64,
    reject_p99_us: u64,
    listen_overflows: u64,
    rss_kib: u64,
    /// Server CPU time (user+sys) over the run ÷ successes, µs: the real cost of a
    /// served request (a 1000 µs handler should show about 1000).
    cpu_us_per_success: f64,
    schedule_kept: bool,
    generator_on_time: bool,
    generator_late_pct: f64,
    verdict: String,
}

/// A time-series scenario (step or stall).
#[derive(Debug, Clone, Serialize)]
struct Scenario {
    contender: String,
    service_us: u64,
    name: String,
    /// When the event (step, SIGCONT) happened, ms from the start.
    event_ms: u64,
    /// ms after the event until every later bucket was within the SLO; None = never.
    settle_ms: Option<u64>,
    no_answer: u64,
    retries: u64,
    requests: u64,
    schedule_kept: bool,
    series: Vec<Bucket>,
}

/// Kernel counter of connections dropped because a listen queue was full.
fn listen_overflows() -> u64 {
    Command::new("nstat")
        .args(["-az", "TcpExtListenOverflows"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.starts_with("TcpExtListenOverflows"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn config(server: &Server, a: &Args, us: u64, phases: Vec<Phase>) -> Config {
    let mut c = Config::new(server.addr, &format!("/work?us={us}"));
    c.phases = phases;
    c.connections = a.connections;
    c.timeout = a.timeout;
    c.slo = Some(Duration::from_micros(10 * us));
    c
}

fn pause() {
    // Let a server drain what the previous run left in its sockets.
    std::thread::sleep(Duration::from_millis(300));
}

fn phase(rate: f64, d: Duration) -> Phase {
    Phase { rate, duration: d }
}

/// Highest probed rate meeting the capacity definition.
fn calibrate(server: &Server, a: &Args, us: u64) -> Result<(f64, bool), String> {
    let ideal = 1e6 / us as f64;
    for f in PROBES {
        let rate = (ideal * f).round();
        // Each rate gets two tries (a stretch of other work on the shared machine can
        // sink one), three when the generator itself fell behind.
        for attempt in 0..3 {
            pause();
            let r = load(&config(server, a, us, vec![phase(rate, a.probe)]))
                .map_err(|e| format!("{}: {e}", server.kind.name()))?;
            let ok_frac = r.outcomes.success as f64 / r.requests.max(1) as f64;
            // A pool held busy by a slow server is the server's doing and shows in the
            // latency; only the generator's own lateness invalidates a probe.
            let on_time = r.verdict.generator_late_fraction <= GENERATOR_LATE_OK;
            let pass = ok_frac >= 0.999 && r.latency.success.p99_us <= 10 * us && on_time;
            eprintln!(
                "  calibrate {} {us} µs @ {rate}/s: success {:.2} %, p99 {} µs, generator on \
                 time {on_time} -> {}",
                server.kind.name(),
                ok_frac * 100.0,
                r.latency.success.p99_us,
                if pass { "pass" } else { "fail" }
            );
            if pass {
                return Ok((rate, true));
            }
            if attempt == 2 || (on_time && attempt == 1) {
                break;
            }
        }
    }
    Ok(((ideal * PROBES[PROBES.len() - 1]).round(), false))
}

fn measure(server: &Server, a: &Args, us: u64, c: f64, factor: f64) -> Result<Point, String> {
    pause();
    let before = listen_overflows();
    let cpu_before = server.cpu_ticks();
    let r = load(&config(server, a, us, vec![phase(c * factor, a.point)]))
        .map_err(|e| format!("{}: {e}", server.kind.name()))?;
    let overflows = listen_overflows().saturating_sub(before);
    let cpu_us = server.cpu_ticks().saturating_sub(cpu_before) as f64 / clk_tck() * 1e6;
    let p = Point {
        contender: server.kind.name(),
        service_us: us,
        capacity: c,
        factor,
        offered_rps: r.offered_rps,
        goodput_rps: r.goodput_rps,
        goodput_over_c: r.goodput_rps / c,
        success: r.outcomes.success,
        try_again: r.outcomes.try_again,
        other_status: r.outcomes.other_status,
        no_answer: r.outcomes.no_answer(),
        requests: r.requests,
        p50_us: r.latency.success.p50_us,
        p99_us: r.latency.success.p99_us,
        reject_p50_us: r.latency.try_again.p50_us,
        reject_p99_us: r.latency.try_again.p99_us,
        listen_overflows: overflows,
        rss_kib: server.rss_kib(),
        cpu_us_per_success: cpu_us / r.outcomes.success.max(1) as f64,
        schedule_kept: r.verdict.kept,
        generator_on_time: r.verdict.generator_late_fraction <= GENERATOR_LATE_OK,
        generator_late_pct: r.verdict.generator_late_fraction * 100.0,
        verdict: r.verdict.message.clone(),
    };
    eprintln!(
        "  {} {us} µs {factor}×C: goodput {:.2} C, p99 {} µs, 503 {} (p99 {} µs), no answer {}, \
         overflows {overflows}, RSS {} KiB, sent on time {}, generator on time {}",
        p.contender,
        p.goodput_over_c,
        p.p99_us,
        p.try_again,
        p.reject_p99_us,
        p.no_answer,
        p.rss_kib,
        p.schedule_kept,
        p.generator_on_time
    );
    Ok(p)
}

fn step(server: &Server, a: &Args, us: u64, c: f64, to: f64) -> Result<Scenario, String> {
    pause();
    let cfg = config(
        server,
        a,
        us,
        vec![phase(0.8 * c, a.step_phase), phase(to * c, a.step_phase)],
    );
    let r = load(&cfg).map_err(|e| format!("{}: {e}", server.kind.name()))?;
    let event = a.step_phase.as_millis() as u64;
    let end = 2 * event;
    let settle = r.settled_after(event, end, 10 * us).map(|t| t - event);
    eprintln!(
        "  {} {us} µs step 0.8→{to}×C: back within SLO after {}",
        server.kind.name(),
        settle.map_or("never".into(), |s| format!("{s} ms"))
    );
    Ok(Scenario {
        contender: server.kind.name(),
        service_us: us,
        name: format!("step 0.8→{to}×C"),
        event_ms: event,
        settle_ms: settle,
        no_answer: r.outcomes.no_answer(),
        retries: r.retries,
        requests: r.requests,
        schedule_kept: r.verdict.kept,
        series: r.series,
    })
}

fn stall(server: &Server, a: &Args, us: u64, c: f64) -> Result<Scenario, String> {
    pause();
    let mut cfg = config(server, a, us, vec![phase(0.8 * c, a.stall_run)]);
    cfg.retries = 3;
    cfg.timeout = Duration::from_secs(1);
    let (stop_at, stall_for) = (Duration::from_secs(2), Duration::from_secs(2));
    let (tx, rx) = std::sync::mpsc::channel::<std::time::Instant>();
    let r = std::thread::scope(|s| {
        let staller = s.spawn(move || {
            // Time the stall from the schedule's start (the pool may take a while to open).
            let start = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "the run never started".to_string())?;
            std::thread::sleep(
                (start + stop_at).saturating_duration_since(std::time::Instant::now()),
            );
            server.signal("STOP")?;
            std::thread::sleep(stall_for);
            server.signal("CONT")
        });
        let r = load_with(&cfg, move |t| {
            let _ = tx.send(t);
        });
        let stalled = staller
            .join()
            .unwrap_or_else(|_| Err("staller panicked".into()));
        match (r, stalled) {
            (Err(e), _) => Err(format!("{}: {e}", server.kind.name())),
            (Ok(_), Err(e)) => Err(format!("{}: stall: {e}", server.kind.name())),
            (Ok(r), Ok(())) => Ok(r),
        }
    })?;
    let event = (stop_at + stall_for).as_millis() as u64;
    let settle = r
        .settled_after(event, a.stall_run.as_millis() as u64, 10 * us)
        .map(|t| t - event);
    eprintln!(
        "  {} {us} µs stall 2 s: back within SLO {} after SIGCONT; retries {}, no answer {}",
        server.kind.name(),
        settle.map_or("never".into(), |s| format!("{s} ms")),
        r.retries,
        r.outcomes.no_answer()
    );
    Ok(Scenario {
        contender: server.kind.name(),
        service_us: us,
        name: "stall 2 s, naive retries".into(),
        event_ms: event,
        settle_ms: settle,
        no_answer: r.outcomes.no_answer(),
        retries: r.retries,
        requests: r.requests,
        schedule_kept: r.verdict.kept,
        series: r.series,
    })
}

/// Entry point of `cargo xtask bench overload [--quick] [--service-us 1000,100]
/// [--max-inflight K] [--connections N]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let a = parse_args(args)?;
    ensure_tools(&[("taskset", "util-linux"), ("nstat", "iproute2")])?;
    let bins = build(true)?;
    let _priority = raise_priority();
    pin_self(LOAD_CPU)?;
    let k = a.max_inflight;
    let mut report = Report::new("overload");
    report.notes.push(format!("machine: {}", machine()));
    report.notes.push(format!(
        "GET /work?us=N (CPU spin), 1 server worker pinned to CPU {SERVER_CPU}, anon-loadgen \
         (open loop, constant arrivals, in this process) pinned to CPU {LOAD_CPU}, autogroup nice -20 while measuring, \
         {} keep-alive connections, \
         timeout {:?}, SLO = 10 × service time; sweep points {:?} each, calibration probes {:?}",
        a.connections, a.timeout, a.point, a.probe
    ));
    report.notes.push(format!(
        "hyper's /work spins in 50 µs slices and yields between them so that tower's \
         ConcurrencyLimit({k}) can see more than one request in flight"
    ));
    report.notes.push(
        "sent on time: ≤ 1 % of requests left > 1 ms after their intended time (a server \
         holding every connection busy makes requests wait in the generator: counted in \
         their latency, and this says no); generator on time: share of requests the generator's own \
         loop noticed > 1 ms late (other work on the shared machine); a point counts when \
         ≤ 5 %, and calibration probes above that are re-run"
            .into(),
    );
    report
        .notes
        .push(format!("load average at start: {}", loadavg()));

    let kinds = [Kind::Anon(Some(k)), Kind::Hyper(None), Kind::Hyper(Some(k))];
    let mut servers = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        match Server::start(kind, &bins, 18_300 + i as u16) {
            Ok(s) => {
                check_get(s.addr, "/work?us=10").map_err(|e| format!("{}: {e}", kind.name()))?;
                servers.push(s);
            }
            Err(e) if matches!(kind, Kind::Anon(_)) => {
                eprintln!("{e}");
                report.notes.push(format!("anon (hello): missing — {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    let anon_missing = !servers.iter().any(|s| matches!(s.kind, Kind::Anon(_)));

    let mut points: Vec<Point> = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut capacities: Vec<(String, u64, f64, bool)> = Vec::new();
    for &us in &a.services_us {
        eprintln!("== service time {us} µs");
        let mut caps = Vec::new();
        for s in &servers {
            let (c, met) = calibrate(s, &a, us)?;
            capacities.push((s.kind.name(), us, c, met));
            caps.push(c);
        }
        for (round, &f) in SWEEP.iter().enumerate() {
            for j in 0..servers.len() {
                let i = (j + round) % servers.len();
                points.push(measure(&servers[i], &a, us, caps[i], f)?);
            }
        }
        for to in [1.4, 4.0] {
            for (i, s) in servers.iter().enumerate() {
                scenarios.push(step(s, &a, us, caps[i], to)?);
            }
        }
        for (i, s) in servers.iter_mut().enumerate() {
            if !s.alive() {
                return Err(format!("{} died", s.kind.name()));
            }
            scenarios.push(stall(s, &a, us, caps[i])?);
        }
    }
    report
        .notes
        .push(format!("load average at end: {}", loadavg()));
    drop(servers);

    // Rows of the flat table.
    let row = |metric: String, contender: &str, v: f64, unit: &str, goal: Option<&str>| Row {
        metric,
        contender: contender.to_string(),
        median: v,
        rounds: vec![v],
        unit: unit.to_string(),
        goal: goal.map(str::to_string),
    };
    for (name, us, c, met) in &capacities {
        let unit = if *met {
            "req/s"
        } else {
            "req/s (SLO never met: lowest probe)"
        };
        report
            .rows
            .push(row(format!("{us} µs: capacity C"), name, *c, unit, None));
    }
    for p in &points {
        let goal = [(2.0, "≥ 0.97 C"), (4.0, "≥ 0.95 C"), (10.0, "≥ 0.90 C")]
            .iter()
            .find(|(f, _)| *f == p.factor)
            .map(|(_, g)| *g);
        let m = |what: &str| format!("{} µs: {what} at {}×C", p.service_us, p.factor);
        report.rows.push(row(
            m("goodput"),
            &p.contender,
            p.goodput_over_c,
            "× C",
            goal,
        ));
        report.rows.push(row(
            m("p99 of successes"),
            &p.contender,
            p.p99_us as f64,
            "µs",
            Some("≤ SLO"),
        ));
        if p.try_again > 0 {
            report.rows.push(row(
                m("rejection p99"),
                &p.contender,
                p.reject_p99_us as f64,
                "µs",
                Some("≤ 1000 µs"),
            ));
        }
        report.rows.push(row(
            m("no answer"),
            &p.contender,
            p.no_answer as f64,
            "requests",
            Some("0"),
        ));
    }
    for s in &scenarios {
        report.rows.push(row(
            format!("{} µs: {} — back within SLO after", s.service_us, s.name),
            &s.contender,
            s.settle_ms.map_or(f64::NAN, |v| v as f64),
            if s.settle_ms.is_some() {
                "ms (100 ms buckets)"
            } else {
                "never (NaN)"
            },
            s.name.starts_with("step 0.8→1.4").then_some("≤ 50 ms"),
        ));
    }

    // Detail table (wide), JSON and charts.
    let detail = detail_table(&points, &scenarios, &capacities, anon_missing);
    println!("{detail}");
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    #[derive(Serialize)]
    struct Detail<'a> {
        points: &'a [Point],
        scenarios: &'a [Scenario],
    }
    let json = serde_json::to_string_pretty(&Detail {
        points: &points,
        scenarios: &scenarios,
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("overload-detail.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("overload-detail.md"), &detail).map_err(|e| e.to_string())?;
    let charts = if a.quick {
        dir.join("charts")
    } else {
        workspace_root().join("docs/bench")
    };
    std::fs::create_dir_all(&charts).map_err(|e| e.to_string())?;
    let missing = if anon_missing {
        " (anon: hello not built yet)"
    } else {
        ""
    };
    for &us in &a.services_us {
        draw_charts(&charts, us, &points, &scenarios, missing)?;
    }
    eprintln!("charts in {}", charts.display());
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}

fn detail_table(
    points: &[Point],
    scenarios: &[Scenario],
    caps: &[(String, u64, f64, bool)],
    anon_missing: bool,
) -> String {
    let mut s = String::new();
    if anon_missing {
        s.push_str("Anon (hello): missing, not built yet — no figures.\n\n");
    }
    s.push_str("| service | contender | C (req/s) |\n|---|---|---:|\n");
    for (name, us, c, met) in caps {
        s.push_str(&format!(
            "| {us} µs | {name} | {c:.0}{} |\n",
            if *met { "" } else { " (SLO never met)" }
        ));
    }
    s.push_str(
        "\n| service | load | contender | goodput (× C) | p50 ok (µs) | p99 ok (µs) | 503s | 503 p99 (µs) | no answer | ListenOverflows | RSS (KiB) | server CPU per success (µs) | sent on time | generator on time |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    let mut sorted: Vec<&Point> = points.iter().collect();
    sorted.sort_by(|a, b| {
        b.service_us
            .cmp(&a.service_us)
            .then(a.factor.total_cmp(&b.factor))
            .then(a.contender.cmp(&b.contender))
    });
    for p in sorted {
        s.push_str(&format!(
            "| {} µs | {}×C | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            p.service_us,
            p.factor,
            p.contender,
            p.goodput_over_c,
            p.p50_us,
            p.p99_us,
            p.try_again,
            if p.try_again > 0 {
                p.reject_p99_us.to_string()
            } else {
                "–".into()
            },
            p.no_answer,
            p.listen_overflows,
            p.rss_kib,
            p.cpu_us_per_success,
            if p.schedule_kept { "yes" } else { "no" },
            if p.generator_on_time {
                format!("{:.1} % late", p.generator_late_pct)
            } else {
                format!("NO ({:.1} % late): invalid", p.generator_late_pct)
            }
        ));
    }
    // Sanity check: a served /work?us=N request must cost about N µs of server CPU. A
    // handler that spins by the wall clock while yielding to others costs less under
    // concurrency, and its figures then describe a cheaper workload than the others'.
    let mut flagged: Vec<(&str, u64)> = Vec::new();
    for p in points {
        let cheap = p.success > 100 && p.cpu_us_per_success < 0.8 * p.service_us as f64;
        if cheap && !flagged.contains(&(p.contender.as_str(), p.service_us)) {
            flagged.push((p.contender.as_str(), p.service_us));
            s.push_str(&format!(
                "\n**Not comparable:** {} served {}×C at {:.0} µs of server CPU per success for a \
                 {} µs handler: its `/work` does not burn the full service time per request \
                 under concurrency, so its capacity and goodput are inflated.\n",
                p.contender, p.factor, p.cpu_us_per_success, p.service_us
            ));
        }
    }
    s.push_str("\n| service | scenario | contender | back within SLO after | no answer | retries | requests |\n|---|---|---|---:|---:|---:|---:|\n");
    for sc in scenarios {
        s.push_str(&format!(
            "| {} µs | {} | {} | {} | {} | {} | {} |\n",
            sc.service_us,
            sc.name,
            sc.contender,
            sc.settle_ms.map_or("never".into(), |v| format!("{v} ms")),
            sc.no_answer,
            sc.retries,
            sc.requests
        ));
    }
    s
}

const COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

type Series = Vec<(String, Vec<(f64, f64)>)>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart: {e:?}")
}

/// Draws one chart; `log_x` / `log_y` pick logarithmic axes.
fn chart(
    path: &Path,
    title: &str,
    labels: (&str, &str),
    ranges: ((f64, f64), (f64, f64)),
    logs: (bool, bool),
    series: &Series,
) -> Result<(), String> {
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let ((x0, x1), (y0, y1)) = ranges;
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(labels.0)
                .y_desc(labels.1)
                .draw()
                .map_err(err)?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = pts
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|(x, y)| (x.clamp(x0, x1), y.clamp(y0, y1)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                if pts.len() <= 40 {
                    chart
                        .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                        .map_err(err)?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70);
    match logs {
        (true, true) => body!(b
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(err)?),
        (true, false) => body!(b
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(err)?),
        (false, true) => body!(b
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(err)?),
        (false, false) => body!(b.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
    }
    root.present().map_err(err)?;
    Ok(())
}

fn by_contender(points: &[Point], us: u64, f: impl Fn(&Point) -> Option<f64>) -> Series {
    let mut names: Vec<String> = Vec::new();
    for p in points.iter().filter(|p| p.service_us == us) {
        if !names.contains(&p.contender) {
            names.push(p.contender.clone());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.service_us == us && p.contender == n)
                .filter_map(|p| f(p).map(|y| (p.factor, y)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (n, pts)
        })
        .collect()
}

fn draw_charts(
    dir: &Path,
    us: u64,
    points: &[Point],
    scenarios: &[Scenario],
    missing: &str,
) -> Result<(), String> {
    let p = |name: &str| -> PathBuf { dir.join(format!("overload-{name}-{us}us.svg")) };
    let slo = (10 * us) as f64;
    let x = (0.4, 12.0);
    let goodput = by_contender(points, us, |p| Some(p.goodput_over_c));
    let gmax = goodput
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .fold(1.2f64, f64::max)
        * 1.1;
    chart(
        &p("goodput"),
        &format!("Goodput within SLO ({slo} µs) vs offered load, {us} µs handler{missing}"),
        ("offered load (× C, log)", "goodput (× C)"),
        (x, (0.0, gmax)),
        (true, false),
        &goodput,
    )?;
    let mut p99 = by_contender(points, us, |p| (p.success > 0).then_some(p.p99_us as f64));
    p99.push((format!("SLO {slo} µs"), vec![(x.0, slo), (x.1, slo)]));
    chart(
        &p("p99"),
        &format!("p99 latency of successes vs offered load, {us} µs handler{missing}"),
        ("offered load (× C, log)", "p99 (µs, log)"),
        (x, (10.0, 5e6)),
        (true, true),
        &p99,
    )?;
    let reject = by_contender(points, us, |p| {
        (p.try_again > 0).then_some(p.reject_p99_us as f64)
    });
    let mut reject: Series = reject.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    reject.push(("goal 1 ms".into(), vec![(x.0, 1000.0), (x.1, 1000.0)]));
    chart(
        &p("reject"),
        &format!("Rejection (503) latency p99 vs offered load, {us} µs handler{missing}"),
        ("offered load (× C, log)", "503 p99 (µs, log)"),
        (x, (10.0, 5e6)),
        (true, true),
        &reject,
    )?;
    for (key, prefix) in [
        ("step", "step 0.8→4×C"),
        ("step14", "step 0.8→1.4×C"),
        ("stall", "stall"),
    ] {
        let sel: Vec<&Scenario> = scenarios
            .iter()
            .filter(|s| s.service_us == us && s.name.starts_with(prefix))
            .collect();
        if sel.is_empty() {
            continue;
        }
        let series: Series = sel
            .iter()
            .map(|s| {
                (
                    s.contender.clone(),
                    s.series
                        .iter()
                        .map(|b| (b.t_ms as f64 / 1000.0, b.completed_in_slo as f64 * 10.0))
                        .collect(),
                )
            })
            .collect();
        let ymax = series
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.2;
        let xmax = series
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.0))
            .fold(1.0f64, f64::max);
        chart(
            &p(key),
            &format!(
                "{}: goodput within SLO per 100 ms, {us} µs handler{missing}",
                sel[0].name
            ),
            ("time (s)", "goodput (req/s)"),
            ((0.0, xmax), (0.0, ymax)),
            (false, false),
            &series,
        )?;
    }
    Ok(())
}
