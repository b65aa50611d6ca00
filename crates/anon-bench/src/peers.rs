//! `peers`: Anon's `hello` side by side with may_minihttp, hyper, actix-web and nginx on
//! `GET /plaintext`, driven by wrk (closed loop: peak throughput).
//!
//! Method (see `/work/shared/NOTES.md`): each server runs with 1 worker pinned to CPU 0,
//! wrk pinned to CPU 1 (`taskset -c 1 wrk -t1 -c64`), plain keep-alive and 16-deep
//! pipelining, interleaved rounds, medians. Per run: requests/s, p50/p99 from wrk's RAW
//! histogram (a Lua `done()` undoes wrk's coordinated-omission correction, which uses the
//! wrong interval when pipelining), server CPU µs per request (user+sys of the server's
//! process tree from `/proc/PID/stat`, before/after, ÷ requests). Then one short
//! `strace -c -f` sample per server for syscalls per request.
//!
//! This module also holds what the `overload` and `conns` suites share: starting and
//! measuring contenders, installing the Debian tools, building the peers and `hello`.

use crate::report::{median, workspace_root, Report, Row};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// CPU the servers run on.
pub(crate) const SERVER_CPU: usize = 0;
/// CPU the load (wrk or our generator) runs on.
pub(crate) const LOAD_CPU: usize = 1;

/// What Anon's contender line says while issue 6's example is missing.
pub(crate) const HELLO_MISSING: &str = "anon: hello example not built yet";

/// The admission flags `hello` is started with; `AnonFlags::DEFAULTS` gives none (its
/// defaults: adaptive admission on under the default ceiling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnonFlags {
    /// `--max-inflight K` (the hard ceiling, for the whole server).
    pub(crate) max_inflight: Option<usize>,
    /// `--adaptive on|off`; `None` leaves hello's default.
    pub(crate) adaptive: Option<bool>,
}

impl AnonFlags {
    /// No admission flag: what a new user runs.
    pub(crate) const DEFAULTS: AnonFlags = AnonFlags {
        max_inflight: None,
        adaptive: None,
    };

    /// A fixed, tuned limit: `--max-inflight K --adaptive off`.
    pub(crate) fn fixed(k: usize) -> AnonFlags {
        AnonFlags {
            max_inflight: Some(k),
            adaptive: Some(false),
        }
    }
}

/// A server that can be measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Anon's `hello` example with these admission flags.
    Anon(AnonFlags),
    /// may_minihttp.
    May,
    /// hyper, unbounded, or behind tower LoadShed + ConcurrencyLimit(K).
    Hyper(Option<usize>),
    /// actix-web 4.
    Actix,
    /// nginx from Debian, `return 200`.
    Nginx,
}

impl Kind {
    /// Display name.
    pub(crate) fn name(&self) -> String {
        match self {
            Kind::Anon(f) if *f == AnonFlags::DEFAULTS => "anon (hello, defaults)".into(),
            Kind::Anon(f) => {
                let mut s = String::from("anon (hello");
                if let Some(k) = f.max_inflight {
                    s.push_str(&format!(", max-inflight {k}"));
                }
                match f.adaptive {
                    Some(true) => s.push_str(", adaptive on"),
                    Some(false) => s.push_str(", adaptive off"),
                    None => {}
                }
                s.push(')');
                s
            }
            Kind::May => "may_minihttp 0.1".into(),
            Kind::Hyper(None) => "hyper 1 (unbounded)".into(),
            Kind::Hyper(Some(k)) => format!("hyper 1 + tower LoadShed/ConcurrencyLimit({k})"),
            Kind::Actix => "actix-web 4".into(),
            Kind::Nginx => "nginx (Debian)".into(),
        }
    }
}

/// Where the binaries are: peers, `hello` (if it exists) and nginx.
#[derive(Debug)]
pub(crate) struct Bins {
    peers: PathBuf,
    /// `Ok(path)` or why Anon is missing.
    pub(crate) hello: Result<PathBuf, String>,
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// The main workspace's target directory (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Builds the peer servers (a no-op when fresh) and, if issue 6's example exists, `hello`.
pub(crate) fn build(need_peers: bool) -> Result<Bins, String> {
    let root = workspace_root();
    let peers_dir = root.join("target/peers");
    if need_peers {
        eprintln!(
            "building the peer servers (crates/anon-bench/peers, release; minutes the first time)"
        );
        let status = cargo()
            .args(["build", "--release", "--locked", "--manifest-path"])
            .arg(root.join("crates/anon-bench/peers/Cargo.toml"))
            .arg("--target-dir")
            .arg(&peers_dir)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building the peers failed ({status})"));
        }
    }
    let hello = if root.join("examples/src/bin/hello.rs").is_file()
        || root.join("examples/src/bin/hello/main.rs").is_file()
    {
        eprintln!("building hello (cargo build --release -p anon-examples --bin hello)");
        let out = cargo()
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "anon-examples",
                "--bin",
                "hello",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        let bin = target_dir().join("release/hello");
        if out.status.success() && bin.is_file() {
            Ok(bin)
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = err.lines().rev().take(3).collect();
            Err(format!(
                "anon: hello example did not build: {}",
                last.join(" / ")
            ))
        }
    } else {
        Err(HELLO_MISSING.to_string())
    };
    if let Err(why) = &hello {
        eprintln!("{why}");
    }
    Ok(Bins {
        peers: peers_dir.join("release"),
        hello,
    })
}

/// True when `bin` is an executable on PATH.
pub(crate) fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(bin).is_file()
}

/// Installs the Debian packages providing the missing `(binary, package)` tools with
/// `apt-get install -y` (needs root), so the suite also works on a fresh machine.
pub(crate) fn ensure_tools(tools: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(b, _)| !on_path(b))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {} with apt-get", missing.join(" "));
    let run = |args: &[&str]| -> Result<(), String> {
        let st = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!(
                "`apt-get {}` failed ({st}); install {} by hand (needs root)",
                args.join(" "),
                missing.join(" ")
            ))
        }
    };
    run(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    run(&args)
}

/// Whether this machine has the two CPUs the method pins to. Counts the machine's CPUs,
/// not this process's affinity (which `pin_self` narrows to one).
pub(crate) fn can_pin() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count() >= 2)
        .unwrap_or(false)
}

/// `program` under `taskset -c CPU` when pinning is possible.
pub(crate) fn pinned(cpu: usize, program: &Path) -> Command {
    pinned_to(&cpu.to_string(), program)
}

/// `program` under `taskset -c CPUS` (a taskset CPU list, e.g. `0-1`) when pinning is
/// possible.
pub(crate) fn pinned_to(cpus: &str, program: &Path) -> Command {
    if can_pin() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpus).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The machine's CPU count (not this process's affinity).
pub(crate) fn machine_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
        .max(1)
}

/// The CPUs a server with `workers` workers is pinned to: `0` .. `workers - 1`.
pub(crate) fn server_cpus(workers: usize) -> String {
    if workers <= 1 {
        SERVER_CPU.to_string()
    } else {
        format!("{SERVER_CPU}-{}", SERVER_CPU + workers - 1)
    }
}

/// Scheduling priority of this process's autogroup during a measurement.
///
/// Linux groups a session's processes into an autogroup and shares each CPU fairly
/// between groups, whatever the processes' own nice values; on a machine shared with
/// other work, a server and a load generator at equal weight lose the CPU for
/// milliseconds at a time, and an open-loop generator then falls behind its schedule.
/// The suites therefore raise their own autogroup (the bench, its servers, wrk) to nice
/// -20 — other work keeps about 1 % of the two CPUs while a suite measures — and restore
/// the previous value when done (the guard's drop).
pub(crate) const AUTOGROUP_NICE: i32 = -20;

/// Restores the autogroup's previous nice value on drop.
pub(crate) struct Priority {
    previous: Option<i32>,
}

/// Raises this session's autogroup to [`AUTOGROUP_NICE`] (needs root; without it the
/// suites run at normal priority and say so).
pub(crate) fn raise_priority() -> Priority {
    let previous = std::fs::read_to_string("/proc/self/autogroup")
        .ok()
        .and_then(|s| s.split_whitespace().last().and_then(|v| v.parse().ok()));
    let raised = previous.is_some()
        && std::fs::write("/proc/self/autogroup", AUTOGROUP_NICE.to_string()).is_ok();
    if !raised {
        eprintln!("note: could not raise the autogroup priority; measuring at normal priority");
    }
    Priority {
        previous: if raised { previous } else { None },
    }
}

impl Drop for Priority {
    fn drop(&mut self) {
        if let Some(p) = self.previous {
            let _ = std::fs::write("/proc/self/autogroup", p.to_string());
        }
    }
}

/// Sets this process's (every thread's) CPU affinity to `cpus`, a taskset CPU list
/// (`1`, `0-1`), so the in-process generator runs there.
pub(crate) fn pin_self_to(cpus: &str) -> Result<(), String> {
    if !can_pin() {
        return Ok(());
    }
    let st = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("taskset -p failed ({st})"))
    }
}

/// How a contender is started beyond its [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Launch {
    /// Worker threads, pinned to CPUs 0 .. workers - 1 (`hello --workers N --pin`); the
    /// peers support only 1.
    pub(crate) workers: usize,
    /// `hello --admin-port P` (metrics at `/metrics`); ignored by the peers.
    pub(crate) admin_port: Option<u16>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            workers: 1,
            admin_port: None,
        }
    }
}

/// A running contender.
pub(crate) struct Server {
    pub(crate) kind: Kind,
    pub(crate) addr: SocketAddr,
    /// The admin listener (`/metrics`), when started with one.
    pub(crate) admin: Option<SocketAddr>,
    child: Child,
    _dir: Option<TempDir>,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile 20000;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 20000; use epoll; }}\n\
         http {{\n  access_log off;\n  keepalive_timeout 600s;\n  keepalive_requests 100000000;\n\
           client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port} backlog=4096;\n\
             location = /plaintext {{ default_type text/plain; return 200 'Hello, World!'; }}\n\
           }}\n}}\n"
    )
}

impl Server {
    /// Starts `kind` on `port`, pinned to [`SERVER_CPU`], and waits until it accepts.
    pub(crate) fn start(kind: &Kind, bins: &Bins, port: u16) -> Result<Server, String> {
        Server::start_with(kind, bins, port, Launch::default())
    }

    /// Starts `kind` on `port` as `launch` says (workers pinned to CPUs 0 .. N - 1, an
    /// admin port for `hello`), and waits until it accepts.
    pub(crate) fn start_with(
        kind: &Kind,
        bins: &Bins,
        port: u16,
        launch: Launch,
    ) -> Result<Server, String> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Err(format!("port {port} is already in use"));
        }
        let workers = launch.workers.max(1);
        if workers > 1 && !matches!(kind, Kind::Anon(_)) {
            return Err(format!("{} runs only 1 worker", kind.name()));
        }
        let p = port.to_string();
        let mut dir = None;
        let mut admin = None;
        let mut cmd = match kind {
            Kind::Anon(f) => {
                let bin = bins.hello.as_ref().map_err(Clone::clone)?;
                let mut c = pinned_to(&server_cpus(workers), bin);
                // Room for the `conns` suite's 19 900 connections (the fd limit is 20 000),
                // kept open however long their set-up takes (the peers have no idle
                // timeout either).
                c.args(["--port", &p, "--workers", &workers.to_string()]);
                c.args(["--max-conns", "19990", "--idle-timeout-ms", "600000"]);
                if workers > 1 && can_pin() {
                    // Worker i on CPU i, inside the taskset above.
                    c.arg("--pin");
                }
                if let Some(k) = f.max_inflight {
                    c.args(["--max-inflight", &k.to_string()]);
                }
                if let Some(on) = f.adaptive {
                    c.args(["--adaptive", if on { "on" } else { "off" }]);
                }
                if let Some(a) = launch.admin_port {
                    c.args(["--admin-port", &a.to_string()]);
                    admin = Some(SocketAddr::from(([127, 0, 0, 1], a)));
                }
                c
            }
            Kind::May => {
                let mut c = pinned(SERVER_CPU, &bins.peers.join("peer-may-minihttp"));
                c.args(["--port", &p]);
                c
            }
            Kind::Hyper(k) => {
                let mut c = pinned(SERVER_CPU, &bins.peers.join("peer-hyper"));
                c.args(["--port", &p]);
                if let Some(k) = k {
                    c.args(["--max-inflight", &k.to_string()]);
                }
                c
            }
            Kind::Actix => {
                let mut c = pinned(SERVER_CPU, &bins.peers.join("peer-actix-web"));
                c.args(["--port", &p]);
                c
            }
            Kind::Nginx => {
                let d = std::env::temp_dir()
                    .join(format!("anon-bench-nginx-{}-{port}", std::process::id()));
                std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
                let conf = d.join("nginx.conf");
                std::fs::write(&conf, nginx_conf(&d, port)).map_err(|e| e.to_string())?;
                let nginx = if Path::new("/usr/sbin/nginx").is_file() {
                    PathBuf::from("/usr/sbin/nginx")
                } else {
                    PathBuf::from("nginx")
                };
                let mut c = pinned(SERVER_CPU, &nginx);
                c.arg("-p").arg(&d).arg("-c").arg(&conf);
                dir = Some(TempDir(d));
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
        let mut s = Server {
            kind: kind.clone(),
            addr,
            admin,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                // Let the listener settle (nginx forks its worker after binding).
                std::thread::sleep(Duration::from_millis(200));
                return Ok(s);
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                return Err(format!("{} exited at start ({st})", kind.name()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {addr} within 10 s",
                    kind.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// PID of the process started (with `taskset -c`, taskset execs the server in place).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's process and its descendants (nginx: master + worker).
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut out = vec![self.pid()];
        let mut i = 0;
        while i < out.len() && out.len() < 64 {
            let p = out[i];
            if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
                for t in tasks.flatten() {
                    if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                        out.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// user+sys CPU time of the process tree, in clock ticks (100 Hz on Linux).
    pub(crate) fn cpu_ticks(&self) -> u64 {
        self.pids().iter().map(|p| proc_cpu_ticks(*p)).sum()
    }

    /// Resident set of the process tree, KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.pids().iter().map(|p| proc_rss_kib(*p)).sum()
    }

    /// Sends a signal by name (`STOP`, `CONT`) to the whole tree.
    pub(crate) fn signal(&self, sig: &str) -> Result<(), String> {
        for p in self.pids() {
            let st = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(p.to_string())
                .status()
                .map_err(|e| format!("kill: {e}"))?;
            if !st.success() {
                return Err(format!("kill -{sig} {p} failed"));
            }
        }
        Ok(())
    }

    /// True while the server process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of one process (all its threads), clock ticks.
pub(crate) fn proc_cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_cpu_ticks(&s))
        .unwrap_or(0)
}

/// VmRSS of one process, KiB.
pub(crate) fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
pub(crate) fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Load average line, for the report notes.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine, for the report notes.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // The machine's CPUs, not this process's affinity (pinned suites see one).
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} × {cpu}, Linux {}", kernel.trim())
}

/// Checks a contender serves `path` with a 2xx before measuring it.
pub(crate) fn check_get(addr: SocketAddr, path: &str) -> Result<(), String> {
    use std::io::Write;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    if head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2") {
        Ok(())
    } else {
        Err(format!(
            "GET {path} answered {:?}",
            head.lines().next().unwrap_or("")
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The `peers` suite.

/// wrk Lua for pipelining: `args[1]` requests sent back to back per connection.
const WRK_PIPELINE: &str = r#"
local req = nil
init = function(args)
  local depth = tonumber(args[1] or "1") or 1
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, wrk.path) end
  req = table.concat(r)
end
request = function() return req end
"#;

/// wrk Lua `done()` printing raw latency percentiles (undoing wrk's correction).
///
/// Debian's wrk 4.1 gives Lua no access to its histogram's counts (`latency[i]` returns
/// `i`), so the counts are read through LuaJIT's FFI from wrk's `stats` struct
/// (`count, limit, min, max, data[]`: one count per microsecond). wrk has already
/// "corrected" them in place: for every recorded value n >= 2e it added a count at n-e,
/// n-2e, ... (while > e), with e = duration / (requests / connections). Hence, for m > e,
/// raw[m] = corrected[m] - corrected[m+e]; below that nothing changed. The line printed
/// carries the raw total, which must equal the request count.
const WRK_DONE: &str = r#"
local ffi = require("ffi")
ffi.cdef[[
typedef struct { uint64_t count; uint64_t limit; uint64_t min; uint64_t max; uint64_t data[?]; } anon_wrk_stats;
]]
done = function(summary, latency, requests)
  local st = ffi.cast("anon_wrk_stats**", latency)[0]
  local conns = tonumber(os.getenv("ANON_WRK_CONNS") or "0") or 0
  local n = summary.requests
  local e = 0
  if conns > 0 and math.floor(n / conns) > 0 then
    e = math.floor(summary.duration / math.floor(n / conns))
  end
  local lo, hi = tonumber(st.min), tonumber(st.max)
  local raw = {}
  local total = 0
  for v = lo, hi do
    local c = tonumber(st.data[v])
    if e > 0 and v > e and v + e <= hi then c = c - tonumber(st.data[v + e]) end
    if c < 0 then c = 0 end
    raw[v] = c
    total = total + c
  end
  local function pct(p)
    local want = total * p
    local acc = 0
    for v = lo, hi do
      acc = acc + raw[v]
      if acc >= want and acc > 0 then return v end
    end
    return hi
  end
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write
             + summary.errors.status + summary.errors.timeout
  io.write(string.format("ANONBENCH %d %d %d %d %d %d\n", n, summary.duration, total,
    pct(0.5), pct(0.99), errs))
end
"#;

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
struct WrkRun {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
    errors: u64,
}

/// The wrk scripts: plain (only `done()`, so wrk stays static) and pipelined.
struct Scripts {
    plain: PathBuf,
    pipelined: PathBuf,
}

fn wrk(
    server: &Server,
    scripts: &Scripts,
    secs: u64,
    depth: usize,
    tck: f64,
) -> Result<WrkRun, String> {
    let script = if depth > 1 {
        &scripts.pipelined
    } else {
        &scripts.plain
    };
    let url = format!("http://{}/plaintext", server.addr);
    let before = server.cpu_ticks();
    let mut c = pinned(LOAD_CPU, Path::new("wrk"));
    c.args([
        "-t1",
        "-c64",
        &format!("-d{secs}s"),
        "--timeout",
        "5s",
        "-s",
    ])
    .arg(script)
    .arg(&url)
    .arg("--")
    .arg(depth.to_string())
    .env("ANON_WRK_CONNS", "64");
    let out = c.output().map_err(|e| format!("wrk: {e}"))?;
    let after = server.cpu_ticks();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("ANONBENCH "))
        .ok_or_else(|| {
            format!(
                "wrk printed no result: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() != 6 {
        return Err(format!("bad wrk result line {line:?}"));
    }
    let (n, dur_us, raw_total) = (v[0], v[1], v[2]);
    // wrk records one latency per connection round trip: per pipelined batch.
    let samples = n / depth as f64;
    if n > 0.0 && (raw_total - samples).abs() > samples * 0.01 + 64.0 {
        eprintln!("warning: raw histogram holds {raw_total} values for {samples} round trips");
    }
    let cpu_us = (after.saturating_sub(before)) as f64 / tck * 1e6;
    Ok(WrkRun {
        rps: n / (dur_us / 1e6),
        p50_us: v[3],
        p99_us: v[4],
        cpu_us_per_req: if n > 0.0 { cpu_us / n } else { f64::NAN },
        errors: v[5] as u64,
    })
}

/// `strace -c -f -p PID` attached while wrk runs `secs`: syscalls per request.
fn strace_sample(server: &Server, script: &Scripts, secs: u64) -> Result<f64, String> {
    let out_file =
        std::env::temp_dir().join(format!("anon-bench-strace-{}.txt", std::process::id()));
    let mut st = Command::new("strace");
    st.args(["-c", "-f", "-o"]).arg(&out_file);
    for p in server.pids() {
        st.arg("-p").arg(p.to_string());
    }
    let mut strace = st
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("strace: {e}"))?;
    std::thread::sleep(Duration::from_millis(500));
    let r = wrk(server, script, secs, 1, clk_tck());
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let r = r?;
    let text = std::fs::read_to_string(&out_file).map_err(|e| format!("strace output: {e}"))?;
    let _ = std::fs::remove_file(&out_file);
    let calls = strace_total_calls(&text)
        .ok_or_else(|| format!("no total line in strace output: {text}"))?;
    let requests = r.rps * secs as f64;
    Ok(if requests > 0.0 {
        calls / requests
    } else {
        f64::NAN
    })
}

/// The call count of `strace -c`'s "total" line (columns: % time, seconds, usecs/call,
/// calls, [errors], "total").
fn strace_total_calls(text: &str) -> Option<f64> {
    let total = text.lines().find(|l| l.trim_end().ends_with(" total"))?;
    total.split_whitespace().nth(3)?.parse().ok()
}

/// Parses the fields after the command name of a `/proc/PID/stat` line: utime + stime.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    let get = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(get(14)? + get(15)?)
}

struct PeersArgs {
    secs: u64,
    rounds: usize,
    strace_secs: u64,
}

fn parse_args(args: &[String]) -> Result<PeersArgs, String> {
    let mut a = PeersArgs {
        secs: 10,
        rounds: 3,
        strace_secs: 3,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                a.secs = 2;
                a.rounds = 1;
                a.strace_secs = 1;
            }
            "--secs" => {
                a.secs = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .ok_or("--secs N")?;
                i += 1;
            }
            "--rounds" => {
                a.rounds = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .ok_or("--rounds N")?;
                i += 1;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; use --quick, --secs N, --rounds N"
                ))
            }
        }
        i += 1;
    }
    if a.secs == 0 || a.secs > 60 || a.rounds == 0 || a.rounds > 9 {
        return Err("--secs must be 1..=60 and --rounds 1..=9".into());
    }
    Ok(a)
}

/// Entry point of `cargo xtask bench peers [--quick] [--secs N] [--rounds N]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let a = parse_args(args)?;
    ensure_tools(&[
        ("wrk", "wrk"),
        ("nginx", "nginx"),
        ("strace", "strace"),
        ("taskset", "util-linux"),
    ])?;
    let bins = build(true)?;
    let _priority = raise_priority();
    let tck = clk_tck();
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let script = Scripts {
        plain: dir.join("wrk-plain.lua"),
        pipelined: dir.join("wrk-pipelined.lua"),
    };
    std::fs::write(&script.plain, WRK_DONE).map_err(|e| e.to_string())?;
    std::fs::write(&script.pipelined, format!("{WRK_PIPELINE}{WRK_DONE}"))
        .map_err(|e| e.to_string())?;

    let mut report = Report::new("peers");
    report.notes.push(format!("machine: {}", machine()));
    report.notes.push(format!(
        "GET /plaintext (\"Hello, World!\"); each server 1 worker pinned to CPU {SERVER_CPU}; \
         `taskset -c {LOAD_CPU} wrk -t1 -c64 -d{}s`; autogroup nice {AUTOGROUP_NICE} while measuring; plain keep-alive and 16-deep pipelining; \
         {} interleaved round(s), medians",
        a.secs, a.rounds
    ));
    report.notes.push(
        "p50/p99: from wrk's raw histogram (Lua done() undoes its coordinated-omission \
         correction); pipelined, wrk times one round trip of a 16-request batch; server CPU: user+sys of the server's process tree from /proc ÷ requests; \
         syscalls/req: one `strace -c -f` sample per server (plain keep-alive, slowed by strace)"
            .into(),
    );
    report
        .notes
        .push(format!("load average at start: {}", loadavg()));

    let anon = Kind::Anon(AnonFlags::DEFAULTS);
    let mut kinds = vec![anon.clone(), Kind::May, Kind::Hyper(None), Kind::Actix];
    if on_path("nginx") {
        kinds.push(Kind::Nginx);
    } else {
        report.notes.push("nginx: not installed, missing".into());
    }
    let mut servers: Vec<Server> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        match Server::start(k, &bins, 18_200 + i as u16) {
            Ok(s) => {
                check_get(s.addr, "/plaintext").map_err(|e| format!("{}: {e}", k.name()))?;
                servers.push(s);
            }
            Err(e) if *k == anon => {
                eprintln!("{e}");
                report.notes.push(format!("anon: missing ({e})"));
            }
            Err(e) => return Err(e),
        }
    }

    // figures[server][mode] = rounds of WrkRun
    let modes = [(1usize, "plain keep-alive"), (16, "pipelined-16")];
    let mut figures: Vec<Vec<Vec<WrkRun>>> = vec![vec![Vec::new(); modes.len()]; servers.len()];
    for round in 0..a.rounds {
        for j in 0..servers.len() {
            let s = (j + round) % servers.len();
            for (m, (depth, mode)) in modes.iter().enumerate() {
                let r = wrk(&servers[s], &script, a.secs, *depth, tck)?;
                eprintln!(
                    "round {} {} {mode}: {:.0} req/s, p50 {} us, p99 {} us, {:.3} µs CPU/req, {} errors",
                    round + 1,
                    servers[s].kind.name(),
                    r.rps,
                    r.p50_us,
                    r.p99_us,
                    r.cpu_us_per_req,
                    r.errors
                );
                figures[s][m].push(r);
            }
        }
    }
    let mut syscalls = Vec::new();
    if on_path("strace") {
        for s in &servers {
            let v = strace_sample(s, &script, a.strace_secs).unwrap_or_else(|e| {
                eprintln!("strace sample of {}: {e}", s.kind.name());
                f64::NAN
            });
            eprintln!("{}: {v:.2} syscalls/request (strace sample)", s.kind.name());
            syscalls.push(v);
        }
    }
    let anon_missing = !servers.iter().any(|s| matches!(s.kind, Kind::Anon(_)));
    let row = |metric: &str, unit: &str, goal: Option<&str>, name: String, rounds: Vec<f64>| Row {
        metric: metric.to_string(),
        contender: name,
        median: median(&rounds),
        rounds,
        unit: unit.to_string(),
        goal: goal.map(str::to_string),
    };
    type Pick = fn(&WrkRun) -> f64;
    let metrics: [(&str, &str, Pick, [Option<&str>; 2]); 4] = [
        (
            "req/s",
            "req/s",
            |r| r.rps,
            [Some("≥ may_minihttp"), Some("≥ 1.15 × may_minihttp")],
        ),
        (
            "server CPU per request",
            "µs",
            |r| r.cpu_us_per_req,
            [Some("< may_minihttp"), Some("≤ 0.30 µs")],
        ),
        ("p50 latency (raw)", "µs", |r| r.p50_us, [None, None]),
        ("p99 latency (raw)", "µs", |r| r.p99_us, [None, None]),
    ];
    for (metric, unit, pick, goals) in metrics {
        for (m, (_, mode)) in modes.iter().enumerate() {
            if anon_missing {
                report.rows.push(Row {
                    metric: format!("{metric}, {mode}"),
                    contender: anon.name(),
                    median: f64::NAN,
                    rounds: Vec::new(),
                    unit: format!("{unit} (missing: hello not built yet)"),
                    goal: goals[m].map(str::to_string),
                });
            }
            for (s, srv) in servers.iter().enumerate() {
                let rounds: Vec<f64> = figures[s][m].iter().map(pick).collect();
                report.rows.push(row(
                    &format!("{metric}, {mode}"),
                    unit,
                    goals[m],
                    srv.kind.name(),
                    rounds,
                ));
            }
        }
    }
    for (s, srv) in servers.iter().enumerate() {
        if let Some(v) = syscalls.get(s) {
            report.rows.push(row(
                "syscalls per request (strace sample, plain)",
                "calls",
                None,
                srv.kind.name(),
                vec![*v],
            ));
        }
    }
    report
        .notes
        .push(format!("load average at end: {}", loadavg()));
    drop(servers);
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_total_line() {
        let out = "% time     seconds  usecs/call     calls    errors syscall\n\
------ ----------- ----------- --------- --------- ----------------\n\
 60.00    0.600000           2    300000           write\n\
 40.00    0.400000           1    300010        12 read\n\
------ ----------- ----------- --------- --------- ----------------\n\
100.00    1.000000           1    600010        12 total\n";
        assert_eq!(strace_total_calls(out), Some(600_010.0));
        assert_eq!(strace_total_calls("nothing"), None);
    }

    #[test]
    fn proc_stat_fields() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 1 2 3";
        assert_eq!(stat_cpu_ticks(line), Some(12));
        assert_eq!(stat_cpu_ticks("garbage"), None);
        // This process has a stat file with both fields.
        assert!(std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| stat_cpu_ticks(&s))
            .is_some());
    }

    #[test]
    fn nginx_config_names_the_port_and_payload() {
        let c = nginx_conf(Path::new("/tmp/x"), 18_201);
        assert!(c.contains("listen 127.0.0.1:18201"));
        assert!(c.contains("return 200 'Hello, World!'"));
        assert!(c.contains("worker_processes 1;"));
    }
}
