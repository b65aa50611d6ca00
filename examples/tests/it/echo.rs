//! `echo`: raw TCP on fibers; the busy banner past the connection bound.

use crate::{connect, Proc};
use anon_reactor::Signal;
use std::io::{Read, Write};

fn echo(args: &[&str]) -> Proc {
    Proc::start(env!("CARGO_BIN_EXE_echo"), "echo", args)
}

#[test]
fn echoes_and_tells_connections_past_the_bound_to_try_again() {
    let p = echo(&[
        "--workers",
        "1",
        "--max-conns",
        "2",
        "--banner",
        "busy, come back later",
    ]);
    let mut a = connect(p.addr);
    let mut b = connect(p.addr);
    for (i, s) in [&mut a, &mut b].into_iter().enumerate() {
        let msg = format!("hello {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    // Two open: the third connection gets the banner, then the end of the stream.
    let mut c = connect(p.addr);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"busy, come back later\r\n");
    // The first two still echo.
    a.write_all(b"again").unwrap();
    let mut back = [0u8; 5];
    a.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"again");
    // Busy mode ends once connections close (two is too small a bound for a band).
    drop(a);
    drop(b);
    let deadline = std::time::Instant::now() + crate::PATIENCE;
    loop {
        let mut d = connect(p.addr);
        d.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        if d.read_exact(&mut one).is_ok() && &one == b"x" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never left busy mode");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    p.stop(Signal::Term);
}

#[test]
fn a_large_transfer_echoes_byte_exact() {
    let p = echo(&["--workers", "2"]);
    let c = connect(p.addr);
    let data: Vec<u8> = (0..2 * 1024 * 1024).map(|i: u32| (i % 253) as u8).collect();
    let mut writer = c.try_clone().unwrap();
    let expected = data.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&c).read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert!(back == expected, "echo differs ({} bytes back)", back.len());
    p.stop(Signal::Int);
}
