//! The `Server` in-process over loopback: several listeners, busy mode, admission, the
//! drain and its deadline, the shutdown handle, metrics, start errors.

use anon::fiber::net::TcpStream as FiberStream;
use anon::{Http, Limits, Response, Server, StartError, Tcp, Timeouts};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Reads one reply head and its `Content-Length` body; returns (head, body).
fn reply(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "closed before a full head: {head:?}"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Content-Length: ")
                .or(l.strip_prefix("content-length: "))
        })
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, body)
}

fn get(s: &mut TcpStream, path: &str) -> (String, Vec<u8>) {
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    reply(s)
}

fn hello() -> Http<impl anon::http::server::Handler> {
    Http::from_fn(|req: anon::Request<anon::Body<'_>>| {
        if let Some(ms) = req.uri().query().and_then(|q| q.strip_prefix("sleep=")) {
            anon::fiber::sleep(Duration::from_millis(ms.parse().unwrap()));
        }
        Ok(Response::new("hi"))
    })
}

fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name_and_labels} not in\n{text}"))
}

#[test]
fn an_http_and_a_tcp_listener_on_one_server() {
    let running = Server::new()
        .workers(2)
        .handle_signals(false)
        .listen("127.0.0.1:0", hello())
        .listen(
            "127.0.0.1:0",
            Tcp::new(|mut s: FiberStream| {
                let _ = s.write_all(b"tcp says hi\n");
            }),
        )
        .start()
        .unwrap();
    let [http, tcp] = running.local_addrs() else {
        panic!("two listeners expected");
    };
    let mut s = connect(*http);
    assert_eq!(get(&mut s, "/").1, b"hi");
    let mut t = connect(*tcp);
    let mut got = String::new();
    t.read_to_string(&mut got).unwrap();
    assert_eq!(got, "tcp says hi\n");
    let m = running.metrics();
    assert!(m.contains("protocol=\"tcp\""), "{m}");
    let report = running.shutdown();
    assert_eq!(report.unfinished, 0);
}

#[test]
fn past_max_connections_new_connections_get_503_until_busy_mode_ends() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .limits(Limits {
            max_connections: 3,
            ..Limits::default()
        })
        .listen("127.0.0.1:0", hello())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for s in &mut held {
        assert_eq!(get(s, "/").1, b"hi");
    }
    // The fourth is accepted, told to try again, and closed.
    let mut s = connect(addr);
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 503 "), "{all}");
    assert!(
        all.contains("Retry-After: 1\r\n") && all.contains("Connection: close"),
        "{all}"
    );
    let m = running.metrics();
    assert_eq!(metric(&m, "anon_busy"), 1, "{m}");
    let refused = format!(
        "anon_connections_refused_total{{listener=\"{addr}\",protocol=\"http\",reason=\"connections\"}}"
    );
    assert_eq!(metric(&m, &refused), 1);
    // The held connections are still served.
    assert_eq!(get(&mut held[0], "/").1, b"hi");
    // Below the low watermark busy mode ends and connections are served again.
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut s = connect(addr);
        write!(s, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let (head, _) = reply(&mut s);
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "busy mode never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(metric(&running.metrics(), "anon_busy"), 0);
    running.shutdown();
}

#[test]
fn requests_past_max_in_flight_get_503_without_running_the_handler() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .limits(Limits {
            max_in_flight: 1,
            ..Limits::default()
        })
        .listen("127.0.0.1:0", hello())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let mut slow = connect(addr);
    write!(slow, "GET /?sleep=300 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // Wait until it is in flight.
    let deadline = Instant::now() + PATIENCE;
    while metric(&running.metrics(), "anon_requests_in_flight") < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut other = connect(addr);
    let (head, _) = get(&mut other, "/");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Retry-After: 1\r\n"), "{head}");
    // The refusal keeps the connection: once the slot is free, it is served.
    assert!(!head.contains("Connection: close"), "{head}");
    assert_eq!(reply(&mut slow).1, b"hi");
    assert_eq!(get(&mut other, "/").1, b"hi");
    let m = running.metrics();
    assert_eq!(
        metric(&m, "anon_requests_rejected_total{reason=\"ceiling\"}"),
        1
    );
    running.shutdown();
}

#[test]
fn during_the_drain_a_refused_request_closes_its_connection() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .limits(Limits {
            max_in_flight: 1,
            ..Limits::default()
        })
        .listen("127.0.0.1:0", hello())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let mut other = connect(addr);
    assert_eq!(get(&mut other, "/").1, b"hi");
    let mut slow = connect(addr);
    write!(slow, "GET /?sleep=2000 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let deadline = Instant::now() + PATIENCE;
    while metric(&running.metrics(), "anon_requests_in_flight") < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    let drain = std::thread::spawn(move || running.shutdown());
    // The listener closes once the drain has begun.
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        assert!(Instant::now() < deadline, "the listener never closed");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (head, _) = get(&mut other, "/");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    let mut rest = Vec::new();
    assert_eq!(other.read_to_end(&mut rest).unwrap_or(0), 0);
    assert_eq!(reply(&mut slow).1, b"hi");
    assert_eq!(drain.join().unwrap().unfinished, 0);
}

#[test]
fn the_shutdown_handle_drains_requests_in_flight() {
    let running = Server::new()
        .workers(2)
        .handle_signals(false)
        .listen("127.0.0.1:0", hello())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let stop = running.shutdown_handle();
    let waiter = std::thread::spawn(move || running.wait().unwrap());
    let mut idle = connect(addr);
    assert_eq!(get(&mut idle, "/").1, b"hi");
    let mut slow = connect(addr);
    write!(slow, "GET /?sleep=300 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.shutdown();
    let (head, body) = reply(&mut slow);
    assert_eq!(body, b"hi");
    assert!(head.contains("Connection: close"), "{head}");
    let report = waiter.join().unwrap();
    assert_eq!(report.unfinished, 0);
    // The idle keep-alive connection was closed, and nothing listens any more.
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap_or(0), 0);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn the_drain_deadline_cancels_what_is_left() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .timeouts(Timeouts {
            drain: Duration::from_millis(200),
            ..Timeouts::default()
        })
        .listen("127.0.0.1:0", hello())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let mut slow = connect(addr);
    write!(slow, "GET /?sleep=5000 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let deadline = Instant::now() + PATIENCE;
    while metric(&running.metrics(), "anon_requests_in_flight") < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    let report = running.shutdown();
    assert_eq!(report.unfinished, 1);
    assert!(report.elapsed < Duration::from_secs(5), "{report:?}");
}

#[test]
fn start_errors_name_the_problem() {
    assert!(matches!(
        Server::new().handle_signals(false).start(),
        Err(StartError::NoListener)
    ));
    let e = Server::new()
        .handle_signals(false)
        .listen("not an address", hello())
        .start()
        .unwrap_err();
    assert!(matches!(e, StartError::Address { .. }), "{e}");
    assert!(e.to_string().contains("not an address"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = Server::new()
        .handle_signals(false)
        .listen(taken.local_addr().unwrap().to_string(), hello())
        .start()
        .unwrap_err();
    assert!(matches!(e, StartError::Listen { .. }), "{e}");
}

#[test]
fn the_admin_listener_serves_metrics_and_the_fiber_dump() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .admin("127.0.0.1:0")
        .listen("127.0.0.1:0", hello())
        .start()
        .unwrap();
    let admin = running.admin_addr().unwrap();
    let mut s = connect(admin);
    let (head, body) = get(&mut s, "/metrics");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let text = String::from_utf8(body).unwrap();
    for name in [
        "anon_connections_accepted_total",
        "anon_requests_in_flight",
        "anon_fibers_live",
        "anon_request_queue_delay_seconds_count",
        "anon_http_connections_hibernating",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let mut s = connect(admin);
    let (_, dump) = get(&mut s, "/fibers");
    let dump = String::from_utf8(dump).unwrap();
    assert!(
        dump.contains("anon-accept") && dump.contains("anon-probe"),
        "{dump}"
    );
    running.shutdown();
}

/// A protocol the crate does not know, plugged in through the public traits.
struct Greeter {
    drain: anon::DrainSignal,
    open: std::sync::atomic::AtomicU64,
}

impl anon::Engine for Greeter {
    fn protocol(&self) -> &'static str {
        "greeter"
    }
    fn start(&self, stream: FiberStream) {
        let msg: &[u8] = if self.drain.is_draining() {
            b"bye\n"
        } else {
            b"welcome\n"
        };
        let _ = (&stream).write_all(msg);
    }
    fn busy_reply(&self) -> &[u8] {
        b"full\n"
    }
    fn open(&self) -> u64 {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn active(&self) -> u64 {
        0
    }
    fn metrics(&self, out: &mut anon::Prom, labels: &str) {
        out.counter("greeter_custom_total", "A custom sample.", labels, 42);
    }
}

struct GreeterSpec;

impl anon::IntoEngine for GreeterSpec {
    fn into_engine(self: Box<Self>, ctx: &anon::EngineContext) -> std::sync::Arc<dyn anon::Engine> {
        assert_eq!(ctx.workers(), 1);
        std::sync::Arc::new(Greeter {
            drain: ctx.drain_signal(),
            open: Default::default(),
        })
    }
}

#[test]
fn a_custom_engine_plugs_in_through_the_public_traits() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .listen("127.0.0.1:0", GreeterSpec)
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let mut s = connect(addr);
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "welcome\n");
    let m = running.metrics();
    assert!(
        m.contains(&format!(
            "greeter_custom_total{{listener=\"{addr}\",protocol=\"greeter\"}} 42"
        )),
        "{m}"
    );
    assert_eq!(running.shutdown().unfinished, 0);
}

/// Burns `d` of CPU in 50 µs slices, yielding between them (a well-behaved CPU-bound
/// handler on a fiber).
fn spin(d: Duration) {
    let mut spun = Duration::ZERO;
    while spun < d {
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(50) {
            std::hint::spin_loop();
        }
        spun += t.elapsed();
        anon::fiber::yield_now();
    }
}

/// `/spin?ms=N` burns N ms of CPU, `/io?ms=N` burns 100 µs then sleeps N ms.
fn workload() -> Http<impl anon::http::server::Handler> {
    Http::from_fn(|req: anon::Request<anon::Body<'_>>| {
        let q = req.uri().query().unwrap_or("ms=0");
        let ms: u64 = q.strip_prefix("ms=").unwrap().parse().unwrap();
        match req.uri().path() {
            "/spin" => spin(Duration::from_millis(ms)),
            _ => {
                spin(Duration::from_micros(100));
                anon::fiber::sleep(Duration::from_millis(ms));
            }
        }
        Ok(Response::new("done"))
    })
}

#[test]
fn with_default_limits_a_burst_of_slow_requests_gets_503s_instead_of_a_queue() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .listen("127.0.0.1:0", workload())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    // 60 clients at once, each asking for 100 ms of CPU: served one after another that
    // would be 6 s for the last one. The burst lands well within the first one's 100 ms.
    let mut conns: Vec<TcpStream> = (0..60).map(|_| connect(addr)).collect();
    for c in &mut conns {
        write!(c, "GET /spin?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    }
    let heads: Vec<String> = conns.iter_mut().map(|c| reply(c).0).collect();
    let ok = heads
        .iter()
        .filter(|h| h.starts_with("HTTP/1.1 200 "))
        .count();
    let busy = heads
        .iter()
        .filter(|h| h.starts_with("HTTP/1.1 503 "))
        .count();
    assert_eq!(ok + busy, 60, "{heads:?}");
    // No more than the adaptive limit's starting value was let in.
    let initial = anon::queue::AdaptiveConfig::default().initial_limit;
    assert!((1..=initial).contains(&ok), "{ok} admitted");
    let m = running.metrics();
    assert_eq!(
        metric(&m, "anon_requests_rejected_total{reason=\"limit\"}"),
        busy as u64
    );
    // Having seen 100 ms requests queue, the limit came down.
    assert!(metric(&m, "anon_admission_limit{worker=\"0\"}") < initial as u64);
    running.shutdown();
}

#[test]
fn with_default_limits_the_limit_rises_for_handlers_that_wait_on_io() {
    let running = Server::new()
        .workers(1)
        .handle_signals(false)
        .listen("127.0.0.1:0", workload())
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    // 40 clients in a closed loop on a handler that waits 30 ms, started 0.75 ms apart:
    // four times the starting limit is needed, and the CPU is mostly idle (100 µs per
    // request every 0.75 ms), so the limit must rise.
    let clients: Vec<_> = (0..40u64)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                std::thread::sleep(Duration::from_micros(750 * i));
                (0..25)
                    .map(|_| {
                        let ok = get(&mut c, "/io?ms=30").0.starts_with("HTTP/1.1 200 ");
                        if !ok {
                            // Told to try again: a polite client waits a little.
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        ok
                    })
                    .collect::<Vec<bool>>()
            })
        })
        .collect();
    // The limit while the load is on (it decays back once the clients are gone).
    let mut peak = 0;
    while !clients.iter().all(|c| c.is_finished()) {
        peak = peak.max(metric(
            &running.metrics(),
            "anon_admission_limit{worker=\"0\"}",
        ));
        std::thread::sleep(Duration::from_millis(5));
    }
    let results: Vec<Vec<bool>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let initial = anon::queue::AdaptiveConfig::default().initial_limit as u64;
    // Once it has risen, everything is served.
    let late_refusals = results
        .iter()
        .flat_map(|r| &r[15..])
        .filter(|ok| !**ok)
        .count();
    assert!(
        peak >= 3 * initial,
        "limit peaked at {peak}; {late_refusals} late refusals"
    );
    assert_eq!(late_refusals, 0);
    running.shutdown();
}
