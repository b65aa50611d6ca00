//! Shedding idle keep-alive connections, oldest first (what the facade does when the
//! process runs out of descriptors).

use std::io::{Read, Write};

use anon_http::server::{idle_connections, shed_idle, ServerConfig};

use crate::harness::{app_server, read_response, roundtrip, start};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn shed_idle_closes_the_oldest_idle_connection_first() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let (r, mut a, _) = roundtrip(t.addr, GET);
    assert_eq!(r.status, 200);
    assert_eq!(t.wait_stats(|s| s.hibernating == 1).hibernating, 1);
    let (r, mut b, mut pending) = roundtrip(t.addr, GET);
    assert_eq!(r.status, 200);
    assert_eq!(t.wait_stats(|s| s.hibernating == 2).hibernating, 2);

    // On the server's only worker: two idle connections listed, shed one.
    let on_worker = |n| {
        t.rt.spawn(move || (idle_connections(), shed_idle(n)))
            .unwrap()
            .join()
            .unwrap()
    };
    assert_eq!(on_worker(1), (2, 1));

    // A, the oldest, is closed: a clean end of stream.
    let mut buf = [0u8; 16];
    assert_eq!(a.read(&mut buf).unwrap(), 0);
    let st = t.wait_stats(|s| s.connections == 1);
    assert_eq!((st.shed, st.connections, st.hibernating), (1, 1, 1));

    // B still serves, and hibernates again afterwards.
    b.write_all(GET).unwrap();
    assert_eq!(read_response(&mut b, &mut pending).status, 200);
    assert_eq!(t.wait_stats(|s| s.served == 3).served, 3);
    assert_eq!(t.wait_stats(|s| s.hibernating == 1).hibernating, 1);

    // Asking for more than there are sheds what there is.
    assert_eq!(on_worker(5), (1, 1));
    assert_eq!(b.read(&mut buf).unwrap(), 0);
    assert_eq!(on_worker(1), (0, 0));
    let st = t.wait_stats(|s| s.connections == 0);
    assert_eq!((st.shed, st.connections, st.hibernating), (2, 0, 0));
}

#[test]
fn a_connection_waiting_for_its_first_request_is_never_shed() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let mut fresh = crate::harness::connect(t.addr);
    assert_eq!(t.wait_stats(|s| s.hibernating == 1).hibernating, 1);
    let shed = t.rt.spawn(|| shed_idle(1)).unwrap().join().unwrap();
    assert_eq!(shed, 0);
    // It is still served.
    fresh.write_all(GET).unwrap();
    let mut pending = Vec::new();
    assert_eq!(read_response(&mut fresh, &mut pending).status, 200);
    assert_eq!(t.stats().shed, 0);
}
