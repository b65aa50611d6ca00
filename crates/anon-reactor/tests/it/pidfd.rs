use crate::{poll_tokens, wait_for, QUIET};
use anon_reactor::{Events, Interest, PidFd, Poll, Signal, Token};
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// A shell that waits for a line on stdin, then exits with `code`.
fn waitingchild(code: i32) -> std::process::Child {
    Command::new("sh")
        .args(["-c", &format!("read line; exit {code}")])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

#[test]
#[expect(clippy::zombie_processes, reason = "reaped by PidFd::try_wait")]
fn child_exit_arrives_as_an_event() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let mut child = waitingchild(7);
    let pidfd = PidFd::open(child.id()).unwrap();
    assert_eq!(pidfd.pid(), child.id());
    poll.registry()
        .register(pidfd.as_raw_fd(), Token(1), Interest::READABLE)
        .unwrap();
    // Still running: no event, nothing to reap.
    assert_eq!(poll_tokens(&mut poll, &mut events, QUIET), vec![]);
    assert_eq!(pidfd.try_wait().unwrap(), None);

    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(1)));
    let status = pidfd.try_wait().unwrap().expect("exited");
    assert_eq!(status.code(), Some(7));
    // Reaped: a second wait has no child left.
    let e = pidfd.try_wait().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(10), "ECHILD: {e}");
}

#[test]
#[expect(clippy::zombie_processes, reason = "reaped by PidFd::try_wait")]
fn signalledchild_reports_the_signal() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let child = waitingchild(0);
    let pidfd = PidFd::open(child.id()).unwrap();
    poll.registry()
        .register(pidfd.as_raw_fd(), Token(2), Interest::READABLE)
        .unwrap();
    pidfd.send_signal(Signal::Term).unwrap();
    assert!(wait_for(&mut poll, &mut events, Token(2)));
    let status = pidfd.try_wait().unwrap().expect("exited");
    assert_eq!(status.signal(), Some(Signal::Term.as_raw()));
    assert_eq!(status.code(), None);
    // The process is gone: sending to it fails (ESRCH), without hitting a reused pid.
    assert_eq!(
        pidfd.send_signal(Signal::Term).unwrap_err().raw_os_error(),
        Some(3)
    );
}

#[test]
fn bad_pids_are_errors() {
    assert_eq!(
        PidFd::open(0).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        PidFd::open(u32::MAX).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    // Above the kernel's largest possible pid (2^22): no such process.
    let e = PidFd::open((1 << 22) + 1).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(3), "ESRCH: {e}");
}
