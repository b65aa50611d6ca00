//! `anon-loadgen`: command-line front end of the open-loop load generator.
//!
//! ```text
//! anon-loadgen run  --addr 127.0.0.1:8080 --path /plaintext --rate 1000 --duration 10s
//!                   [--mix PATH=WEIGHT,PATH=WEIGHT...]
//!                   [--phase RATE:DURATION]... [--poisson] [--per-request]
//!                   [--connections 64] [--timeout 2s] [--slo 10ms] [--retries 0]
//!                   [--max-requests N] [--seed N] [--json FILE]
//! anon-loadgen hold --addr 127.0.0.1:8080 --path /plaintext --count 10000
//!                   [--sources 127.0.0.2,127.0.0.3] [--setup-deadline 60s] [--hold 600s]
//! ```
//!
//! `run` prints the JSON report (to FILE with `--json`) and a one-line summary with the
//! verdict on stderr (and one line per path with `--mix`).
//!
//! `--mix '/plaintext=9,/work?us=5000=1'` replaces `--path` by weighted targets: items are
//! separated by commas, and each item's weight follows its **last** `=` (so a query's own
//! `=` stays in the path; a path containing a comma cannot be given here). Requests pick
//! their target by smooth weighted round robin: exactly 9 of every 10 go to `/plaintext`. `hold` prints `held N failed M setup_ms T` on stdout once set up,
//! then keeps the connections until its stdin closes or `--hold` elapses.

#![forbid(unsafe_code)]

use anon_loadgen::{hold, run, Arrival, Config, ConnMode, HoldConfig, Phase, WeightedPath};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: anon-loadgen run --addr A (--path P | --mix P=W,P=W...) \
(--rate R --duration D | --phase R:D...) [--poisson] [--per-request] [--connections N] [--timeout D] [--slo D] [--retries N] \
[--max-requests N] [--seed N] [--json FILE]\n       anon-loadgen hold --addr A --path P \
--count N [--sources IP,IP] [--setup-deadline D] [--hold D]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("hold") => cmd_hold(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anon-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `10s`, `250ms`, `100us` or a plain number of seconds.
fn duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix("us") {
        (v, 1e-6)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    let x: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    if !x.is_finite() || x < 0.0 || x * scale > 86_400.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(x * scale))
}

/// Parses `--mix`: `PATH=WEIGHT` items separated by commas, the weight after each item's
/// last `=`.
fn mix(s: &str) -> Result<Vec<WeightedPath>, String> {
    s.split(',')
        .map(|item| {
            let (path, w) = item
                .rsplit_once('=')
                .ok_or_else(|| format!("--mix item {item:?} is not PATH=WEIGHT"))?;
            let weight =
                w.parse::<u32>().ok().filter(|w| *w > 0).ok_or_else(|| {
                    format!("--mix item {item:?}: weight must be 1..={}", u32::MAX)
                })?;
            Ok(WeightedPath::new(path, weight))
        })
        .collect()
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("bad value {v:?} for {flag}"))
}

/// Splits `--flag value` pairs (and bare switches listed in `switches`).
fn pairs<'a>(args: &'a [String], switches: &[&str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let f = args[i].as_str();
        if switches.contains(&f) {
            out.push((f, ""));
            i += 1;
        } else {
            let v = args
                .get(i + 1)
                .ok_or_else(|| format!("{f} needs a value\n{USAGE}"))?;
            out.push((f, v.as_str()));
            i += 2;
        }
    }
    Ok(out)
}

fn cmd_run(args: &[String]) -> Result<(), String> {
    let mut addr = None;
    let mut path = "/".to_string();
    let mut rate = None;
    let mut dur = None;
    let mut phases = Vec::new();
    let mut json = None;
    let mut cfg = Config::new("127.0.0.1:8080".parse().map_err(|_| "addr")?, "/");
    for (f, v) in pairs(args, &["--poisson", "--per-request"])? {
        match f {
            "--addr" => addr = Some(v.parse().map_err(|_| format!("bad address {v:?}"))?),
            "--path" => path = v.to_string(),
            "--mix" => cfg.mix = mix(v)?,
            "--rate" => rate = Some(num::<f64>(f, v)?),
            "--duration" => dur = Some(duration(v)?),
            "--phase" => {
                let (r, d) = v.split_once(':').ok_or("--phase takes RATE:DURATION")?;
                phases.push(Phase {
                    rate: num(f, r)?,
                    duration: duration(d)?,
                });
            }
            "--poisson" => cfg.arrival = Arrival::Poisson,
            "--per-request" => cfg.mode = ConnMode::PerRequest,
            "--connections" => cfg.connections = num(f, v)?,
            "--timeout" => cfg.timeout = duration(v)?,
            "--slo" => cfg.slo = Some(duration(v)?),
            "--retries" => cfg.retries = num(f, v)?,
            "--max-requests" => cfg.max_requests = num(f, v)?,
            "--seed" => cfg.seed = num(f, v)?,
            "--json" => json = Some(v.to_string()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    cfg.addr = addr.ok_or("--addr is required")?;
    cfg.path = path;
    match (rate, dur, phases.is_empty()) {
        (Some(r), Some(d), true) => {
            cfg.phases = vec![Phase {
                rate: r,
                duration: d,
            }]
        }
        (None, None, false) => cfg.phases = phases,
        _ => {
            return Err(format!(
                "give --rate and --duration, or --phase...\n{USAGE}"
            ))
        }
    }
    let report = run(&cfg).map_err(|e| e.to_string())?;
    let text = report.to_json();
    match json {
        Some(p) => std::fs::write(&p, text).map_err(|e| format!("{p}: {e}"))?,
        None => println!("{text}"),
    }
    let o = &report.outcomes;
    eprintln!(
        "requests {} = 2xx {} + 503s {} + other {} + timeout {} + error {}; goodput {:.0}/s; \
         p50 {} us p99 {} us; generator busy {:.0} % of its core{}; {}",
        report.requests,
        o.success,
        o.try_again,
        o.other_status,
        o.timeout,
        o.error,
        report.goodput_rps,
        report.latency.success.p50_us,
        report.latency.success.p99_us,
        report.generator.busy_fraction * 100.0,
        if report.generator.busy_fraction >= 0.9 {
            " (saturated: answers are read late, latencies overstated)"
        } else {
            ""
        },
        report.verdict.message
    );
    if !cfg.mix.is_empty() {
        for p in &report.paths {
            let o = &p.outcomes;
            eprintln!(
                "  {} (weight {}): requests {} = 2xx {} (in SLO {}) + 503s {} + other {} + \
                 timeout {} + error {}; 2xx p50 {} us p99 {} us",
                p.path,
                p.weight,
                p.requests,
                o.success,
                p.success_in_slo,
                o.try_again,
                o.other_status,
                o.timeout,
                o.error,
                p.success.p50_us,
                p.success.p99_us
            );
        }
    }
    Ok(())
}

fn cmd_hold(args: &[String]) -> Result<(), String> {
    let mut cfg = HoldConfig {
        addr: "127.0.0.1:8080".parse().map_err(|_| "addr")?,
        path: "/".into(),
        count: 0,
        sources: Vec::new(),
        max_in_setup: 256,
        deadline: Duration::from_secs(120),
    };
    let mut keep = Duration::from_secs(600);
    for (f, v) in pairs(args, &[])? {
        match f {
            "--addr" => cfg.addr = v.parse().map_err(|_| format!("bad address {v:?}"))?,
            "--path" => cfg.path = v.to_string(),
            "--count" => cfg.count = num(f, v)?,
            "--sources" => {
                cfg.sources = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad source address {s:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--setup-deadline" => cfg.deadline = duration(v)?,
            "--hold" => keep = duration(v)?,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    hold(&cfg)
        .map_err(|e| e.to_string())?
        .report_and_keep("anon-loadgen hold", keep);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("-1s").is_err());
        assert!(duration("x").is_err());
    }

    #[test]
    fn mixes_split_on_the_last_equals_sign() {
        assert_eq!(
            mix("/plaintext=9,/work?us=5000=1"),
            Ok(vec![
                WeightedPath::new("/plaintext", 9),
                WeightedPath::new("/work?us=5000", 1)
            ])
        );
        assert_eq!(
            mix("/a?x=1&y=2=3"),
            Ok(vec![WeightedPath::new("/a?x=1&y=2", 3)])
        );
        assert!(mix("/plaintext").is_err());
        assert!(mix("/a=0").is_err());
        assert!(mix("/a=-1").is_err());
        assert!(mix("/a=1,").is_err());
        assert!(mix("/a=x").is_err());
    }
}
