//! Integration tests of the example programs: each is started as a real process and
//! exercised over loopback.

mod drain;
mod echo;
mod fdlimit;
mod hello;
mod memory;
mod overload;
mod pizza;
mod reactor_echo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long any single network operation of a test may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Tests that load the machine (many connections, CPU spinning, timing comparisons) run
/// one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

pub(crate) fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running example server; killed on drop unless it exited.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) admin: Option<SocketAddr>,
}

impl Proc {
    /// Starts example `bin` with `args` (plus `--port 0`) and reads the
    /// `NAME listening on ADDR` line (and `NAME admin on ADDR` when `--admin-port` is
    /// given).
    pub(crate) fn start(bin: &str, name: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(bin)
            .args(["--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut out = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("first line of stdout");
        let prefix = format!("{name} listening on ");
        let addr = line
            .trim()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        let admin = args.contains(&"--admin-port").then(|| {
            let mut line = String::new();
            out.read_line(&mut line).expect("admin line");
            line.trim()
                .strip_prefix(&format!("{name} admin on "))
                .unwrap_or_else(|| panic!("unexpected admin line {line:?}"))
                .parse()
                .expect("admin address")
        });
        Proc { child, addr, admin }
    }

    /// Starts `hello` with queue-delay shedding off (`--queue-delay-ms 0`) unless `args`
    /// set it: that policy answers 503 whenever the run queue waits past 5 ms, which a
    /// loaded CI machine running tests in parallel can cause at any time. Tests of
    /// shedding pass their own `--queue-delay-ms` (the last occurrence of a flag wins).
    pub(crate) fn hello(args: &[&str]) -> Proc {
        let mut all = vec!["--queue-delay-ms", "0"];
        all.extend_from_slice(args);
        Proc::start(env!("CARGO_BIN_EXE_hello"), "hello", &all)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size, bytes (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        let kib: u64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kib * 1024
    }

    /// CPU time used so far (user + system), in clock ticks (1/100 s on Linux).
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = &s[s.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// The sum of the admin listener's `/metrics` samples named `name` (all label sets).
    pub(crate) fn metric(&self, name: &str) -> u64 {
        let admin = self.admin.expect("started with --admin-port");
        let r = request(admin, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let body = String::from_utf8(r.body).unwrap();
        let values: Vec<f64> = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect();
        assert!(!values.is_empty(), "metric {name} not found in\n{body}");
        values.iter().sum::<f64>() as u64
    }

    /// Sends `signal` and waits (bounded) for a successful exit.
    pub(crate) fn stop(self, signal: anon_reactor::Signal) {
        anon_reactor::PidFd::open(self.pid())
            .unwrap()
            .send_signal(signal)
            .unwrap();
        self.stop_exited();
    }

    /// Waits (bounded) for the process to exit, successfully.
    pub(crate) fn stop_exited(mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "exit status {st:?}");
                return;
            }
            assert!(Instant::now() < deadline, "no exit within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Reads one `Content-Length`-framed response from `s`.
pub(crate) fn read_reply(s: &mut impl Read) -> std::io::Result<Reply> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            // A signal (the tests start and stop servers) may interrupt a blocking read.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        buf.push(byte[0]);
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("head too long"));
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .ok_or_else(|| std::io::Error::other(format!("no Content-Length in {head:?}")))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(Reply { status, head, body })
}

/// One request on a fresh connection.
pub(crate) fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut s = connect(addr);
    s.write_all(raw.as_bytes()).expect("write request");
    read_reply(&mut s).expect("read reply")
}

pub(crate) fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
}

/// Panics with a clear message if a tool the tests drive is missing.
pub(crate) fn need_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed; run `cargo xtask deps` (it installs curl and wrk)"
    );
}
