//! `cargo xtask`: the project's automation, so that a developer runs exactly what CI runs.
//!
//! Each CI step is one subcommand; `ci` runs them all in order and stops at the first
//! failure. Run `cargo xtask help` for the list.

#![forbid(unsafe_code)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

type Result<T = ()> = std::result::Result<T, String>;

/// A CI step: its name and the function that runs it.
type Step = (&'static str, fn() -> Result);

const HELP: &str = "\
cargo xtask <command> [args]

CI steps (each one is exactly what `ci` runs):
  fmt            cargo fmt --check on the workspace, xtask and fuzz crates
  clippy         clippy on all targets with -D warnings
  test           every test in the workspace (unit, integration, doc)
  doc            cargo doc with warnings denied
  loom           the loom models (release, --cfg anon_loom, small bounds)
  fuzz           build the fuzz targets and replay the committed corpus (stable)
  smoke          10 s open-loop load (anon-loadgen) against `hello`; counts must add up
  deps           install the Debian tools the tests need, when missing (apt-get)
  ci             all of the above, in order: deps fmt clippy test doc loom fuzz smoke

Other:
  run NAME [-- ARGS]   build example NAME in release mode and run it
  bench SUITE [ARGS]   run a benchmark suite (release); `bench help` lists them
  fuzz-run TARGET [SECS] [ARGS]  fuzz one target with cargo +nightly fuzz (needs cargo-fuzz)
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{HELP}");
        return ExitCode::FAILURE;
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "fmt" => fmt(),
        "clippy" => clippy(),
        "test" => test(),
        "doc" => doc(),
        "loom" => loom(),
        "fuzz" => fuzz(),
        "deps" => deps(),
        "ci" => ci(),
        "run" => run_example(rest),
        "bench" => bench(rest),
        "smoke" => smoke(),
        "fuzz-run" => fuzz_run(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`; try `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's manifest directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, echoing it first; a non-zero exit is an error naming the command.
fn run(mut cmd: Command) -> Result {
    eprintln!("$ {}", describe(&cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(&cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed with {status}", describe(&cmd)))
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn ci() -> Result {
    let steps: [Step; 8] = [
        ("deps", deps),
        ("fmt", fmt),
        ("clippy", clippy),
        ("test", test),
        ("doc", doc),
        ("loom", loom),
        ("fuzz", fuzz),
        ("smoke", smoke),
    ];
    let start = Instant::now();
    for (name, step) in steps {
        let t = Instant::now();
        eprintln!("==> xtask {name}");
        step().map_err(|e| format!("step `{name}` failed: {e}"))?;
        eprintln!("==> xtask {name}: ok in {:.1?}", t.elapsed());
    }
    eprintln!("==> xtask ci: all steps passed in {:.1?}", start.elapsed());
    Ok(())
}

fn fmt() -> Result {
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    if has_fuzz_crate() {
        let mut c = cargo();
        c.args([
            "fmt",
            "--all",
            "--check",
            "--manifest-path",
            "fuzz/Cargo.toml",
        ]);
        run(c)?;
    }
    Ok(())
}

fn clippy() -> Result {
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)
}

fn test() -> Result {
    let mut c = cargo();
    c.args(["test", "--workspace", "--locked"]);
    run(c)
}

fn doc() -> Result {
    let mut c = cargo();
    c.args(["doc", "--workspace", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(c)
}

/// Crates with a `tests/loom.rs` model file.
fn loom_crates() -> Result<Vec<String>> {
    let mut out = Vec::new();
    let dir = root().join("crates");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().join("tests/loom.rs").is_file() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn loom() -> Result {
    let crates = loom_crates()?;
    if crates.is_empty() {
        eprintln!("xtask loom: no crate has tests/loom.rs yet; nothing to model");
        return Ok(());
    }
    let mut c = cargo();
    c.args(["test", "--release", "--locked", "--test", "loom"]);
    for k in &crates {
        c.args(["-p", k]);
    }
    // A separate target dir: the cfg changes every crate's build, so sharing would
    // throw away the normal build each time.
    c.args(["--target-dir", "target/loom"])
        .env("RUSTFLAGS", "--cfg anon_loom")
        .env(
            "LOOM_MAX_PREEMPTIONS",
            env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into()),
        );
    run(c)
}

fn has_fuzz_crate() -> bool {
    root().join("fuzz/Cargo.toml").is_file()
}

/// Names of the fuzz targets (`fuzz/fuzz_targets/*.rs`).
fn fuzz_targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = p.file_stem() {
                out.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Builds every fuzz target on stable (no sanitizer) and replays its committed corpus.
fn fuzz() -> Result {
    let targets = fuzz_targets()?;
    if !has_fuzz_crate() || targets.is_empty() {
        eprintln!("xtask fuzz: no fuzz targets yet; nothing to replay");
        return Ok(());
    }
    // Stable, no sanitizer: libfuzzer-sys still builds libFuzzer (C++) and links it, so
    // each binary replays the files it is given. The target dir is pinned because the
    // binaries are looked up there (a CARGO_TARGET_DIR in the environment would move
    // them).
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--locked",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--bins",
        "--target-dir",
        "fuzz/target",
    ])
    .env_remove("CARGO_TARGET_DIR");
    run(c)?;
    for t in targets {
        let corpus = root().join("fuzz/corpus").join(&t);
        if !corpus.is_dir() {
            return Err(format!(
                "fuzz target `{t}` has no committed seed corpus at {}",
                corpus.display()
            ));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
            .map_err(|e| format!("{}: {e}", corpus.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("fuzz corpus {} is empty", corpus.display()));
        }
        let bin = root().join("fuzz/target/release").join(&t);
        // libFuzzer given files (not directories) runs each input once and exits.
        for chunk in files.chunks(500) {
            let mut c = Command::new(&bin);
            c.current_dir(root()).args(chunk);
            c.stdout(std::process::Stdio::null());
            c.stderr(std::process::Stdio::null());
            let status = c
                .status()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            if !status.success() {
                // Re-run loudly to show which input failed.
                let mut c = Command::new(&bin);
                c.current_dir(root()).args(chunk);
                let _ = c.status();
                return Err(format!("fuzz target `{t}` failed on its corpus ({status})"));
            }
        }
        eprintln!(
            "xtask fuzz: {t}: replayed {} corpus inputs, no failure",
            files.len()
        );
    }
    Ok(())
}

/// Fuzzes one target with cargo-fuzz on nightly, one process on one core. New inputs go
/// to `fuzz/corpus-grown/TARGET` (ignored by git); the committed seeds in
/// `fuzz/corpus/TARGET` are read, never written. No sanitizer (the fuzzed crates forbid
/// `unsafe`), debug assertions on (overflow checks). Extra arguments go to libFuzzer.
fn fuzz_run(args: &[String]) -> Result {
    let Some(target) = args.first() else {
        return Err("usage: cargo xtask fuzz-run TARGET [SECONDS] [LIBFUZZER-ARGS]".into());
    };
    let secs = args.get(1).map(String::as_str).unwrap_or("60");
    let grown = root().join("fuzz/corpus-grown").join(target);
    std::fs::create_dir_all(&grown).map_err(|e| format!("{}: {e}", grown.display()))?;
    let seeds = root().join("fuzz/corpus").join(target);
    let mut c = Command::new("cargo");
    c.current_dir(root().join("fuzz"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .args([
            "+nightly",
            "fuzz",
            "run",
            "--sanitizer",
            "none",
            "--debug-assertions",
            target,
        ])
        .arg(&grown)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .args(args.iter().skip(2));
    run(c)
}

/// Debian tools the test suite drives, as (binary, package).
const TOOLS: &[(&str, &str)] = &[("curl", "curl"), ("wrk", "wrk")];

fn deps() -> Result {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(bin, _)| !on_path(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        eprintln!("xtask deps: every tool the tests need is installed");
        return Ok(());
    }
    let mut c = Command::new("apt-get");
    c.arg("update").env("DEBIAN_FRONTEND", "noninteractive");
    run(c)?;
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(c)
}

fn on_path(bin: &str) -> bool {
    env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).any(|p| p.join(bin).is_file()))
        .unwrap_or(false)
}

fn run_example(args: &[String]) -> Result {
    let Some(name) = args.first() else {
        return Err("usage: cargo xtask run NAME [-- ARGS]".into());
    };
    let mut rest = &args[1..];
    if rest.first().is_some_and(|a| a == "--") {
        rest = &rest[1..];
    }
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "--locked",
        "--package",
        "anon-examples",
        "--bin",
        name,
        "--",
    ])
    .args(rest);
    run(c)
}

fn bench(args: &[String]) -> Result {
    if args.is_empty() {
        return Err(
            "usage: cargo xtask bench SUITE [ARGS]; `cargo xtask bench help` lists suites".into(),
        );
    }
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "--locked",
        "--package",
        "anon-bench",
        "--",
    ])
    .args(args);
    run(c)
}

/// A 10-second open-loop run of `anon-loadgen` against the `hello` example: every
/// scheduled request must end in exactly one outcome (2xx, 503, other, timeout, error),
/// and some must succeed. Builds both in release mode first.
fn smoke() -> Result {
    const RATE: u64 = 1000;
    const SECS: u64 = 10;
    let hello_src = root().join("examples/src/bin/hello.rs");
    if !hello_src.is_file() {
        return Err(format!(
            "smoke: the `hello` example (issue 6) does not exist yet ({} is missing); \
             nothing to run the load generator against",
            hello_src.display()
        ));
    }
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "anon-examples",
        "--bin",
        "hello",
        "-p",
        "anon-loadgen",
        "--bin",
        "anon-loadgen",
    ]);
    run(c)?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root().join(d) })
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("release");
    // A free port: bind to port 0, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("smoke: no free port: {e}"))?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut hello = Command::new(bin.join("hello"))
        .args(["--port", &port.to_string(), "--workers", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("smoke: cannot start hello: {e}"))?;
    let result = smoke_against(&bin, &addr, RATE, SECS);
    let _ = hello.kill();
    let _ = hello.wait();
    result
}

fn smoke_against(bin: &Path, addr: &str, rate: u64, secs: u64) -> Result {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    while std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_millis(100))
        .is_err()
    {
        if Instant::now() > deadline {
            return Err(format!("smoke: hello did not listen on {addr} within 10 s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let json = root().join("target/smoke-loadgen.json");
    let mut c = Command::new(bin.join("anon-loadgen"));
    c.args([
        "run",
        "--addr",
        addr,
        "--path",
        "/plaintext",
        "--connections",
        "32",
    ])
    .args([
        "--rate",
        &rate.to_string(),
        "--duration",
        &format!("{secs}s"),
    ])
    .arg("--json")
    .arg(&json);
    eprintln!("$ {}", describe(&c));
    let out = c
        .output()
        .map_err(|e| format!("smoke: cannot run anon-loadgen: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    eprint!("{err}");
    if !out.status.success() {
        return Err(format!("smoke: anon-loadgen failed ({})", out.status));
    }
    // "requests N = 2xx A + 503 B + other C + timeout D + error E; ..."
    let line = err
        .lines()
        .find(|l| l.starts_with("requests "))
        .ok_or("smoke: anon-loadgen printed no summary")?;
    let head = line.split(';').next().unwrap_or("");
    let nums: Vec<u64> = head
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [total, ok, busy, other, timeout, error] = nums[..] else {
        return Err(format!("smoke: cannot read the summary {line:?}"));
    };
    if total != rate * secs {
        return Err(format!(
            "smoke: {total} requests sent, the schedule has {}",
            rate * secs
        ));
    }
    if ok + busy + other + timeout + error != total {
        return Err(format!("smoke: outcome counts do not add up: {head}"));
    }
    if ok == 0 {
        return Err(format!("smoke: no request succeeded: {head}"));
    }
    eprintln!("xtask smoke: {total} requests, outcome counts add up ({head})");
    Ok(())
}
