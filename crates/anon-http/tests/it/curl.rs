//! A real client: `curl` against the test server over loopback.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anon_http::server::ServerConfig;

use crate::harness::{app_server, start, tool};

fn curl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(tool("curl"));
    c.args(["-sS", "--max-time", "20"])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run curl");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let out = child.wait_with_output().expect("curl output");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn checksum(b: &[u8]) -> u32 {
    b.iter()
        .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// Some bytes that are not all alike.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn curl_get() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let out = curl(&["-w", "\n%{http_code}", &t.url("/")], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World!\n200");
}

#[test]
fn curl_post_with_chunked_upload() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let data = payload(200_000);
    let out = curl(
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            &t.url("/sum"),
        ],
        Some(&data),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("len=200000 sum={} chunked=true", checksum(&data))
    );
}

#[test]
fn curl_expect_100_continue() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let data = payload(4096);
    // curl waits for our `100 Continue` (up to 10 s) before it sends the body.
    let out = curl(
        &[
            "-v",
            "-H",
            "Expect: 100-continue",
            "--expect100-timeout",
            "10",
            "--data-binary",
            "@-",
            &t.url("/sum"),
        ],
        Some(&data),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("> Expect: 100-continue"), "{stderr}");
    assert!(stderr.contains("< HTTP/1.1 100 Continue"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("len=4096 sum={} chunked=false", checksum(&data))
    );
}

#[test]
fn curl_reuses_one_connection_for_several_urls() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let out = curl(
        &[
            "-w",
            "[%{http_code} %{num_connects}]",
            &t.url("/target?a"),
            &t.url("/target?b"),
            &t.url("/"),
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/target?a[200 1]/target?b[200 0]Hello, World![200 0]"
    );
    assert_eq!(t.wait_stats(|s| s.served == 3).served, 3);
}
