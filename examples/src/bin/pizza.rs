//! `pizza`: the seed scenario. "Try again" travels from a busy backend through a
//! handler's `?` to the client, and every step on the way is bounded.
//!
//! ```text
//! cargo xtask run pizza -- --port 8090
//! curl -d '{"item":"margherita","qty":2}' http://127.0.0.1:8090/order
//!   -> 201 {"order":1,"item":"margherita","qty":2,"price_cents":1800}
//! curl -d '{"item":"pineapple","qty":1}' http://127.0.0.1:8090/order   -> 422 (unknown)
//! # Ten at once against a backend that takes 200 ms and one request at a time:
//! for i in $(seq 10); do curl -s -o /dev/null -w '%{http_code}\n' \
//!     -d '{"item":"diavola","qty":1}' http://127.0.0.1:8090/order & done; wait
//!   -> a few 201, the rest 503 with Retry-After (from the backend, through `?`)
//! cat "$TMPDIR/anon-pizza-orders.txt"   # or the file given with --orders
//! ```
//!
//! Two processes: `pizza` (the shop, on `--port`) starts `pizza --role backend` as a
//! child (the menu service, on a free port; it exits when the shop's pipe to it closes).
//! `POST /order` with `{"item": NAME, "qty": N}`:
//! 1. asks the backend `GET /validate?item=NAME` through anon-http's client (a bounded
//!    pool, no retries): `404` → our `422`; `503` → `ClientError::Again`, and the
//!    handler's `?` makes it our `503` with `Retry-After`;
//! 2. computes the price (unit price × qty);
//! 3. appends the order to a file through the bounded disk pool: an `Ioq` (one write at
//!    a time, a few waiters, more get "try again") around `spawn_blocking`;
//! 4. answers `201` with the order.
//!
//! The backend serves `GET /validate?item=NAME` in `--backend-ms` (default 200 ms) with
//! `--backend-inflight` (default 1) requests at once: past that it answers `503`.

#![forbid(unsafe_code)]

use anon::http::client::{Client, ClientConfig};
use anon::queue::Ioq;
use anon::{Again, Body, HandlerError, Http, Limits, Request, Response, Server, StatusCode};
use anon_examples::{init_logging, FlagSpec, Flags};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ABOUT: &str = "pizza: orders validated by a backend over HTTP, appended to a file through a bounded disk pool";

const FLAGS: &[FlagSpec] = &[
    (
        "--addr",
        Some("IP"),
        "address to listen on (default 127.0.0.1)",
    ),
    (
        "--port",
        Some("N"),
        "the shop's port (default 8090; 0 picks a free one)",
    ),
    (
        "--workers",
        Some("N"),
        "worker threads (default: one per core)",
    ),
    (
        "--orders",
        Some("PATH"),
        "the order file (default $TMPDIR/anon-pizza-orders.txt)",
    ),
    (
        "--backend-ms",
        Some("N"),
        "the backend's time per validation (default 200)",
    ),
    (
        "--backend-inflight",
        Some("N"),
        "validations the backend serves at once (default 1)",
    ),
    (
        "--role",
        Some("ROLE"),
        "shop (default) or backend (started by the shop)",
    ),
];

/// The menu, in cents.
const MENU: &[(&str, u64)] = &[("margherita", 900), ("diavola", 1100), ("quattro", 1250)];

fn main() -> ExitCode {
    init_logging();
    match run(std::env::args().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pizza: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> Result<(), String> {
    let Some(f) = Flags::parse("pizza", ABOUT, FLAGS, args)? else {
        return Ok(());
    };
    let addr: std::net::IpAddr = f.get("--addr", std::net::IpAddr::from([127, 0, 0, 1]))?;
    match f.get("--role", "shop".to_string())?.as_str() {
        "shop" => shop(&f, addr),
        "backend" => backend(&f, addr),
        other => Err(format!("--role {other:?}: expected shop or backend")),
    }
}

/// The menu service: slow, and strict about how much it does at once.
fn backend(f: &Flags, addr: std::net::IpAddr) -> Result<(), String> {
    let ms: u64 = f.get("--backend-ms", 200)?;
    let inflight: usize = f.get("--backend-inflight", 1)?;
    let port: u16 = f.get("--port", 0)?;
    let running = Server::new()
        .workers(1)
        .limits(Limits {
            max_in_flight: inflight.max(1),
            ..Limits::default()
        })
        .listen(
            std::net::SocketAddr::new(addr, port).to_string(),
            Http::from_fn(move |req: Request<Body<'_>>| {
                if req.uri().path() != "/validate" {
                    return Err(StatusCode::NOT_FOUND.into());
                }
                let item = req
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("item="))
                    .unwrap_or("");
                anon::fiber::sleep(Duration::from_millis(ms));
                match MENU.iter().find(|(name, _)| *name == item) {
                    Some((_, cents)) => Ok(Response::new(cents.to_string())),
                    None => Err(StatusCode::NOT_FOUND.into()),
                }
            }),
        )
        .start()
        .map_err(|e| e.to_string())?;
    println!("pizza-backend listening on {}", running.local_addrs()[0]);
    let _ = std::io::stdout().flush();
    // The shop holds our stdin: when it goes away (however it ends), so do we.
    let stop = running.shutdown_handle();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        stop.shutdown();
    });
    running.wait().map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

#[derive(serde::Serialize)]
struct Placed<'a> {
    order: u64,
    item: &'a str,
    qty: u32,
    price_cents: u64,
}

/// Everything the shop's handler uses.
struct Shop {
    backend: std::net::SocketAddr,
    client: Client,
    disk: Ioq,
    orders: PathBuf,
    next: AtomicU64,
}

fn shop(f: &Flags, addr: std::net::IpAddr) -> Result<(), String> {
    let port: u16 = f.get("--port", 8090)?;
    let orders = f.get(
        "--orders",
        std::env::temp_dir()
            .join("anon-pizza-orders.txt")
            .to_string_lossy()
            .into_owned(),
    )?;
    // Start the backend: this same program in its other role.
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut child = Command::new(exe)
        .args(["--role", "backend", "--port", "0"])
        .args(["--addr", &addr.to_string()])
        .args(["--backend-ms", &f.get("--backend-ms", 200u64)?.to_string()])
        .args([
            "--backend-inflight",
            &f.get("--backend-inflight", 1usize)?.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the backend: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| format!("backend: {e}"))?;
    let backend: std::net::SocketAddr = line
        .trim()
        .strip_prefix("pizza-backend listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("backend said {line:?}"))?;

    let state = Arc::new(Shop {
        backend,
        client: Client::new(ClientConfig {
            max_connections_per_origin: 16,
            max_retries: 0,
            ..ClientConfig::DEFAULT
        }),
        // One append at a time; four more may wait their turn; the rest try again.
        disk: Ioq::new(1, 4),
        orders: PathBuf::from(orders),
        next: AtomicU64::new(1),
    });
    let mut server = Server::new().listen(
        std::net::SocketAddr::new(addr, port).to_string(),
        Http::from_fn(move |req: Request<Body<'_>>| order(&state, req)),
    );
    if let Some(n) = f.opt::<usize>("--workers")? {
        server = server.workers(n.max(1));
    }
    let running = server.start().map_err(|e| e.to_string())?;
    println!("pizza listening on {}", running.local_addrs()[0]);
    println!("pizza backend on {backend}");
    let _ = std::io::stdout().flush();
    let r = running.wait().map_err(|e| e.to_string());
    // Closing its stdin stops the backend.
    drop(child.stdin.take());
    let _ = child.wait();
    r.map(drop)
}

/// `POST /order`.
fn order(shop: &Shop, req: Request<Body<'_>>) -> Result<Response<Vec<u8>>, HandlerError> {
    if req.uri().path() != "/order" {
        return Err(StatusCode::NOT_FOUND.into());
    }
    if req.method() != anon::Method::POST {
        return Err(StatusCode::METHOD_NOT_ALLOWED.into());
    }
    let mut body = Vec::new();
    req.into_body().take(4096).read_to_end(&mut body)?;
    let order: Order = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    if order.qty == 0 || order.qty > 100 || !order.item.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(StatusCode::BAD_REQUEST.into());
    }

    // 1. Validate with the backend: its 503 becomes ours through `?`.
    let url = format!("http://{}/validate?item={}", shop.backend, order.item);
    let resp = shop.client.get(&url)?;
    let unit: u64 = match resp.status() {
        StatusCode::OK => std::str::from_utf8(resp.body())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| HandlerError::Status(StatusCode::BAD_GATEWAY))?,
        StatusCode::NOT_FOUND => return Err(StatusCode::UNPROCESSABLE_ENTITY.into()),
        _ => return Err(StatusCode::BAD_GATEWAY.into()),
    };

    // 2. The price.
    let price_cents = unit * u64::from(order.qty);
    let id = shop.next.fetch_add(1, Ordering::Relaxed);
    let placed = Placed {
        order: id,
        item: &order.item,
        qty: order.qty,
        price_cents,
    };
    let json = serde_json::to_vec(&placed).map_err(HandlerError::internal)?;

    // 3. Append through the bounded disk pool: wait for the device in FIFO order, or
    //    hear "try again" when too many already wait; the write itself runs on the
    //    blocking pool (its queue is bounded too).
    let _device = shop
        .disk
        .acquire(&anon::fiber::Parker::current())
        .map_err(|_| Again::DEFAULT)?;
    let path = shop.orders.clone();
    let mut line = json.clone();
    line.push(b'\n');
    anon::fiber::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&line))
    })??;

    // 4. Answer.
    let mut r = Response::new(json);
    *r.status_mut() = StatusCode::CREATED;
    r.headers_mut().insert(
        anon::header::CONTENT_TYPE,
        anon::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
