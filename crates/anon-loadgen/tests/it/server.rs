//! A scriptable loopback HTTP server for the tests: one thread per connection, every loop
//! bounded by a stop flag and a lifetime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server does with the n-th request it reads (n counts from 0, server-wide).
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Answer with these bytes and keep the connection.
    Reply(&'static [u8]),
    /// Answer with these bytes, then close.
    ReplyClose(&'static [u8]),
    /// Never answer (keep reading).
    Silent,
    /// Reset the connection (SO_LINGER 0, then close).
    Reset,
}

pub const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
pub const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
pub const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
pub const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntry again";

/// Longest any test server lives.
const LIFETIME: Duration = Duration::from_secs(30);

pub struct Server {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(script: fn(u64) -> Action) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), requests.clone());
        let accept = std::thread::spawn(move || {
            let born = Instant::now();
            while !s.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((c, _)) => {
                        let (s, r) = (s.clone(), r.clone());
                        std::thread::spawn(move || connection(c, script, &s, &r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Server {
            addr,
            requests,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn connection(mut c: TcpStream, script: fn(u64) -> Action, stop: &AtomicBool, n: &AtomicU64) {
    let born = Instant::now();
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) && born.elapsed() < LIFETIME && buf.len() < 1 << 16 {
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            match script(n.fetch_add(1, Ordering::Relaxed)) {
                Action::Reply(b) => {
                    if c.write_all(b).is_err() {
                        return;
                    }
                }
                Action::ReplyClose(b) => {
                    let _ = c.write_all(b);
                    return;
                }
                Action::Silent => {}
                Action::Reset => {
                    let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
                    return;
                }
            }
        }
    }
}
