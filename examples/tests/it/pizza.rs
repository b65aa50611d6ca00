//! `pizza`: orders go through the backend and the disk pool; the backend's 503 comes back
//! as ours.

use crate::{connect, read_reply, Proc, Reply, PATIENCE};
use anon_reactor::Signal;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn post_order(addr: SocketAddr, body: &str) -> Reply {
    let mut s = connect(addr);
    write!(
        s,
        "POST /order HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_reply(&mut s).expect("reply")
}

#[test]
fn orders_are_priced_stored_and_a_busy_backend_gives_503() {
    let dir = std::env::temp_dir().join(format!("anon-pizza-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let orders = dir.join("orders.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pizza"))
        .args(["--port", "0", "--workers", "2", "--backend-ms", "150"])
        .arg("--orders")
        .arg(&orders)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("pizza listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let backend: SocketAddr = line
        .trim()
        .strip_prefix("pizza backend on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    let p = Proc {
        child,
        addr,
        admin: None,
    };

    let r = post_order(addr, r#"{"item":"margherita","qty":2}"#);
    assert_eq!(r.status, 201, "{r:?}");
    let placed: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(placed["price_cents"], 1800);
    assert_eq!(placed["item"], "margherita");
    let stored = std::fs::read_to_string(&orders).unwrap();
    assert_eq!(stored.lines().count(), 1);
    assert!(stored.contains(r#""price_cents":1800"#), "{stored}");

    assert_eq!(
        post_order(addr, r#"{"item":"pineapple","qty":1}"#).status,
        422
    );
    assert_eq!(post_order(addr, "not json").status, 400);

    // Eight at once against a backend serving one validation at a time.
    let burst: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || post_order(addr, r#"{"item":"diavola","qty":1}"#)))
        .collect();
    let statuses: Vec<u16> = burst
        .into_iter()
        .map(|t| t.join().unwrap().status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "{statuses:?}"
    );
    let placed = statuses.iter().filter(|s| **s == 201).count();
    assert!(placed >= 1, "{statuses:?}");
    assert!(placed < 8, "the busy backend never said 503: {statuses:?}");
    let stored = std::fs::read_to_string(&orders).unwrap();
    assert_eq!(stored.lines().count(), 1 + placed, "{stored}");

    p.stop(Signal::Term);
    // The backend goes with the shop.
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect_timeout(&backend, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "the backend outlived the shop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
