use anon_fiber::lock::WaitGroup;
use anon_fiber::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use anon_fiber::{Awakened, Runtime};
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn echo_conn(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn echo_server_serves_1000_concurrent_connections() {
    const CONNS: usize = 1000;
    let server = Runtime::builder().workers(2).build().unwrap();
    let clients = Runtime::builder().workers(2).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = Arc::clone(&accepted);
    let h = server.handle();
    let acceptor = server
        .spawn_on(0, move || {
            for i in 0..CONNS {
                let (s, _) = listener.accept().unwrap();
                acc.fetch_add(1, Ordering::SeqCst);
                h.spawn_on(i % 2, move || echo_conn(s)).unwrap();
            }
        })
        .unwrap();
    // Every client connects, then waits until all are connected, then talks: the 1000
    // connections are open at the same time.
    let all_connected = WaitGroup::new();
    all_connected.add(CONNS);
    let hs: Vec<_> = (0..CONNS)
        .map(|i| {
            let wg = all_connected.clone();
            clients
                .spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    wg.done();
                    wg.wait();
                    let msg = format!("hello from {i:04} ").repeat(20);
                    s.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    back == msg.as_bytes()
                })
                .unwrap()
        })
        .collect();
    let ok = hs
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap())
        .filter(|b| *b)
        .count();
    assert_eq!(ok, CONNS);
    acceptor.join().unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), CONNS);
}

#[test]
fn blocking_behaviour_outside_fibers_with_timeouts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener
        .set_accept_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::TimedOut);
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        s.write_all(&b).unwrap();
        s
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut b = [0u8; 5];
    assert_eq!(c.read(&mut b).unwrap_err().kind(), ErrorKind::TimedOut);
    c.set_read_timeout(None).unwrap();
    let n = c
        .write_vectored(&[IoSlice::new(b"he"), IoSlice::new(b"llo")])
        .unwrap();
    assert_eq!(n, 5);
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello");
    let server_side = t.join().unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    (&server_side).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(std::os::fd::AsRawFd::as_raw_fd(&c) >= 0);
}

#[test]
fn read_timeout_in_fiber_and_large_writes_park() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt
        .spawn_on(0, move || {
            let (s, _) = listener.accept().unwrap();
            // Read slowly so the writer fills the socket buffers and parks on EAGAIN.
            anon_fiber::sleep(Duration::from_millis(30));
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match (&s).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n,
                    Err(e) => panic!("{e}"),
                }
            }
            total
        })
        .unwrap();
    let client = rt
        .spawn_on(1, move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            let mut b = [0u8; 1];
            let timed_out = c.read(&mut b).unwrap_err().kind() == ErrorKind::TimedOut;
            let data = vec![7u8; 8 << 20];
            c.write_all(&data).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            timed_out
        })
        .unwrap();
    assert!(client.join().unwrap());
    assert_eq!(server.join().unwrap(), 8 << 20);
}

#[test]
fn unix_and_udp_in_fibers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let dir = std::env::temp_dir().join(format!("anon-fiber-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let p2 = path.clone();
    let server = rt
        .spawn_on(0, move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        })
        .unwrap();
    let client = rt
        .spawn_on(1, move || {
            let mut c = UnixStream::connect(&p2).unwrap();
            c.write_all(b"unix").unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            b
        })
        .unwrap();
    assert_eq!(&client.join().unwrap(), b"unix");
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let (a, b) = UnixStream::pair().unwrap();
    let r = rt
        .spawn(move || {
            let mut buf = [0u8; 3];
            (&b).read_exact(&mut buf).unwrap();
            buf
        })
        .unwrap();
    (&a).write_all(b"abc").unwrap();
    assert_eq!(&r.join().unwrap(), b"abc");

    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let saddr = server.local_addr().unwrap();
    let echo = rt
        .spawn_on(0, move || {
            let mut buf = [0u8; 16];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        })
        .unwrap();
    let got = rt
        .spawn_on(1, move || {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.connect(saddr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.send(b"dgram").unwrap();
            let mut buf = [0u8; 16];
            let n = c.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        })
        .unwrap();
    assert_eq!(got.join().unwrap(), b"dgram");
    echo.join().unwrap();
}

#[test]
fn hibernating_connection_holds_no_fiber_until_bytes_arrive() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let sv = Arc::clone(&served);
    let acceptor = rt
        .spawn(move || {
            for _ in 0..2 {
                let (s, _) = listener.accept().unwrap();
                let sv = Arc::clone(&sv);
                s.on_readable(Some(Duration::from_secs(30)), move |s, why| {
                    assert_eq!(why, Awakened::Readable);
                    anon_fiber::spawn(move || {
                        let mut b = [0u8; 3];
                        (&s).read_exact(&mut b).unwrap();
                        sv.fetch_add(1, Ordering::SeqCst);
                        (&s).write_all(&b).unwrap();
                    })
                    .unwrap();
                })
                .unwrap();
            }
        })
        .unwrap();
    let mut c1 = std::net::TcpStream::connect(addr).unwrap();
    let mut c2 = std::net::TcpStream::connect(addr).unwrap();
    acceptor.join().unwrap();
    // Both connections hibernate: no fiber is alive for them.
    assert_eq!(rt.live_fibers(), 0);
    c1.write_all(b"one").unwrap();
    let mut b = [0u8; 3];
    c1.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"one");
    c2.write_all(b"two").unwrap();
    c2.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"two");
    assert_eq!(served.load(Ordering::SeqCst), 2);

    // And the timeout path.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = rt
        .spawn(move || {
            let (s, _) = listener.accept().unwrap();
            s.on_readable(Some(Duration::from_millis(10)), move |_s, why| {
                tx.send(why).unwrap();
            })
            .unwrap();
        })
        .unwrap();
    let _c = std::net::TcpStream::connect(addr).unwrap();
    h.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        Awakened::TimedOut
    );
}

#[test]
fn shed_hibernation_fires_once_and_never_on_later_readiness() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&calls);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = rt
        .spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let log2 = Arc::clone(&log);
            let h = s
                .on_readable(Some(Duration::from_millis(200)), move |s, why| {
                    log2.lock().unwrap().push(why);
                    // Keep the stream open (so later bytes would be readable), then close.
                    tx.send(s).unwrap();
                })
                .unwrap();
            assert!(h.is_waiting());
            // Off the stream's worker the handle does nothing.
            let off = std::thread::scope(|sc| sc.spawn(|| h.shed()).join().unwrap());
            assert!(!off);
            assert!(h.is_waiting());
            assert!(h.shed(), "the first shed runs the callback");
            assert!(!h.shed(), "a second shed finds nothing");
            assert!(!h.is_waiting());
            assert_eq!(*log.lock().unwrap(), [Awakened::Shed]);
        })
        .unwrap();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    server.join().unwrap();
    let s = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // Later readiness (bytes, then end-of-stream) and the old timeout must not call it again.
    c.write_all(b"late").unwrap();
    drop(c);
    let mut b = [0u8; 4];
    let worker_read = rt
        .spawn(move || {
            (&s).read_exact(&mut b).unwrap();
            std::thread::sleep(Duration::from_millis(300)); // past the 200 ms timeout
            anon_fiber::sleep(Duration::from_millis(50)); // let the worker fire its timers
            b
        })
        .unwrap();
    assert_eq!(&worker_read.join().unwrap(), b"late");
    assert_eq!(*calls.lock().unwrap(), [Awakened::Shed]);
}

#[test]
fn a_stale_handle_never_touches_a_later_hibernation() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = rt
        .spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let (itx, irx) = std::sync::mpsc::channel();
            let first = s
                .on_readable(None, move |s, why| itx.send((s, why)).unwrap())
                .unwrap();
            assert!(first.shed());
            let (s, why) = irx.recv().unwrap();
            assert_eq!(why, Awakened::Shed);
            // Hibernate again; the first handle is stale.
            let second = s
                .on_readable(None, move |_s, why| tx.send(why).unwrap())
                .unwrap();
            assert!(!first.shed());
            assert!(second.is_waiting());
        })
        .unwrap();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    h.join().unwrap();
    c.write_all(b"x").unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        Awakened::Readable
    );
}

#[test]
fn on_readable_off_a_worker_hands_the_stream_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let c = TcpStream::connect(addr).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let err = c.on_readable(None, |_s, _why| unreachable!()).unwrap_err();
    assert!(err.to_string().contains("worker"), "{err}");
    let mut c = err.into_inner();
    // The stream is intact: it still talks.
    c.write_all(b"ok").unwrap();
    let mut b = [0u8; 2];
    peer.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}
