use anon_reactor::{PidFd, Signal};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

/// Starts the server on a free port; returns it, its address and its stdout.
fn start(args: &[&str]) -> (Child, SocketAddr, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reactor_echo"))
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn reactor_echo");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("first line");
    let addr = line
        .trim()
        .strip_prefix("reactor_echo listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    (child, addr, out)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Sends `signal`, then checks for a clean exit and the shutdown message.
fn stop(mut child: Child, mut out: BufReader<ChildStdout>, signal: Signal) {
    PidFd::open(child.id())
        .unwrap()
        .send_signal(signal)
        .unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}, output {rest:?}");
    assert!(
        rest.contains(&format!("got {signal:?} from pid {}", std::process::id())),
        "{rest:?}"
    );
}

#[test]
fn echoes_over_loopback_and_exits_on_sigterm() {
    let (child, addr, out) = start(&[]);
    let mut clients: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            let msg = format!("client {i} round {round}\n");
            c.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
    }
    stop(child, out, Signal::Term);
}

/// Far more than one connection buffer (4 KiB) in flight at once, written and read by
/// different threads: partial writes and `WouldBlock` on both sides of the server must
/// keep the echo byte-exact, and half-close must end it cleanly.
#[test]
fn large_transfer_survives_backpressure() {
    let (child, addr, out) = start(&[]);
    let c = connect(addr);
    let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let mut writer = c.try_clone().unwrap();
    let expected = data.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&c).read_to_end(&mut back).unwrap(); // the server closes after echoing everything
    w.join().unwrap();
    assert_eq!(back.len(), expected.len());
    assert!(back == expected, "echo differs");
    stop(child, out, Signal::Int);
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let (child, addr, out) = start(&["--max-conns", "1"]);
    let mut first = connect(addr);
    first.write_all(b"a").unwrap();
    let mut b = [0u8; 1];
    first.read_exact(&mut b).unwrap();
    // The second connection is accepted by the kernel, then closed by the full server.
    let mut second = connect(addr);
    let _ = second.write_all(b"b");
    let mut buf = [0u8; 1];
    let n = second.read(&mut buf);
    let closed = match &n {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    };
    assert!(closed, "refused connection not closed: {n:?}");
    // The first one still works.
    first.write_all(b"c").unwrap();
    first.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"c");
    stop(child, out, Signal::Term);
}

#[test]
fn bad_flags_exit_with_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_reactor_echo"))
        .args(["--port", "70000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}
