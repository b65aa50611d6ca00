//! `conns`: server memory per idle keep-alive connection.
//!
//! For each contender and each count (1k, 5k, 10k, 19.9k — the fd hard limit here is
//! 20 000 per process), a fresh server (1 worker, pinned to CPU 0) gets one warm-up
//! request, its RSS is read, then a client in a separate process (this binary,
//! `conns --hold-child`, i.e. `anon_loadgen::hold`) opens N keep-alive connections from
//! several 127.0.0.x source addresses, makes one request on each and keeps them idle.
//! Figure: (RSS with N idle − RSS before) ÷ N. Kernel socket memory is not in RSS.

use crate::peers::{
    build, check_get, ensure_tools, loadavg, machine, on_path, AnonFlags, Kind, Server,
};
use crate::report::{Report, Row};
use anon_loadgen::{hold, HoldConfig};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Source addresses the holding client connects from.
const SOURCES: &str = "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4";

/// The client side, run in a child process: hold, report, wait for stdin to close.
fn hold_child(args: &[String]) -> Result<(), String> {
    let mut cfg = HoldConfig {
        addr: "127.0.0.1:1".parse().map_err(|_| "addr")?,
        path: "/plaintext".into(),
        count: 0,
        sources: Vec::new(),
        max_in_setup: 256,
        deadline: Duration::from_secs(120),
    };
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--addr" => cfg.addr = v.parse().map_err(|_| format!("bad address {v}"))?,
            "--count" => cfg.count = v.parse().map_err(|_| format!("bad count {v}"))?,
            "--sources" => {
                cfg.sources = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad source {s}")))
                    .collect::<Result<_, String>>()?
            }
            other => return Err(format!("unknown hold-child flag {other}")),
        }
        i += 2;
    }
    // Keep the connections until the parent closes our stdin (bounded: 10 minutes).
    hold(&cfg)
        .map_err(|e| e.to_string())?
        .report_and_keep("hold", Duration::from_secs(600));
    Ok(())
}

/// One measurement: (held, failed, rss before KiB, rss with the connections KiB).
fn measure(server: &Server, n: usize) -> Result<(usize, usize, u64, u64), String> {
    check_get(server.addr, "/plaintext").map_err(|e| format!("{}: {e}", server.kind.name()))?;
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss_kib();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["conns", "--hold-child", "--addr", &server.addr.to_string()])
        .args(["--count", &n.to_string(), "--sources", SOURCES])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the holding client: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    let f: Vec<&str> = line.split_whitespace().collect();
    let parse = |i: usize| f.get(i).and_then(|v| v.parse::<usize>().ok());
    let result = match (parse(1), parse(3)) {
        (Some(held), Some(failed)) => {
            std::thread::sleep(Duration::from_millis(1000));
            Ok((held, failed, before, server.rss_kib()))
        }
        _ => Err(format!("holding client said {line:?}")),
    };
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

/// Entry point of `cargo xtask bench conns [--quick] [--counts 1000,5000]`.
pub fn run(args: &[String]) -> Result<(), String> {
    if args.first().is_some_and(|a| a == "--hold-child") {
        return hold_child(&args[1..]);
    }
    let mut counts = vec![1000usize, 5000, 10_000, 19_900];
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => counts = vec![1000, 5000],
            "--counts" => {
                counts = args
                    .get(i + 1)
                    .ok_or("--counts needs a value")?
                    .split(',')
                    .map(|v| v.parse().map_err(|_| format!("bad count {v}")))
                    .collect::<Result<_, String>>()?;
                i += 1;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; use --quick or --counts N,N"
                ))
            }
        }
        i += 1;
    }
    if counts.iter().any(|&n| n == 0 || n > 19_900) {
        return Err("counts must be 1..=19900 (the fd hard limit is 20 000 per process)".into());
    }
    ensure_tools(&[("nginx", "nginx"), ("taskset", "util-linux")])?;
    let bins = build(true)?;
    let mut report = Report::new("conns");
    report.notes.push(format!("machine: {}", machine()));
    report.notes.push(format!(
        "fresh server per count, 1 worker pinned to CPU 0, one warm-up request; client in a \
         separate process (anon_loadgen::hold) from {SOURCES}, one GET /plaintext per \
         connection then idle; figure = (server RSS with N idle − RSS before) ÷ N, RSS of the \
         server's process tree (nginx: master + worker), read 1 s after set-up"
    ));
    report
        .notes
        .push(format!("load average at start: {}", loadavg()));
    let mut kinds = vec![
        Kind::Anon(AnonFlags::DEFAULTS),
        Kind::May,
        Kind::Hyper(None),
    ];
    if on_path("nginx") {
        kinds.push(Kind::Nginx);
    } else {
        report.notes.push("nginx: not installed, missing".into());
    }
    let largest = counts.iter().copied().max().unwrap_or(0);
    for kind in &kinds {
        if let (Kind::Anon(_), Err(why)) = (kind, &bins.hello) {
            report.notes.push(format!("anon (hello): missing — {why}"));
            for &n in &counts {
                report.rows.push(Row {
                    metric: format!("RSS per idle connection, {n} connections"),
                    contender: kind.name(),
                    median: f64::NAN,
                    rounds: Vec::new(),
                    unit: "bytes (missing: hello not built yet)".into(),
                    goal: (n == largest).then(|| "≤ 1024 bytes".into()),
                });
            }
            continue;
        }
        for &n in &counts {
            let server = Server::start(kind, &bins, 18_400)?;
            let (held, failed, before, after) = measure(&server, n)?;
            drop(server);
            let per = if held > 0 {
                (after.saturating_sub(before) as f64 * 1024.0) / held as f64
            } else {
                f64::NAN
            };
            eprintln!(
                "{} {n}: held {held} (failed {failed}), RSS {before} -> {after} KiB, {per:.0} bytes/conn",
                kind.name()
            );
            let unit = if failed > 0 {
                format!("bytes ({held} held, {failed} failed)")
            } else {
                "bytes".into()
            };
            report.rows.push(Row {
                metric: format!("RSS per idle connection, {n} connections"),
                contender: kind.name(),
                median: per,
                rounds: vec![per],
                unit,
                goal: (n == largest).then(|| "≤ 1024 bytes".into()),
            });
            report.rows.push(Row {
                metric: format!("server RSS with {n} idle connections"),
                contender: kind.name(),
                median: after as f64,
                rounds: vec![before as f64, after as f64],
                unit: "KiB (rounds: before, with)".into(),
                goal: None,
            });
        }
    }
    report
        .notes
        .push(format!("load average at end: {}", loadavg()));
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}
