//! `anon-bench`: the benchmark suites behind `cargo xtask bench SUITE`.
//!
//! Every suite compares Anon with its named peers side by side in one run (interleaved
//! rounds, medians), prints a Markdown table for `BENCHMARKS.md` and writes
//! `target/bench/<suite>.json`. Benchmarks are never tests: nothing here gates CI.

#![forbid(unsafe_code)]

use anon_bench::SUITES;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("help");
    if let Some((_, _, f)) = SUITES.iter().find(|(n, _, _)| *n == name) {
        return match f(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("anon-bench {name}: error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if name != "help" {
        eprintln!("anon-bench: unknown suite `{name}`");
    }
    eprintln!("suites:");
    for (n, what, _) in SUITES {
        eprintln!("  {n:10} {what}");
    }
    if name == "help" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
