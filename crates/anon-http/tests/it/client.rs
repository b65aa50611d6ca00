//! The fiber client against the test server: pooling, `Again`, the retry budget, and a
//! downstream 503 travelling up through a handler with `?`.

use std::sync::Arc;
use std::time::Duration;

use anon_http::client::{Client, ClientConfig, ClientError, RetryBudgetConfig};
use anon_http::server::{Body, Server, ServerConfig};
use http::{Request, Response};

use crate::harness::{app_server, start};

fn quick_retries(initial_tokens: f64) -> ClientConfig {
    ClientConfig {
        backoff_base: Duration::from_millis(1),
        retry_budget: RetryBudgetConfig {
            initial_tokens,
            ..RetryBudgetConfig::DEFAULT
        },
        ..ClientConfig::DEFAULT
    }
}

#[test]
fn requests_reuse_one_pooled_connection() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let (url, port) = (t.url("/echo"), t.addr.port());
    let h =
        t.rt.spawn(move || {
            let c = Client::new(ClientConfig::DEFAULT);
            let mut bodies = Vec::new();
            for i in 0..5 {
                let req = Request::post(url.as_str()).body(format!("n{i}")).unwrap();
                bodies.push(c.send(req).unwrap().into_body());
            }
            (bodies, c.open_connections("127.0.0.1", port))
        })
        .unwrap();
    let (bodies, open) = h.join().unwrap();
    assert_eq!(
        bodies,
        ["n0", "n1", "n2", "n3", "n4"].map(|s| s.as_bytes().to_vec())
    );
    assert_eq!(open, 1);
    assert_eq!(t.stats().served, 5);
}

#[test]
fn pool_exhaustion_is_again() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let client = Client::shared(ClientConfig {
        max_connections_per_origin: 1,
        ..ClientConfig::DEFAULT
    });
    let (c1, gate_url) = (Arc::clone(&client), t.url("/gate?1"));
    let first =
        t.rt.spawn(move || c1.get(&gate_url).map(Response::into_body))
            .unwrap();
    // The only connection is busy once the gated handler runs.
    assert_eq!(t.wait_stats(|s| s.in_flight == 1).in_flight, 1);
    let (c2, url) = (Arc::clone(&client), t.url("/"));
    let second =
        t.rt.spawn(move || c2.get(&url).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
    assert!(matches!(second, Err(ClientError::Again(_))), "{second:?}");
    crate::harness::GATES[1].store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(first.join().unwrap().unwrap(), b"opened");
    // Given back to the pool: the next request has a connection again.
    let (c3, url) = (Arc::clone(&client), t.url("/"));
    let third =
        t.rt.spawn(move || c3.get(&url).map(Response::into_body))
            .unwrap();
    assert_eq!(third.join().unwrap().unwrap(), b"Hello, World!");
}

#[test]
fn retry_budget_keeps_retries_within_ten_percent() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let url = t.url("/busy0");
    let h =
        t.rt.spawn(move || {
            let c = Client::new(quick_retries(0.0));
            let mut again = 0;
            for _ in 0..50 {
                match c.get(&url) {
                    Err(ClientError::Again(a)) => {
                        assert_eq!(a.retry_after, Duration::ZERO);
                        again += 1;
                    }
                    other => panic!("expected Again, got {other:?}"),
                }
            }
            (again, c.stats())
        })
        .unwrap();
    let (again, stats) = h.join().unwrap();
    assert_eq!(again, 50);
    // One token per ten requests, one token per retry: 5 retries, never a second retry
    // of the same request (the bucket is empty right after each).
    assert_eq!((stats.requests, stats.retries), (50, 5));
    assert_eq!(t.wait_stats(|s| s.served == 55).served, 55);
}

#[test]
fn retry_after_503_succeeds_when_the_server_recovers() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let hits = Arc::new(AtomicU64::new(0));
    let h2 = Arc::clone(&hits);
    let t = start(Server::from_fn(move |_req: Request<Body<'_>>| {
        if h2.fetch_add(1, Ordering::Relaxed) == 0 {
            let mut r = Response::new("busy");
            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, "0".parse().unwrap());
            return Ok(r);
        }
        Ok(Response::new("fine"))
    }));
    let url = t.url("/");
    let (body, stats) =
        t.rt.spawn(move || {
            let c = Client::new(quick_retries(1.0));
            (c.get(&url).unwrap().into_body(), c.stats())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(body, b"fine");
    assert_eq!(stats.retries, 1);
    assert_eq!(hits.load(Ordering::Relaxed), 2);
}

#[test]
fn downstream_503_becomes_again_through_question_mark() {
    // The back end always says "try again in 3 s" (too long to retry inside a request).
    let back = start(app_server(ServerConfig::DEFAULT));
    let back_url = back.url("/again");
    let client = Client::shared(ClientConfig::DEFAULT);
    let front = start(Server::from_fn(move |_req: Request<Body<'_>>| {
        let resp = client.get(&back_url)?;
        Ok(Response::new(resp.into_body()))
    }));
    let (r, _, _) = crate::harness::roundtrip(front.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(front.stats().again, 1);
    assert_eq!(back.stats().again, 1);
}

#[test]
fn a_downstream_that_is_down_is_502() {
    let client = Client::shared(ClientConfig::DEFAULT);
    // Bind and drop to find a port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{dead}/");
    let front = start(Server::from_fn(move |_req: Request<Body<'_>>| {
        Ok(Response::new(client.get(&url)?.into_body()))
    }));
    let (r, _, _) = crate::harness::roundtrip(front.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 502);
}

#[test]
fn a_pooled_connection_closed_by_the_server_is_replaced() {
    let t = start(app_server(ServerConfig {
        idle_timeout: Duration::from_millis(100),
        ..ServerConfig::DEFAULT
    }));
    let url = t.url("/");
    let h =
        t.rt.spawn(move || {
            let c = Client::new(ClientConfig::DEFAULT);
            let a = c.get(&url).unwrap().into_body();
            // The server closes the idle connection meanwhile.
            anon_fiber::sleep(Duration::from_millis(400));
            let b = c.get(&url).unwrap().into_body();
            (a, b, c.stats().retries)
        })
        .unwrap();
    let (a, b, retries) = h.join().unwrap();
    assert_eq!(
        (a.as_slice(), b.as_slice(), retries),
        (&b"Hello, World!"[..], &b"Hello, World!"[..], 0)
    );
}

#[test]
fn client_works_outside_fibers_too() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let c = Client::new(ClientConfig::DEFAULT);
    let r = c
        .send(Request::put(t.url("/echo")).body(b"plain thread").unwrap())
        .unwrap();
    assert_eq!(r.body(), b"plain thread");
    assert!(matches!(
        c.get("https://example.invalid/"),
        Err(ClientError::InvalidRequest(_))
    ));
}
