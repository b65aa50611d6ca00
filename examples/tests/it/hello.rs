//! `hello`'s routes through raw sockets, curl and wrk; panics; flags.

use crate::{connect, get, need_tool, read_reply, request, Proc};
use anon_reactor::Signal;
use std::io::Write;
use std::process::Command;

#[test]
fn routes_answer_as_documented() {
    let p = Proc::hello(&["--workers", "2"]);
    let r = get(p.addr, "/plaintext");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"Hello, World!"[..]));
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{}",
        r.head
    );
    let r = get(p.addr, "/json");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"message":"Hello, World!"}"#);
    assert!(r.head.contains("application/json"), "{}", r.head);
    let r = request(
        p.addr,
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
    let r = get(p.addr, "/work?us=1500");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"worked 1500 us\n"[..])
    );
    let r = get(p.addr, "/sleep?ms=20");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"slept 20 ms\n"[..]));
    assert_eq!(get(p.addr, "/work?us=x").status, 400);
    assert_eq!(get(p.addr, "/sleep?ms=99999999").status, 400);
    assert_eq!(get(p.addr, "/nope").status, 404);
    assert_eq!(
        request(
            p.addr,
            "POST /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        )
        .status,
        405
    );
    p.stop(Signal::Term);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let p = Proc::hello(&["--workers", "1"]);
    let mut s = connect(p.addr);
    for _ in 0..50 {
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_reply(&mut s).unwrap();
        assert_eq!(r.body, b"Hello, World!");
    }
    // Pipelined: ten requests in one write, ten replies in order.
    let ten = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n".repeat(9)
        + "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";
    s.write_all(ten.as_bytes()).unwrap();
    for i in 0..10 {
        let r = read_reply(&mut s).unwrap();
        assert_eq!(r.status, 200);
        if i == 9 {
            assert!(r.body.starts_with(b"{"));
        }
    }
    p.stop(Signal::Int);
}

#[test]
fn a_panicking_handler_gets_500_and_the_server_goes_on() {
    let p = Proc::hello(&["--workers", "1", "--admin-port", "0"]);
    for _ in 0..3 {
        let r = get(p.addr, "/panic");
        assert_eq!(r.status, 500);
        assert!(r.head.contains("Connection: close"), "{}", r.head);
        assert_eq!(get(p.addr, "/plaintext").body, b"Hello, World!");
    }
    assert_eq!(p.metric("anon_http_handler_panics_total"), 3);
    p.stop(Signal::Term);
}

#[test]
fn curl_gets_correct_answers() {
    need_tool("curl");
    let p = Proc::hello(&[]);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let base = format!("http://{}", p.addr);
    assert_eq!(curl(&[&format!("{base}/plaintext")]), "Hello, World!");
    assert_eq!(
        curl(&[&format!("{base}/json")]),
        r#"{"message":"Hello, World!"}"#
    );
    assert_eq!(
        curl(&["--data-binary", "posted by curl", &format!("{base}/echo")]),
        "posted by curl"
    );
    // Two URLs in one curl: the second reuses the keep-alive connection.
    assert_eq!(
        curl(&[&format!("{base}/plaintext"), &format!("{base}/plaintext")]),
        "Hello, World!Hello, World!"
    );
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/nope"),
    ]);
    assert_eq!(code, "404");
    p.stop(Signal::Term);
}

#[test]
fn wrk_gets_only_correct_answers() {
    need_tool("wrk");
    let _g = crate::heavy();
    let p = Proc::hello(&["--workers", "2", "--admin-port", "0"]);
    let out = Command::new("wrk")
        .args(["-t1", "-c16", "-d2s", "--timeout", "10s"])
        .arg(format!("http://{}/plaintext", p.addr))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {out:?}");
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
    let done: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {text}"));
    assert!(done > 0, "{text}");
    // Every reply wrk counted was a handler response (wrk may have sent a few more
    // that it did not wait for when its time ran out).
    let served = p.metric("anon_http_requests_served_total");
    assert!(served >= done, "served {served} < wrk's {done}\n{text}");
    p.stop(Signal::Term);
}

#[test]
fn bad_flags_are_clear_errors() {
    for (args, needle) in [
        (&["--port", "70000"][..], "--port"),
        (
            &["--max-inflight", "0"][..],
            "--max-inflight must be at least 1",
        ),
        (&["--workers"][..], "--workers needs a value"),
        (&["--frobnicate"][..], "unknown flag `--frobnicate`"),
        (&["--accept", "magic"][..], "--accept"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hello"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hello"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--addr",
        "--port",
        "--workers",
        "--max-inflight",
        "--max-conns",
        "--admin-port",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}
