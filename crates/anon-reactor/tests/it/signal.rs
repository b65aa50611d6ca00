use crate::PATIENCE;
use anon_reactor::{Events, Interest, PidFd, Poll, Signal, Signals, Token};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Set in the child process that plays the signalled role.
const CHILD_ENV: &str = "ANON_REACTOR_SIGNAL_CHILD";
const RECEIVED: &str = "anon-reactor: SIGTERM received from";

/// The full libtest name of a test function in this module.
fn test_name(f: &str) -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, m)| m);
    format!("{module}::{f}")
}

/// Whether the thread whose `/proc/.../status` file is `path` blocks signal `sig`.
fn blocks(path: &std::path::Path, sig: i32) -> Result<bool, String> {
    let status = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .ok_or("no SigBlk line")?;
    let mask = u64::from_str_radix(mask.trim(), 16).map_err(|e| e.to_string())?;
    Ok(mask & (1 << (sig - 1)) != 0)
}

/// Whether every thread of this process blocks signal `sig`.
fn blocked_in_every_thread(sig: i32) -> Result<bool, String> {
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    let mut n = 0;
    for task in tasks {
        let path = task.map_err(|e| e.to_string())?.path().join("status");
        if !blocks(&path, sig)? {
            return Ok(false);
        }
        n += 1;
    }
    Ok(n > 0)
}

/// A process-directed SIGTERM becomes a readiness event of a `Signals` descriptor.
///
/// Runs in two roles. The parent (the normal test run) re-executes this test binary, with
/// only this test selected, through `env --block-signal=TERM` (GNU coreutils), so that the
/// child process starts with SIGTERM blocked in its main thread and every thread libtest
/// spawns inherits the mask: the default action (killing the process) can never run.
/// Once the child's mask shows SIGTERM blocked, the parent sends SIGTERM to the child
/// process (it stays pending while blocked); the child creates `Signals`, polls, and must
/// receive it with the parent as sender.
#[test]
fn sigterm_to_the_process_arrives_as_an_event() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_role();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let name = test_name("sigterm_to_the_process_arrives_as_an_event");
    let child = Command::new("env")
        .arg("--block-signal=TERM")
        .arg(&exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn env (GNU coreutils)");
    let pidfd = PidFd::open(child.id()).unwrap();
    // `env` blocks SIGTERM a moment after it starts (the mask then survives its exec of
    // the test binary): wait for that, or the default action would kill it.
    let status = std::path::PathBuf::from(format!("/proc/{}/status", child.id()));
    let deadline = Instant::now() + PATIENCE;
    while !blocks(&status, Signal::Term.as_raw()).unwrap() {
        assert!(Instant::now() < deadline, "child never blocked SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    pidfd.send_signal(Signal::Term).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let expected = format!("{RECEIVED} {}", std::process::id());
    assert!(
        stdout.contains(&expected),
        "child output:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}"
    );
}

fn child_role() {
    assert_eq!(
        blocked_in_every_thread(Signal::Term.as_raw()),
        Ok(true),
        "SIGTERM must be blocked in every thread (env --block-signal)"
    );
    let signals = Signals::new(&[Signal::Term, Signal::Int, Signal::Hup]).unwrap();
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    poll.registry()
        .register(signals.as_raw_fd(), Token(15), Interest::READABLE)
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got = None;
    while got.is_none() && Instant::now() < deadline {
        poll.poll(&mut events, Some(PATIENCE)).unwrap();
        if events
            .iter()
            .any(|e| e.token() == Token(15) && e.is_readable())
        {
            got = signals.receive().unwrap();
        }
    }
    let info = got.expect("SIGTERM arrived as an event within the patience bound");
    assert_eq!(info.signal, Signal::Term);
    assert_eq!(signals.receive().unwrap(), None, "drained");
    println!("{RECEIVED} {}", info.pid);
    assert_eq!(info.pid, std::os::unix::process::parent_id());
}

#[test]
fn receive_without_pending_signal_does_not_block() {
    // SIGUSR2 is not sent anywhere in this test binary.
    let signals = Signals::new(&[Signal::Usr2]).unwrap();
    assert_eq!(signals.signals(), [Signal::Usr2]);
    assert_eq!(signals.receive().unwrap(), None);
}
