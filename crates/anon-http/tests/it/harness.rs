//! A test server on a one-worker runtime, the test application, and a raw-socket client.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anon_fiber::net::TcpListener;
use anon_fiber::Runtime;
use anon_http::server::{Admission, Body, Handler, Payload, Server, ServerConfig, StatsSnapshot};
use anon_http::{Again, HandlerError};
use http::{Request, Response, StatusCode};

/// A running server; dropping it shuts the runtime down.
pub struct TestServer<H: Handler, A: Admission> {
    pub server: Arc<Server<H, A>>,
    pub addr: SocketAddr,
    // Dropped last: cancels the accept loop and every connection fiber.
    pub rt: Runtime,
}

impl<H: Handler, A: Admission> TestServer<H, A> {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.server.stats().snapshot()
    }

    /// Waits (bounded) until `f` holds for the counters; returns the last snapshot.
    pub fn wait_stats(&self, f: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.stats();
            if f(&s) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Starts `server` on a fresh one-worker runtime, accepting on an ephemeral port.
pub fn start<H: Handler, A: Admission>(server: Server<H, A>) -> TestServer<H, A> {
    start_on(server, Runtime::builder().workers(1))
}

/// Starts `server` on a runtime built from `builder`.
pub fn start_on<H: Handler, A: Admission>(
    server: Server<H, A>,
    builder: anon_fiber::Builder,
) -> TestServer<H, A> {
    let rt = builder.build().expect("runtime");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Arc::new(server);
    let srv = Arc::clone(&server);
    rt.spawn(move || srv.accept_loop(&listener)).expect("spawn");
    TestServer { server, addr, rt }
}

/// Open the `/gate?N` route; each test that uses one has its own `N`.
pub static GATES: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// The test application.
pub fn app(mut req: Request<Body<'_>>) -> Result<Response<Payload>, HandlerError> {
    let path = req.uri().path().to_string();
    let resp = match path.as_str() {
        "/" | "/plaintext" => Response::new("Hello, World!".into()),
        "/echo" => {
            let body = req.body_mut().read_all()?;
            Response::new(body.into())
        }
        // Length, a checksum, and whether the body came chunked.
        "/sum" => {
            let chunked = req.body().content_length().is_none();
            let body = req.body_mut().read_all()?;
            let sum = body
                .iter()
                .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(u32::from(b)));
            Response::new(format!("len={} sum={sum} chunked={chunked}", body.len()).into())
        }
        "/target" => Response::new(req.uri().to_string().into()),
        "/stream" => {
            let n: u64 = req
                .uri()
                .query()
                .and_then(|q| q.parse().ok())
                .unwrap_or(10_000);
            Response::new(Payload::stream(std::io::repeat(b'z').take(n), None))
        }
        "/sized-stream" => Response::new(Payload::stream(
            std::io::repeat(b's').take(5000),
            Some(5000),
        )),
        "/big" => Response::new(vec![b'b'; 100_000].into()),
        "/panic" => panic!("handler panic on purpose"),
        "/again" => return Err(Again::after(Duration::from_secs(3)).into()),
        "/busy0" => {
            let mut r = Response::new(Payload::EMPTY);
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, "0".parse().unwrap());
            r
        }
        "/missing" => return Err(StatusCode::NOT_FOUND.into()),
        "/ignore-body" => Response::new("ignored".into()),
        "/sleep" => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.parse().ok())
                .unwrap_or(100);
            anon_fiber::sleep(Duration::from_millis(ms));
            Response::new("slept".into())
        }
        // `/gate?N` waits (bounded) until a test opens `GATES[N]`.
        "/gate" => {
            let n: usize = req.uri().query().and_then(|q| q.parse().ok()).unwrap_or(0);
            let gate = GATES.get(n).ok_or(StatusCode::BAD_REQUEST)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !gate.load(Ordering::Relaxed) && Instant::now() < deadline {
                anon_fiber::sleep(Duration::from_millis(2));
            }
            Response::new("opened".into())
        }
        "/close" => {
            let mut r = Response::new("bye".into());
            r.headers_mut()
                .insert(http::header::CONNECTION, "close".parse().unwrap());
            r
        }
        _ => return Err(StatusCode::NOT_FOUND.into()),
    };
    Ok(resp)
}

/// The type of [`app`].
pub type AppFn = fn(Request<Body<'_>>) -> Result<Response<Payload>, HandlerError>;

/// The test application as a server with `cfg`.
pub fn app_server(cfg: ServerConfig) -> Server<AppFn> {
    Server::new(app as AppFn).with_config(cfg)
}

/// A plain blocking client socket with a read timeout.
pub fn connect(addr: SocketAddr) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until the server closes (bounded by the socket's read timeout).
pub fn read_to_close(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
    }
}

/// One parsed response from a raw stream.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads exactly one response (Content-Length or chunked framing) from `s`, keeping
/// extra bytes in `pending`.
pub fn read_response(s: &mut std::net::TcpStream, pending: &mut Vec<u8>) -> Resp {
    let mut buf = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = r.parse(pending) {
            let status = r.code.unwrap();
            let hs: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            pending.drain(..n);
            let resp = Resp {
                status,
                headers: hs,
                body: Vec::new(),
            };
            return read_body(s, pending, resp);
        }
        let k = s.read(&mut buf).expect("read");
        assert!(
            k > 0,
            "connection closed before a full response head: {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&buf[..k]);
    }
}

fn read_body(s: &mut std::net::TcpStream, pending: &mut Vec<u8>, mut resp: Resp) -> Resp {
    let mut buf = [0u8; 8192];
    if resp.status == 100 || resp.status == 204 || resp.status == 304 {
        return resp;
    }
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().unwrap();
        while pending.len() < len {
            let k = s.read(&mut buf).expect("read body");
            assert!(k > 0, "closed inside a body");
            pending.extend_from_slice(&buf[..k]);
        }
        resp.body = pending.drain(..len).collect();
        return resp;
    }
    assert_eq!(
        resp.header("transfer-encoding"),
        Some("chunked"),
        "no framing: {resp:?}"
    );
    loop {
        // One chunk line at a time.
        let line_end = loop {
            if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            let k = s.read(&mut buf).expect("read chunk");
            assert!(k > 0);
            pending.extend_from_slice(&buf[..k]);
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&pending[..line_end]).unwrap(), 16).unwrap();
        while pending.len() < line_end + 2 + size + 2 {
            let k = s.read(&mut buf).expect("read chunk data");
            assert!(k > 0);
            pending.extend_from_slice(&buf[..k]);
        }
        let data: Vec<u8> = pending[line_end + 2..line_end + 2 + size].to_vec();
        pending.drain(..line_end + 2 + size + 2);
        if size == 0 {
            return resp;
        }
        resp.body.extend_from_slice(&data);
    }
}

/// Sends `raw` on a new connection and parses one response.
pub fn roundtrip(addr: SocketAddr, raw: &[u8]) -> (Resp, std::net::TcpStream, Vec<u8>) {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending);
    (r, s, pending)
}

/// Finds `tool` on PATH, or fails the test with how to install it.
pub fn tool(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: run `cargo xtask deps` to install the test tools")
        })
}
