//! `overload`: what happens past capacity, measured open-loop with `anon-loadgen`.
//!
//! Method (`/work/shared/NOTES.md`, acceptance of issue 10): a handler with a fixed CPU
//! service time (`GET /work?us=N`, N = 1000 and 100), N server workers pinned to CPUs
//! 0 .. N - 1 (`--workers`, default 1), the generator (this process) pinned to the next
//! CPU when there is one (with 2 workers on 2 cores it is not pinned: it then shares the
//! CPUs with the server, and the report says so), 256 keep-alive connections, constant
//! arrivals, latency from the intended send time, SLO = 10 × service time. Per
//! contender, on a fresh server per service time:
//! - capacity C = the highest probed rate with ≥ 99.9 % successes, p99 ≤ SLO and the
//!   generator on time;
//! - a sweep at 0.5, 1, 2, 4, 10 × C: goodput (successes within the SLO per second),
//!   p50/p99 of successes, rejection (503) latency, requests with no answer (timeouts,
//!   resets, refusals), kernel ListenOverflows (`/proc/net/netstat`, from the schedule's
//!   start: the generator's pool is open by then), peak server RSS (sampled every 100 ms)
//!   and its growth from 1 × C to 10 × C;
//! - a step from 0.8 C to 1.4 C and to 4 C: how long until every 100 ms bucket is back
//!   within the SLO, and `hello`'s admission limit over time (scraped from its admin
//!   listener's `/metrics` every 100 ms);
//! - a 2 s stall (SIGSTOP/SIGCONT) at 0.8 C with naive clients (1 s timeout, up to 3
//!   immediate retries): how long until back within the SLO.
//!
//! Then, each on fresh servers:
//! - `io`: `GET /sleep?ms=50` at 2 000 req/s over 512 connections (100 requests in flight
//!   on average): share answered 200, p99 of the 200s (goal ≥ 99 % and ≤ 60 ms), no
//!   answer. Anon only: the peers have no `/sleep` route.
//! - `mix`: 90 % `GET /plaintext`, 10 % `GET /work?us=5000` (weighted round robin). The
//!   mix's capacity C_mix = the highest probed rate with ≥ 99.9 % successes, p99 of the
//!   cheap requests ≤ 10 ms and p99 of the expensive ones ≤ 50 ms (10 × their service
//!   time); then 2 × C_mix: share of cheap requests answered 200 within 10 ms (goal ≥ 95 %),
//!   no answer (goal 0), the expensive requests' outcomes.
//!
//! Contenders: Anon's `hello` with its defaults (no admission flag: adaptive admission),
//! `hello --max-inflight K --adaptive off` (the tuned fixed limit, K per worker), hyper
//! unbounded, hyper behind tower `LoadShed` + `ConcurrencyLimit(K)` (the peers run only
//! with 1 worker). `--only sweep,step,stall,io,mix` picks parts. Charts go to
//! `docs/bench/` (full runs) or `target/bench/charts/` (`--quick`).

mod output;
mod watch;

use crate::peers::{
    build, check_get, clk_tck, ensure_tools, loadavg, machine, machine_cpus, pin_self_to,
    raise_priority, server_cpus, AnonFlags, Kind, Launch, Server,
};
use crate::report::{workspace_root, Report};
use anon_loadgen::{Bucket, Config, PathStats, Phase, Report as LoadReport};
use serde::Serialize;
use std::time::Duration;
use watch::{watched_load, LimitSample, Watched};

/// Largest fraction of requests the generator itself may notice more than 1 ms late for a
/// point to count. On the shared machine other work still gets about 1 % of the CPU in
/// slices of milliseconds, even at autogroup nice -20; latency counts from the intended
/// time anyway, so such lateness only adds to the measured latency. Beyond this the
/// offered load itself would be wrong.
const GENERATOR_LATE_OK: f64 = 0.05;

/// Busy share of its core (`anon_loadgen::GeneratorLoad::busy_fraction`) from which the
/// generator counts as the bottleneck: it then reads answers late, which adds its own
/// backlog to every latency, and goodput within the SLO drops with it. Such a point's
/// figures are kept but marked "generator-bound"; such a calibration probe is invalid.
const GENERATOR_BOUND: f64 = 0.9;

/// Load factors of the sweep (× C).
const SWEEP: [f64; 5] = [0.5, 1.0, 2.0, 4.0, 10.0];
/// Calibration probes, as fractions of the ideal rate (workers / service time), tried
/// downwards.
const PROBES: [f64; 10] = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.35, 0.2, 0.1];
/// Step targets (× C) from 0.8 C.
const STEPS: [f64; 2] = [1.4, 4.0];

/// The I/O-bound handler of the `io` part.
const IO_PATH: &str = "/sleep?ms=50";
/// Its offered load, req/s (× 50 ms = 100 requests in flight on average).
const IO_RATE: f64 = 2000.0;
/// Its latency goal for the 200s' p99.
const IO_SLO: Duration = Duration::from_millis(60);
/// Connections of the `io` part: several times the 100 requests in flight.
const IO_CONNECTIONS: usize = 512;

/// The `mix` part: cheap and expensive targets and their weights.
const MIX_CHEAP: (&str, u32) = ("/plaintext", 9);
const MIX_EXPENSIVE: (&str, u32) = ("/work?us=5000", 1);
/// Latency objective of the cheap requests (the acceptance's 10 ms).
const MIX_CHEAP_SLO: Duration = Duration::from_millis(10);
/// Calibration objective of the expensive requests: 10 × their 5 ms service time.
const MIX_EXPENSIVE_SLO: Duration = Duration::from_millis(50);
/// Mean CPU per mixed request if `/plaintext` were free (0.1 × 5 000 µs): the ideal rate
/// of one worker is 1 / this.
const MIX_MEAN_US: f64 = 500.0;
/// The offered load of the measured mix run, × C_mix.
const MIX_FACTOR: f64 = 2.0;

/// Server ports: group g (a fresh set of servers), contender i → BASE + 8 g + i; the
/// admin listener of `hello` at ADMIN_BASE + 8 g + i.
const PORT_BASE: u16 = 18_500;
const ADMIN_BASE: u16 = 18_700;
/// Most server groups one run starts (ports stay below `ADMIN_BASE`).
const MAX_GROUPS: u16 = 24;

/// A part of the suite (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Sweep,
    Step,
    Stall,
    Io,
    Mix,
}

impl Part {
    const ALL: [Part; 5] = [Part::Sweep, Part::Step, Part::Stall, Part::Io, Part::Mix];

    fn name(self) -> &'static str {
        match self {
            Part::Sweep => "sweep",
            Part::Step => "step",
            Part::Stall => "stall",
            Part::Io => "io",
            Part::Mix => "mix",
        }
    }

    /// Whether the part needs the capacity C of the `/work` handlers.
    fn needs_capacity(self) -> bool {
        matches!(self, Part::Sweep | Part::Step | Part::Stall)
    }
}

#[derive(Debug, Clone)]
struct Args {
    quick: bool,
    services_us: Vec<u64>,
    max_inflight: usize,
    connections: usize,
    workers: Vec<usize>,
    only: Vec<Part>,
    point: Duration,
    probe: Duration,
    step_phase: Duration,
    stall_run: Duration,
    io_run: Duration,
    mix_run: Duration,
    timeout: Duration,
}

const ARGS_HELP: &str = "use --quick, --service-us 1000,100, --max-inflight K (per worker), \
     --connections N, --workers 1[,2], --only sweep,step,stall,io,mix";

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        services_us: vec![1000, 100],
        max_inflight: 8,
        connections: 256,
        workers: vec![1],
        only: Part::ALL.to_vec(),
        point: Duration::from_secs(3),
        probe: Duration::from_millis(1500),
        step_phase: Duration::from_secs(3),
        stall_run: Duration::from_secs(8),
        io_run: Duration::from_secs(5),
        mix_run: Duration::from_secs(3),
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
                a.io_run = Duration::from_secs(2);
                a.mix_run = Duration::from_millis(1500);
            }
            "--service-us" => {
                a.services_us = list(val()?, "service time")?;
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
            "--workers" => {
                a.workers = list(val()?, "worker count")?;
                i += 1;
            }
            "--only" => {
                let v = val()?;
                a.only = Vec::new();
                for name in v.split(',') {
                    let p = Part::ALL
                        .into_iter()
                        .find(|p| p.name() == name)
                        .ok_or_else(|| format!("unknown part {name:?} in --only; {ARGS_HELP}"))?;
                    if !a.only.contains(&p) {
                        a.only.push(p);
                    }
                }
                i += 1;
            }
            other => return Err(format!("unknown argument {other}; {ARGS_HELP}")),
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
    let cpus = machine_cpus();
    if a.workers.is_empty() || a.workers.iter().any(|&n| n == 0 || n > cpus) {
        return Err(format!(
            "--workers: each count must be 1..={cpus} (the machine's CPUs)"
        ));
    }
    a.workers.dedup();
    Ok(a)
}

/// Parses `1,2,3`.
fn list<T: std::str::FromStr>(v: &str, what: &str) -> Result<Vec<T>, String> {
    v.split(',')
        .map(|x| x.parse().map_err(|_| format!("bad {what} {x:?}")))
        .collect()
}

impl Args {
    fn has(&self, p: Part) -> bool {
        self.only.contains(&p)
    }

    /// The name of the JSON files: `overload`, plus the worker counts unless just 1,
    /// plus the parts unless all (so partial runs do not overwrite a full one).
    fn suite_name(&self) -> String {
        let mut s = String::from("overload");
        if self.workers != [1] {
            let w: Vec<String> = self.workers.iter().map(|n| n.to_string()).collect();
            s.push_str(&format!("-{}w", w.join("-")));
        }
        if self.only.len() != Part::ALL.len() {
            for p in &self.only {
                s.push('-');
                s.push_str(p.name());
            }
        }
        s
    }
}

/// One measured load point.
#[derive(Debug, Clone, Serialize)]
struct Point {
    contender: String,
    workers: usize,
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
    /// Peak RSS of the server's process tree during the run (sampled every 100 ms), KiB.
    rss_kib: u64,
    /// Median of `hello`'s admission limit (summed over workers) scraped during the run.
    limit_p50: Option<u64>,
    /// Server CPU time (user+sys) over the run ÷ successes, µs: the real cost of a
    /// served request (a 1000 µs handler should show about 1000).
    cpu_us_per_success: f64,
    #[serde(flatten)]
    generator: GeneratorCheck,
}

/// A time-series scenario (step or stall).
#[derive(Debug, Clone, Serialize)]
struct Scenario {
    contender: String,
    workers: usize,
    service_us: u64,
    name: String,
    /// When the event (step, SIGCONT) happened, ms from the start.
    event_ms: u64,
    /// ms after the event until every later bucket was within the SLO; None = never.
    settle_ms: Option<u64>,
    no_answer: u64,
    retries: u64,
    requests: u64,
    /// Without the generator's lateness: the scenarios' JSON never had it.
    #[serde(flatten)]
    generator: GeneratorCheck<()>,
    series: Vec<Bucket>,
    /// `hello`'s admission state every 100 ms (empty for the peers).
    limit: Vec<LimitSample>,
}

/// The `io` part of one contender.
#[derive(Debug, Clone, Serialize)]
struct IoRun {
    contender: String,
    workers: usize,
    offered_rps: f64,
    requests: u64,
    success: u64,
    /// Share of requests answered 200, %.
    success_pct: f64,
    /// Share answered 200 within 60 ms, %.
    in_slo_pct: f64,
    /// Share answered 200 among the requests sent from 1 s on (after a warm-up), %.
    success_pct_after_1s: f64,
    p50_us: u64,
    p99_us: u64,
    try_again: u64,
    reject_p99_us: u64,
    no_answer: u64,
    listen_overflows: u64,
    rss_kib: u64,
    #[serde(flatten)]
    generator: GeneratorCheck,
    series: Vec<Bucket>,
    limit: Vec<LimitSample>,
}

/// The `mix` part of one contender.
#[derive(Debug, Clone, Serialize)]
struct MixRun {
    contender: String,
    workers: usize,
    /// C_mix, req/s.
    capacity: f64,
    /// Whether a probe met the capacity definition (else C_mix is the lowest probe).
    capacity_met: bool,
    factor: f64,
    offered_rps: f64,
    requests: u64,
    no_answer: u64,
    listen_overflows: u64,
    /// Cheap requests answered 200 within 10 ms ÷ cheap requests sent, %.
    cheap_ok_pct: f64,
    cheap: PathStats,
    expensive: PathStats,
    #[serde(flatten)]
    generator: GeneratorCheck,
    limit: Vec<LimitSample>,
}

/// A contender's capacity for one workload.
#[derive(Debug, Clone, Serialize)]
struct Capacity {
    contender: String,
    workers: usize,
    /// `"1000 µs"`, or `"mix"`.
    workload: String,
    rps: f64,
    met: bool,
    /// Calibration probes run, and how many of them had a generator-bound generator
    /// (invalid: they do not calibrate).
    probes: u32,
    generator_bound_probes: u32,
}

/// Everything measured.
#[derive(Debug, Default, Serialize)]
struct Results {
    capacities: Vec<Capacity>,
    points: Vec<Point>,
    scenarios: Vec<Scenario>,
    io: Vec<IoRun>,
    mix: Vec<MixRun>,
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

/// What a run says of the generator itself: whether it sent on schedule, fell behind or
/// was the bottleneck, and the run's verdict. Every kind of run embeds it with
/// `#[serde(flatten)]`, so its keys stand in the run's JSON object beside the run's own.
#[derive(Debug, Clone, Serialize)]
struct GeneratorCheck<L = Lateness> {
    schedule_kept: bool,
    /// The generator's own lateness; `()` (no keys) where a run does not report it.
    #[serde(flatten)]
    lateness: L,
    /// Share of one core the generator spent working during the schedule, %: its loop's
    /// time minus the turns whose poll found nothing (see `GeneratorLoad`).
    generator_cpu_pct: f64,
    /// The generator thread's raw CPU time over the schedule ÷ its length, %, idle polling
    /// included: near 100 whenever requests are outstanding, so not a measure of headroom.
    generator_thread_cpu_pct: Option<f64>,
    /// `generator_cpu_pct` ≥ 90: latency and goodput understate the server.
    generator_bound: bool,
    /// The run's verdict, led by "generator-bound" when it was.
    verdict: String,
}

/// Requests the generator's own loop noticed more than 1 ms late.
#[derive(Debug, Clone, Copy, Serialize)]
struct Lateness {
    /// At most [`GENERATOR_LATE_OK`] of them: the run counts.
    generator_on_time: bool,
    generator_late_pct: f64,
}

impl GeneratorCheck {
    /// The check of the run that `r` reports.
    fn of(r: &LoadReport) -> GeneratorCheck {
        let g = &r.generator;
        let pct = g.busy_fraction * 100.0;
        let bound = g.busy_fraction >= GENERATOR_BOUND;
        let late = r.verdict.generator_late_fraction;
        GeneratorCheck {
            schedule_kept: r.verdict.kept,
            lateness: Lateness {
                generator_on_time: late <= GENERATOR_LATE_OK,
                generator_late_pct: late * 100.0,
            },
            generator_cpu_pct: pct,
            generator_thread_cpu_pct: g.cpu_fraction.map(|f| f * 100.0),
            generator_bound: bound,
            verdict: if bound {
                format!(
                    "generator-bound ({pct:.0} % CPU): latency and goodput understate the \
                     server; {}",
                    r.verdict.message
                )
            } else {
                r.verdict.message.clone()
            },
        }
    }

    fn on_time(&self) -> bool {
        self.lateness.generator_on_time
    }

    /// The same check without the lateness (as the scenarios report it).
    fn without_lateness(self) -> GeneratorCheck<()> {
        GeneratorCheck {
            schedule_kept: self.schedule_kept,
            lateness: (),
            generator_cpu_pct: self.generator_cpu_pct,
            generator_thread_cpu_pct: self.generator_thread_cpu_pct,
            generator_bound: self.generator_bound,
            verdict: self.verdict,
        }
    }
}

/// One calibration probe's reading.
struct Probe {
    pass: bool,
    generator: GeneratorCheck,
    what: String,
}

impl Probe {
    /// A probe's reading of `r`: `pass` = the server met the definition, given that the
    /// generator was on time and not the bottleneck (else the probe fails).
    fn of(r: &LoadReport, server_ok: bool, what: String) -> Probe {
        let generator = GeneratorCheck::of(r);
        Probe {
            pass: server_ok && generator.on_time() && !generator.generator_bound,
            generator,
            what,
        }
    }
}

/// What calibration found.
struct Calibrated {
    /// The capacity, req/s (the lowest probe when none passed).
    rps: f64,
    /// Whether a probe passed.
    met: bool,
    probes: u32,
    generator_bound_probes: u32,
}

impl Calibrated {
    fn capacity(&self, server: &Server, workers: usize, workload: String) -> Capacity {
        Capacity {
            contender: server.kind.name(),
            workers,
            workload,
            rps: self.rps,
            met: self.met,
            probes: self.probes,
            generator_bound_probes: self.generator_bound_probes,
        }
    }

    /// A note when no probe could calibrate because the generator was the bottleneck in
    /// every one of them.
    fn note(&self, contender: &str, workers: usize, workload: &str) -> Option<String> {
        (!self.met && self.probes > 0 && self.generator_bound_probes == self.probes).then(|| {
            format!(
                "{} ({workers} worker(s), {workload}): the generator was ≥ {:.0} % busy in every calibration probe, so C is the lowest probe ({:.0} req/s, never met) and the figures built on it are the generator's limit as much as the server's",
                contender,
                GENERATOR_BOUND * 100.0,
                self.rps
            )
        })
    }
}

/// The highest rate of `PROBES × ideal` that `probe` passes, and whether one did (else
/// the lowest probe). Each rate gets two tries (a stretch of other work on the shared
/// machine can sink one), three when the generator itself fell behind or was the
/// bottleneck (≥ 90 % busy: such a probe is invalid, as a late one is).
fn calibrate_by(
    name: &str,
    workload: &str,
    ideal: f64,
    mut probe: impl FnMut(f64) -> Result<Probe, String>,
) -> Result<Calibrated, String> {
    let (mut probes, mut bound) = (0, 0);
    for f in PROBES {
        let rate = (ideal * f).round();
        for attempt in 0..3 {
            pause();
            let p = probe(rate)?;
            let g = &p.generator;
            probes += 1;
            bound += u32::from(g.generator_bound);
            eprintln!(
                "  calibrate {name} {workload} @ {rate}/s: {}, generator on time {}, generator {:.0} % busy{} -> {}",
                p.what,
                g.on_time(),
                g.generator_cpu_pct,
                if g.generator_bound { " (generator-bound)" } else { "" },
                if p.pass { "pass" } else { "fail" }
            );
            if p.pass {
                return Ok(Calibrated {
                    rps: rate,
                    met: true,
                    probes,
                    generator_bound_probes: bound,
                });
            }
            let valid = g.on_time() && !g.generator_bound;
            if attempt == 2 || (valid && attempt == 1) {
                break;
            }
        }
    }
    Ok(Calibrated {
        rps: (ideal * PROBES[PROBES.len() - 1]).round(),
        met: false,
        probes,
        generator_bound_probes: bound,
    })
}

/// Capacity of `/work?us=N`: ≥ 99.9 % successes and p99 ≤ SLO.
fn calibrate(server: &Server, a: &Args, workers: usize, us: u64) -> Result<Calibrated, String> {
    let ideal = workers as f64 * 1e6 / us as f64;
    calibrate_by(&server.kind.name(), &format!("{us} µs"), ideal, |rate| {
        let r = anon_loadgen::run(&config(server, a, us, vec![phase(rate, a.probe)]))
            .map_err(|e| format!("{}: {e}", server.kind.name()))?;
        let ok_frac = r.outcomes.success as f64 / r.requests.max(1) as f64;
        // A pool held busy by a slow server is the server's doing and shows in the
        // latency; only the generator's own lateness or saturation invalidates a probe.
        Ok(Probe::of(
            &r,
            ok_frac >= 0.999 && r.latency.success.p99_us <= 10 * us,
            format!(
                "success {:.2} %, p99 {} µs",
                ok_frac * 100.0,
                r.latency.success.p99_us
            ),
        ))
    })
}

fn measure(
    server: &Server,
    a: &Args,
    workers: usize,
    us: u64,
    c: f64,
    factor: f64,
) -> Result<Point, String> {
    pause();
    let cpu_before = server.cpu_ticks();
    let cfg = config(server, a, us, vec![phase(c * factor, a.point)]);
    let (r, w) = watched_load(server, &cfg, true, |_| {})?;
    let overflows = w.listen_overflows;
    let cpu_us = server.cpu_ticks().saturating_sub(cpu_before) as f64 / clk_tck() * 1e6;
    let p = Point {
        contender: server.kind.name(),
        workers,
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
        rss_kib: w.peak_rss_kib,
        limit_p50: w.limit_p50(),
        cpu_us_per_success: cpu_us / r.outcomes.success.max(1) as f64,
        generator: GeneratorCheck::of(&r),
    };
    eprintln!(
        "  {} {us} µs {factor}×C: goodput {:.2} C, p99 {} µs, 503 {} (p99 {} µs), no answer {}, \
         overflows {overflows}, peak RSS {} KiB, limit p50 {}, sent on time {}, generator on \
         time {}, generator {:.0} % busy{}",
        p.contender,
        p.goodput_over_c,
        p.p99_us,
        p.try_again,
        p.reject_p99_us,
        p.no_answer,
        p.rss_kib,
        output::opt(p.limit_p50),
        p.generator.schedule_kept,
        p.generator.on_time(),
        p.generator.generator_cpu_pct,
        if p.generator.generator_bound {
            " (generator-bound)"
        } else {
            ""
        }
    );
    Ok(p)
}

impl Scenario {
    /// The scenario `name` of a run whose event came at `event_ms` and whose schedule
    /// ended at `end_ms` (ms from the start): `settle_ms` counts from the event until every
    /// later 100 ms bucket up to the end was within the SLO (10 × `us`).
    fn of(
        server: &Server,
        workers: usize,
        us: u64,
        name: String,
        event_ms: u64,
        end_ms: u64,
        (r, w): (LoadReport, Watched),
    ) -> Scenario {
        Scenario {
            contender: server.kind.name(),
            workers,
            service_us: us,
            name,
            event_ms,
            settle_ms: r
                .settled_after(event_ms, end_ms, 10 * us)
                .map(|t| t - event_ms),
            no_answer: r.outcomes.no_answer(),
            retries: r.retries,
            requests: r.requests,
            generator: GeneratorCheck::of(&r).without_lateness(),
            series: r.series,
            limit: w.limit,
        }
    }

    /// `settle_ms` as the progress lines print it.
    fn settled(&self) -> String {
        self.settle_ms.map_or("never".into(), |s| format!("{s} ms"))
    }
}

fn step(
    server: &Server,
    a: &Args,
    workers: usize,
    us: u64,
    c: f64,
    to: f64,
) -> Result<Scenario, String> {
    pause();
    let cfg = config(
        server,
        a,
        us,
        vec![phase(0.8 * c, a.step_phase), phase(to * c, a.step_phase)],
    );
    let run = watched_load(server, &cfg, true, |_| {})?;
    let event = a.step_phase.as_millis() as u64;
    let name = format!("step 0.8→{to}×C");
    let sc = Scenario::of(server, workers, us, name, event, 2 * event, run);
    eprintln!(
        "  {} {us} µs step 0.8→{to}×C: back within SLO after {}; limit scraped {} times; \
         generator {:.0} % busy",
        sc.contender,
        sc.settled(),
        sc.limit.len(),
        sc.generator.generator_cpu_pct
    );
    Ok(sc)
}

fn stall(server: &Server, a: &Args, workers: usize, us: u64, c: f64) -> Result<Scenario, String> {
    pause();
    let mut cfg = config(server, a, us, vec![phase(0.8 * c, a.stall_run)]);
    cfg.retries = 3;
    cfg.timeout = Duration::from_secs(1);
    let (stop_at, stall_for) = (Duration::from_secs(2), Duration::from_secs(2));
    let (tx, rx) = std::sync::mpsc::channel::<std::time::Instant>();
    let run = std::thread::scope(|s| {
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
        let r = watched_load(server, &cfg, true, move |t| {
            let _ = tx.send(t);
        });
        let stalled = staller
            .join()
            .unwrap_or_else(|_| Err("staller panicked".into()));
        match (r, stalled) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(format!("{}: stall: {e}", server.kind.name())),
            (Ok(r), Ok(())) => Ok(r),
        }
    })?;
    let event = (stop_at + stall_for).as_millis() as u64;
    let name = "stall 2 s, naive retries".to_string();
    let end = a.stall_run.as_millis() as u64;
    let sc = Scenario::of(server, workers, us, name, event, end, run);
    eprintln!(
        "  {} {us} µs stall 2 s: back within SLO {} after SIGCONT; retries {}, no answer {}, \
         generator {:.0} % busy",
        sc.contender,
        sc.settled(),
        sc.retries,
        sc.no_answer,
        sc.generator.generator_cpu_pct
    );
    Ok(sc)
}

/// The `io` part: `GET /sleep?ms=50` at 2 000 req/s.
fn io(server: &Server, a: &Args, workers: usize) -> Result<IoRun, String> {
    pause();
    let mut cfg = Config::new(server.addr, IO_PATH).rate(IO_RATE, a.io_run);
    cfg.connections = IO_CONNECTIONS;
    cfg.timeout = a.timeout;
    cfg.slo = Some(IO_SLO);
    let (r, w) = watched_load(server, &cfg, true, |_| {})?;
    let overflows = w.listen_overflows;
    let limit_p50 = w.limit_p50();
    let pct = |n: u64, of: u64| n as f64 * 100.0 / of.max(1) as f64;
    let (late_ok, late_all) = r
        .series
        .iter()
        .filter(|b| b.t_ms >= 1000)
        .fold((0, 0), |(ok, all), b| {
            (ok + b.outcomes.success, all + b.outcomes.total())
        });
    let run = IoRun {
        contender: server.kind.name(),
        workers,
        offered_rps: r.offered_rps,
        requests: r.requests,
        success: r.outcomes.success,
        success_pct: pct(r.outcomes.success, r.requests),
        in_slo_pct: pct(r.success_in_slo, r.requests),
        success_pct_after_1s: pct(late_ok, late_all),
        p50_us: r.latency.success.p50_us,
        p99_us: r.latency.success.p99_us,
        try_again: r.outcomes.try_again,
        reject_p99_us: r.latency.try_again.p99_us,
        no_answer: r.outcomes.no_answer(),
        listen_overflows: overflows,
        rss_kib: w.peak_rss_kib,
        generator: GeneratorCheck::of(&r),
        series: r.series,
        limit: w.limit,
    };
    eprintln!(
        "  {} io {IO_PATH} @ {IO_RATE}/s: 200 {:.2} % (from 1 s on {:.2} %), p99 {} µs, 503 {}, \
         no answer {}, overflows {overflows}, limit p50 {}, generator {:.0} % busy (thread \
         CPU {})",
        run.contender,
        run.success_pct,
        run.success_pct_after_1s,
        run.p99_us,
        run.try_again,
        run.no_answer,
        output::opt(limit_p50),
        run.generator.generator_cpu_pct,
        run.generator
            .generator_thread_cpu_pct
            .map_or("–".into(), |c| format!("{c:.0} %"))
    );
    Ok(run)
}

fn mix_config(server: &Server, a: &Args, rate: f64, d: Duration) -> Config {
    let mut c = Config::new(server.addr, MIX_CHEAP.0)
        .with_mix(&[MIX_CHEAP, MIX_EXPENSIVE])
        .rate(rate, d);
    c.connections = a.connections;
    c.timeout = a.timeout;
    c.slo = Some(MIX_CHEAP_SLO);
    c
}

/// The per-target figures of a mix run: (cheap, expensive).
fn mix_paths(r: &LoadReport) -> Result<(PathStats, PathStats), String> {
    let get = |p: &str| {
        r.path(p)
            .cloned()
            .ok_or_else(|| format!("the report has no figures for {p}"))
    };
    Ok((get(MIX_CHEAP.0)?, get(MIX_EXPENSIVE.0)?))
}

/// C_mix: ≥ 99.9 % successes, cheap p99 ≤ 10 ms, expensive p99 ≤ 50 ms.
fn calibrate_mix(server: &Server, a: &Args, workers: usize) -> Result<Calibrated, String> {
    let ideal = workers as f64 * 1e6 / MIX_MEAN_US;
    calibrate_by(&server.kind.name(), "mix", ideal, |rate| {
        let r = anon_loadgen::run(&mix_config(server, a, rate, a.probe))
            .map_err(|e| format!("{}: {e}", server.kind.name()))?;
        let (cheap, dear) = mix_paths(&r)?;
        let ok_frac = r.outcomes.success as f64 / r.requests.max(1) as f64;
        let us = |d: Duration| d.as_micros() as u64;
        Ok(Probe::of(
            &r,
            ok_frac >= 0.999
                && cheap.success.p99_us <= us(MIX_CHEAP_SLO)
                && dear.success.p99_us <= us(MIX_EXPENSIVE_SLO),
            format!(
                "success {:.2} %, cheap p99 {} µs, expensive p99 {} µs",
                ok_frac * 100.0,
                cheap.success.p99_us,
                dear.success.p99_us
            ),
        ))
    })
}

fn mix(server: &Server, a: &Args, workers: usize, c: f64, met: bool) -> Result<MixRun, String> {
    pause();
    let cfg = mix_config(server, a, MIX_FACTOR * c, a.mix_run);
    let (r, w) = watched_load(server, &cfg, true, |_| {})?;
    let overflows = w.listen_overflows;
    let (cheap, expensive) = mix_paths(&r)?;
    let run = MixRun {
        contender: server.kind.name(),
        workers,
        capacity: c,
        capacity_met: met,
        factor: MIX_FACTOR,
        offered_rps: r.offered_rps,
        requests: r.requests,
        no_answer: r.outcomes.no_answer(),
        listen_overflows: overflows,
        cheap_ok_pct: cheap.success_in_slo as f64 * 100.0 / cheap.requests.max(1) as f64,
        cheap,
        expensive,
        generator: GeneratorCheck::of(&r),
        limit: w.limit,
    };
    eprintln!(
        "  {} mix @ {MIX_FACTOR}×{c}/s: cheap 200 within 10 ms {:.2} % (p99 {} µs), expensive \
         200 {} / 503 {} / no answer {}, no answer {}, overflows {overflows}, generator {:.0} % \
         busy",
        run.contender,
        run.cheap_ok_pct,
        run.cheap.success.p99_us,
        run.expensive.outcomes.success,
        run.expensive.outcomes.try_again,
        run.expensive.outcomes.no_answer(),
        run.no_answer,
        run.generator.generator_cpu_pct
    );
    Ok(run)
}

/// Starts fresh servers, one set per part, on ports of their own.
struct Starter<'a> {
    bins: &'a crate::peers::Bins,
    group: u16,
}

impl Starter<'_> {
    /// Starts each of `kinds` with `workers` workers (an admin port for `hello`) and checks
    /// it answers `check`; a `hello` that does not start is left out and noted.
    fn start(
        &mut self,
        kinds: &[Kind],
        workers: usize,
        check: &str,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Server>, String> {
        if self.group >= MAX_GROUPS {
            return Err("too many server groups for the port plan".into());
        }
        let g = self.group;
        self.group += 1;
        let mut servers = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let i = i as u16;
            let launch = Launch {
                workers,
                admin_port: Some(ADMIN_BASE + 8 * g + i),
            };
            match Server::start_with(kind, self.bins, PORT_BASE + 8 * g + i, launch) {
                Ok(s) => {
                    check_get(s.addr, check).map_err(|e| format!("{}: {e}", kind.name()))?;
                    servers.push(s);
                }
                Err(e) if matches!(kind, Kind::Anon(_)) => {
                    eprintln!("{e}");
                    let note = format!("{}: missing — {e}", kind.name());
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(servers)
    }
}

/// The contenders with `workers` workers: both `hello`s, and the peers with 1 worker.
fn contenders(a: &Args, workers: usize) -> Vec<Kind> {
    let k = a.max_inflight;
    let mut v = vec![
        Kind::Anon(AnonFlags::DEFAULTS),
        Kind::Anon(AnonFlags::fixed(k * workers)),
    ];
    if workers == 1 {
        v.extend([Kind::Hyper(None), Kind::Hyper(Some(k))]);
    }
    v
}

/// Entry point of `cargo xtask bench overload [--quick] [--service-us 1000,100]
/// [--max-inflight K] [--connections N] [--workers 1,2] [--only sweep,step,stall,io,mix]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let a = parse_args(args)?;
    ensure_tools(&[("taskset", "util-linux")])?;
    let need_peers =
        a.workers.contains(&1) && a.only.iter().any(|p| p.needs_capacity() || *p == Part::Mix);
    let bins = build(need_peers)?;
    let _priority = raise_priority();
    let k = a.max_inflight;
    let mut report = Report::new("overload");
    report.suite = a.suite_name();
    let cpus = machine_cpus();
    report.notes.push(format!("machine: {}", machine()));
    let parts: Vec<&str> = a.only.iter().map(|p| p.name()).collect();
    report.notes.push(format!(
        "parts: {}; GET /work?us=N (CPU spin); each server's N workers pinned to CPUs \
         0..N-1 (hello: --workers N, and --pin with N > 1), anon-loadgen (open loop, constant \
         arrivals, in this process) pinned to CPU N when the machine has one, autogroup nice \
         -20 while measuring, {} keep-alive connections, timeout {:?}, SLO = 10 × service \
         time; sweep points {:?} each, calibration probes {:?}, steps {:?} + {:?}",
        parts.join(", "),
        a.connections,
        a.timeout,
        a.point,
        a.probe,
        a.step_phase,
        a.step_phase
    ));
    report.notes.push(format!(
        "contenders: hello with its defaults (no admission flag: adaptive admission on); \
         hello --max-inflight K×N --adaptive off (K = {k} per worker); hyper unbounded; hyper \
         + tower LoadShed/ConcurrencyLimit({k}). hyper's /work spins in 50 µs slices and \
         yields between them so that tower's limit can see more than one request in flight"
    ));
    if a.workers.iter().any(|&n| n > 1) {
        report.notes.push(
            "with N > 1 workers only the hello contenders run: the peer servers support only \
             1 worker"
                .into(),
        );
    }
    if a.workers.iter().any(|&n| n >= cpus) {
        report.notes.push(format!(
            "with {cpus} workers on {cpus} CPUs the generator is NOT pinned: it shares the \
             server's CPUs (and competes with it), so capacities are lower and latencies \
             noisier than with a CPU of its own"
        ));
    }
    if a.has(Part::Io) {
        report.notes.push(format!(
            "io: GET {IO_PATH} at {IO_RATE} req/s for {:?}, {IO_CONNECTIONS} connections, \
             fresh servers (the adaptive limit starts cold: its warm-up counts); hello only, \
             the peers have no /sleep route",
            a.io_run
        ));
    }
    if a.has(Part::Mix) {
        report.notes.push(format!(
            "mix: {} × {}, {} × {} (smooth weighted round robin: exactly 1 expensive in every \
             10), fresh servers; C_mix = highest probe (fractions of N × 2000/s) with ≥ 99.9 % \
             successes, cheap p99 ≤ {:?} and expensive p99 ≤ {:?} (10 × 5 ms); measured at \
             {MIX_FACTOR} × C_mix for {:?}",
            MIX_CHEAP.1,
            MIX_CHEAP.0,
            MIX_EXPENSIVE.1,
            MIX_EXPENSIVE.0,
            MIX_CHEAP_SLO,
            MIX_EXPENSIVE_SLO,
            a.mix_run
        ));
    }
    report.notes.push(
        "server RSS: peak of the server's process tree sampled every 100 ms during a point; \
         hello's admission limit: anon_admission_limit summed over workers, scraped from \
         --admin-port /metrics every 100 ms by a thread of this process"
            .into(),
    );
    report.notes.push(
        "sent on time: ≤ 1 % of requests left > 1 ms after their intended time (a server \
         holding every connection busy makes requests wait in the generator: counted in \
         their latency, and this says no); generator on time: share of requests the generator's own \
         loop noticed > 1 ms late (other work on the shared machine); a point counts when \
         ≤ 5 %, and calibration probes above that are re-run"
            .into(),
    );
    report.notes.push(format!(
        "generator CPU (generator_cpu_pct): the share of its core the generator's thread \
         spent working during the schedule — its loop's wall time minus the turns whose poll \
         found nothing and the time asleep in a poll. Its raw thread CPU \
         (generator_thread_cpu_pct, /proc/thread-self/schedstat) is in the JSON too, but it \
         is near 100 % whenever requests are outstanding, at any rate, because the loop then \
         polls without sleeping: the reading of /usr/bin/time on `anon-loadgen run --rate \
         16000 --duration 3s` on this VM (user 1.38 s + sys 1.62 s in 3.02 s) is that \
         polling, not by itself the ceiling. From {:.0} % busy the generator is the \
         bottleneck: it reads answers late, which adds its own backlog to every latency \
         ('generator on time' only catches late sending), so such a run is marked \
         generator-bound (its figures are kept; latency and goodput understate the server) \
         and such a calibration probe is invalid, like a late one (when every probe is, C \
         is the lowest probe, never met, and a note says so)",
        GENERATOR_BOUND * 100.0
    ));
    report
        .notes
        .push(format!("load average at start: {}", loadavg()));

    let mut res = Results::default();
    let mut starter = Starter {
        bins: &bins,
        group: 0,
    };
    for &n in &a.workers {
        // The generator gets the CPU after the server's, or shares them all.
        if n < cpus {
            pin_self_to(&n.to_string())?;
        } else {
            pin_self_to(&server_cpus(cpus))?;
        }
        run_workers(&a, n, &mut starter, &mut report.notes, &mut res)?;
    }
    report
        .notes
        .push(format!("load average at end: {}", loadavg()));
    report.notes.push(output::generator_ceiling(&res));

    output::rows(&mut report.rows, &res);
    let anon_missing = !res
        .points
        .iter()
        .map(|p| &p.contender)
        .chain(res.io.iter().map(|p| &p.contender))
        .chain(res.mix.iter().map(|p| &p.contender))
        .any(|c| c.starts_with("anon"));
    let detail = output::detail_table(&res, anon_missing);
    println!("{detail}");
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&res).map_err(|e| e.to_string())?;
    let suite = a.suite_name();
    std::fs::write(dir.join(format!("{suite}-detail.json")), json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(format!("{suite}-detail.md")), &detail).map_err(|e| e.to_string())?;
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
    output::draw_all(&charts, &res, &a, missing)?;
    eprintln!("charts in {}", charts.display());
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// Every part with `n` workers.
fn run_workers(
    a: &Args,
    n: usize,
    starter: &mut Starter<'_>,
    notes: &mut Vec<String>,
    res: &mut Results,
) -> Result<(), String> {
    let kinds = contenders(a, n);
    if a.only.iter().any(|p| p.needs_capacity()) {
        for &us in &a.services_us {
            eprintln!("== {n} worker(s), service time {us} µs");
            let mut servers = starter.start(&kinds, n, "/work?us=10", notes)?;
            let mut caps = Vec::new();
            for s in &servers {
                let cal = calibrate(s, a, n, us)?;
                let workload = format!("{us} µs");
                notes.extend(cal.note(&s.kind.name(), n, &workload));
                res.capacities.push(cal.capacity(s, n, workload));
                caps.push(cal.rps);
            }
            if a.has(Part::Sweep) {
                for (round, &f) in SWEEP.iter().enumerate() {
                    for j in 0..servers.len() {
                        let i = (j + round) % servers.len();
                        res.points.push(measure(&servers[i], a, n, us, caps[i], f)?);
                    }
                }
            }
            if a.has(Part::Step) {
                for to in STEPS {
                    for (i, s) in servers.iter().enumerate() {
                        res.scenarios.push(step(s, a, n, us, caps[i], to)?);
                    }
                }
            }
            if a.has(Part::Stall) {
                for (i, s) in servers.iter_mut().enumerate() {
                    if !s.alive() {
                        return Err(format!("{} died", s.kind.name()));
                    }
                    res.scenarios.push(stall(s, a, n, us, caps[i])?);
                }
            }
            for s in &mut servers {
                if !s.alive() {
                    return Err(format!("{} died", s.kind.name()));
                }
            }
        }
    }
    if a.has(Part::Io) {
        eprintln!("== {n} worker(s), io: GET {IO_PATH} at {IO_RATE}/s");
        let anon: Vec<Kind> = kinds
            .iter()
            .filter(|k| matches!(k, Kind::Anon(_)))
            .cloned()
            .collect();
        let servers = starter.start(&anon, n, "/sleep?ms=1", notes)?;
        for s in &servers {
            res.io.push(io(s, a, n)?);
        }
    }
    if a.has(Part::Mix) {
        eprintln!(
            "== {n} worker(s), mix: 90 % {}, 10 % {}",
            MIX_CHEAP.0, MIX_EXPENSIVE.0
        );
        let servers = starter.start(&kinds, n, "/plaintext", notes)?;
        let mut caps = Vec::new();
        for s in &servers {
            let cal = calibrate_mix(s, a, n)?;
            notes.extend(cal.note(&s.kind.name(), n, "mix"));
            res.capacities.push(cal.capacity(s, n, "mix".into()));
            caps.push((cal.rps, cal.met));
        }
        for (s, &(c, met)) in servers.iter().zip(&caps) {
            res.mix.push(mix(s, a, n, c, met)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_and_names() {
        let a = args(&[]).unwrap();
        assert_eq!(a.workers, vec![1]);
        assert_eq!(a.only, Part::ALL.to_vec());
        assert_eq!(a.suite_name(), "overload");
        let a = args(&["--only", "io,mix", "--quick"]).unwrap();
        assert_eq!(a.only, vec![Part::Io, Part::Mix]);
        assert_eq!(a.suite_name(), "overload-io-mix");
        assert!(args(&["--only", "nope"]).is_err());
        assert!(args(&["--workers", "0"]).is_err());
        assert!(args(&["--workers", "100000"]).is_err());
        if machine_cpus() >= 2 {
            let a = args(&["--workers", "1,2"]).unwrap();
            assert_eq!(a.suite_name(), "overload-1-2w");
        }
    }

    #[test]
    fn a_note_only_when_every_probe_was_generator_bound() {
        let cal = |met, probes, generator_bound_probes| Calibrated {
            rps: 100.0,
            met,
            probes,
            generator_bound_probes,
        };
        let n = cal(false, 20, 20).note("x", 1, "100 µs").expect("note");
        assert!(
            n.contains("every calibration probe") && n.contains("100 req/s"),
            "{n}"
        );
        assert!(cal(false, 20, 19).note("x", 1, "mix").is_none());
        assert!(cal(true, 3, 2).note("x", 1, "mix").is_none());
        assert!(cal(false, 0, 0).note("x", 1, "mix").is_none());
    }

    /// A report of a run whose generator was `busy` (0..=1) and noticed `late` of the
    /// requests late.
    fn load_report(busy: f64, late: f64) -> LoadReport {
        use anon_loadgen::{Counts, ErrorCounts, GeneratorLoad, Latencies, Summary, Verdict};
        LoadReport {
            config: Config::new("127.0.0.1:1".parse().unwrap(), "/"),
            elapsed_s: 1.0,
            scheduled: 10,
            retries: 0,
            requests: 10,
            outcomes: Counts::default(),
            errors: ErrorCounts::default(),
            latency: Latencies::default(),
            success_in_slo: 0,
            goodput_rps: 0.0,
            offered_rps: 10.0,
            send_lag: Summary::default(),
            unsent: 0,
            connects: 1,
            verdict: Verdict {
                kept: true,
                late_fraction: 0.0,
                generator_late_fraction: late,
                message: "ok".into(),
            },
            series: Vec::new(),
            paths: Vec::new(),
            generator: GeneratorLoad {
                window_s: 1.0,
                busy_fraction: busy,
                cpu_fraction: Some(1.0),
            },
        }
    }

    #[test]
    fn generator_check_of_a_report() {
        let g = GeneratorCheck::of(&load_report(0.5, 0.01));
        assert!(g.schedule_kept && g.on_time() && !g.generator_bound);
        assert_eq!(g.generator_cpu_pct, 50.0);
        assert_eq!(g.generator_thread_cpu_pct, Some(100.0));
        assert_eq!(g.verdict, "ok");
        let g = GeneratorCheck::of(&load_report(0.95, 0.2));
        assert!(!g.on_time() && g.generator_bound);
        assert_eq!(
            g.verdict,
            "generator-bound (95 % CPU): latency and goodput understate the server; ok"
        );
    }

    /// Flattened, the check's keys stand between the run's own, in the order the runs'
    /// JSON always had them.
    #[test]
    fn generator_check_keys_stay_flat() {
        #[derive(Serialize)]
        struct Run<L: Serialize> {
            before: u8,
            #[serde(flatten)]
            generator: GeneratorCheck<L>,
            after: u8,
        }
        fn json<L: Serialize>(generator: GeneratorCheck<L>) -> String {
            let run = Run {
                before: 0,
                generator,
                after: 1,
            };
            serde_json::to_string(&run).unwrap()
        }
        let g = GeneratorCheck::of(&load_report(0.5, 0.0));
        let tail = r#""generator_cpu_pct":50.0,"generator_thread_cpu_pct":100.0,"generator_bound":false,"verdict":"ok","after":1}"#;
        assert_eq!(
            json(g.clone()),
            format!(
                r#"{{"before":0,"schedule_kept":true,"generator_on_time":true,"generator_late_pct":0.0,{tail}"#
            )
        );
        assert_eq!(
            json(g.without_lateness()),
            format!(r#"{{"before":0,"schedule_kept":true,{tail}"#)
        );
    }

    #[test]
    fn contenders_per_worker_count() {
        let a = args(&["--max-inflight", "8"]).unwrap();
        let one: Vec<String> = contenders(&a, 1).iter().map(Kind::name).collect();
        assert_eq!(
            one,
            [
                "anon (hello, defaults)",
                "anon (hello, max-inflight 8, adaptive off)",
                "hyper 1 (unbounded)",
                "hyper 1 + tower LoadShed/ConcurrencyLimit(8)"
            ]
        );
        let two: Vec<String> = contenders(&a, 2).iter().map(Kind::name).collect();
        assert_eq!(
            two,
            [
                "anon (hello, defaults)",
                "anon (hello, max-inflight 16, adaptive off)"
            ]
        );
    }
}
