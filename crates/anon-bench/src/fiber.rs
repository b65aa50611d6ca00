//! Suite `fiber`: anon-fiber's scheduler side by side with `may` 0.3 on the same workloads —
//! yield+resume through the scheduler, spawn+run+join with a warm stack pool, cross-worker
//! unpark latency, TCP echo round trips per second on one worker, and RSS per parked fiber.
//!
//! `may` runs with one worker in this process (its worker count is global and fixed at
//! first use); its cross-worker figure comes from a child process started with two workers
//! (`anon-bench fiber --may-child-unpark N`). This crate forbids `unsafe`, and may's
//! `spawn`/`go!` are `unsafe fn`s, so may coroutines are started through its safe
//! `cqueue::scope` + `Cqueue::add` (a scoped spawn that joins at scope end); that adds a
//! little to may's spawn+join figure, said in the report notes.
//!
//! Arguments: `--rounds N` (default 5), `--quick` (a tenth of the iterations).

use crate::report::{interleaved, Contender, Report};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STACK_BYTES: usize = 64 * 1024;

fn parse(args: &[String]) -> Result<(usize, u64, Option<u64>), String> {
    let mut rounds = 5;
    let mut scale = 1;
    let mut child = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a value")?;
                rounds = v.parse().map_err(|e| format!("--rounds {v}: {e}"))?;
                if rounds == 0 || rounds > 100 {
                    return Err("--rounds must be 1..=100".into());
                }
            }
            "--quick" => scale = 10,
            "--may-child-unpark" => {
                let v = it.next().ok_or("--may-child-unpark needs a count")?;
                child = Some(v.parse().map_err(|e| format!("{v}: {e}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((rounds, scale, child))
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn anon_rt(workers: usize) -> anon_fiber::Runtime {
    anon_fiber::Runtime::builder()
        .workers(workers)
        .stack_size(STACK_BYTES)
        .max_fibers(40_000)
        .pin_workers(true)
        .build()
        .expect("anon runtime")
}

/// may's safe scoped spawn: `f` adds coroutines to the queue, then the scope waits for all
/// of them (a `Cqueue` cancels unfinished coroutines when dropped, so poll to the end).
fn may_scope<R>(f: impl FnOnce(&may::cqueue::Cqueue) -> R) -> R {
    may::cqueue::scope(|q| {
        let r = f(q);
        while !matches!(q.poll(None), Err(may::cqueue::PollError::Finished)) {}
        r
    })
}

fn ns_per(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

// ---- yield + resume -------------------------------------------------------------------

fn anon_yield(rt: &anon_fiber::Runtime, n: u64) -> f64 {
    let t = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            rt.spawn_on(0, move || {
                for _ in 0..n {
                    anon_fiber::yield_now();
                }
            })
            .expect("spawn")
        })
        .collect();
    for h in hs {
        h.join().expect("join");
    }
    ns_per(t.elapsed(), 2 * n)
}

fn may_yield(n: u64) -> f64 {
    let t = Instant::now();
    may_scope(|q| {
        for i in 0..2 {
            q.add(i, move |_| {
                for _ in 0..n {
                    may::coroutine::yield_now();
                }
            });
        }
    });
    ns_per(t.elapsed(), 2 * n)
}

// ---- spawn + run + join ---------------------------------------------------------------

fn anon_spawn_join(rt: &anon_fiber::Runtime, n: u64) -> f64 {
    rt.spawn_on(0, move || {
        let t = Instant::now();
        for _ in 0..n {
            anon_fiber::spawn(|| ())
                .expect("spawn")
                .join()
                .expect("join");
        }
        ns_per(t.elapsed(), n)
    })
    .expect("spawn")
    .join()
    .expect("join")
}

/// Runs `f` inside a may coroutine and returns its value.
fn in_may<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let out = Mutex::new(None);
    may_scope(|q| {
        let out = &out;
        q.add(0, move |_| {
            *out.lock().expect("lock") = Some(f());
        });
    });
    let r = out.lock().expect("lock").take();
    r.expect("the coroutine ran")
}

fn may_spawn_join(n: u64) -> f64 {
    in_may(move || {
        let t = Instant::now();
        for _ in 0..n {
            may_scope(|q| {
                q.add(0, |_| ());
            });
        }
        ns_per(t.elapsed(), n)
    })
}

// ---- cross-worker unpark --------------------------------------------------------------

/// A and B take turns through `turn` (odd: B's turn, even: A's), unparking each other.
fn anon_unpark(rt: &anon_fiber::Runtime, n: u64) -> f64 {
    let turn = Arc::new(AtomicU64::new(0));
    let b_handle: Arc<Mutex<Option<anon_fiber::Fiber>>> = Arc::new(Mutex::new(None));
    let (t2, bh) = (Arc::clone(&turn), Arc::clone(&b_handle));
    let (a_tx, a_rx) = std::sync::mpsc::channel::<anon_fiber::Fiber>();
    let b = rt
        .spawn_on(1, move || {
            *bh.lock().expect("lock") = anon_fiber::current();
            let a = a_rx.recv().expect("a handle");
            for i in 0..n {
                while t2.load(Ordering::Acquire) != 2 * i + 1 {
                    anon_fiber::park();
                }
                t2.store(2 * i + 2, Ordering::Release);
                a.unpark();
            }
        })
        .expect("spawn");
    let t3 = Arc::clone(&turn);
    let a = rt
        .spawn_on(0, move || {
            let b = loop {
                if let Some(b) = b_handle.lock().expect("lock").clone() {
                    break b;
                }
                anon_fiber::sleep(Duration::from_millis(1));
            };
            a_tx.send(anon_fiber::current().expect("in fiber"))
                .expect("send");
            let t = Instant::now();
            for i in 0..n {
                t3.store(2 * i + 1, Ordering::Release);
                b.unpark();
                while t3.load(Ordering::Acquire) != 2 * i + 2 {
                    anon_fiber::park();
                }
            }
            ns_per(t.elapsed(), 2 * n)
        })
        .expect("spawn");
    b.join().expect("join b");
    a.join().expect("join a")
}

fn may_unpark_in_process(n: u64) -> f64 {
    let turn = AtomicU64::new(0);
    let b_handle: Mutex<Option<may::coroutine::Coroutine>> = Mutex::new(None);
    let a_handle: Mutex<Option<may::coroutine::Coroutine>> = Mutex::new(None);
    let result = Mutex::new(0.0);
    may_scope(|q| {
        let (turn, bh, ah, result) = (&turn, &b_handle, &a_handle, &result);
        q.add(1, move |_| {
            *bh.lock().expect("lock") = Some(may::coroutine::current());
            let a = loop {
                if let Some(a) = ah.lock().expect("lock").clone() {
                    break a;
                }
                may::coroutine::sleep(Duration::from_millis(1));
            };
            for i in 0..n {
                while turn.load(Ordering::Acquire) != 2 * i + 1 {
                    may::coroutine::park();
                }
                turn.store(2 * i + 2, Ordering::Release);
                a.unpark();
            }
        });
        q.add(0, move |_| {
            *ah.lock().expect("lock") = Some(may::coroutine::current());
            let b = loop {
                if let Some(b) = bh.lock().expect("lock").clone() {
                    break b;
                }
                may::coroutine::sleep(Duration::from_millis(1));
            };
            let t = Instant::now();
            for i in 0..n {
                turn.store(2 * i + 1, Ordering::Release);
                b.unpark();
                while turn.load(Ordering::Acquire) != 2 * i + 2 {
                    may::coroutine::park();
                }
            }
            *result.lock().expect("lock") = ns_per(t.elapsed(), 2 * n);
        });
    });
    let r = *result.lock().expect("lock");
    r
}

fn may_unpark_child(n: u64) -> f64 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(_) => return f64::NAN,
    };
    let out = std::process::Command::new(exe)
        .args(["fiber", "--may-child-unpark", &n.to_string()])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

// ---- TCP echo on one worker -----------------------------------------------------------

const ECHO_CONNS: usize = 8;
const ECHO_MSG: usize = 64;

fn anon_echo(rt: &anon_fiber::Runtime, per_conn: u64) -> f64 {
    let listener = anon_fiber::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = rt
        .spawn_on(0, move || {
            for _ in 0..ECHO_CONNS {
                let (s, _) = listener.accept().expect("accept");
                anon_fiber::spawn(move || {
                    let _ = s.set_nodelay(true);
                    let mut buf = [0u8; ECHO_MSG];
                    while (&s).read_exact(&mut buf).is_ok() {
                        if (&s).write_all(&buf).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawn");
            }
        })
        .expect("spawn");
    let t = Instant::now();
    let clients: Vec<_> = (0..ECHO_CONNS)
        .map(|_| {
            rt.spawn_on(0, move || {
                let mut c = anon_fiber::net::TcpStream::connect(addr).expect("connect");
                let _ = c.set_nodelay(true);
                let mut buf = [7u8; ECHO_MSG];
                for _ in 0..per_conn {
                    c.write_all(&buf).expect("write");
                    c.read_exact(&mut buf).expect("read");
                }
            })
            .expect("spawn")
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let el = t.elapsed();
    server.join().expect("server");
    (ECHO_CONNS as u64 * per_conn) as f64 / el.as_secs_f64()
}

fn may_echo(per_conn: u64) -> f64 {
    let listener = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let elapsed = Mutex::new(Duration::ZERO);
    may_scope(|q| {
        let listener = &listener;
        q.add(100, move |_| {
            may_scope(|q2| {
                for i in 0..ECHO_CONNS {
                    let (s, _) = listener.accept().expect("accept");
                    q2.add(i, move |_| {
                        let mut s = s;
                        let _ = s.set_nodelay(true);
                        let mut buf = [0u8; ECHO_MSG];
                        while s.read_exact(&mut buf).is_ok() {
                            if s.write_all(&buf).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
        });
        let elapsed = &elapsed;
        q.add(200, move |_| {
            let t = Instant::now();
            may_scope(|q3| {
                for i in 0..ECHO_CONNS {
                    q3.add(i, move |_| {
                        let mut c = may::net::TcpStream::connect(addr).expect("connect");
                        let _ = c.set_nodelay(true);
                        let mut buf = [7u8; ECHO_MSG];
                        for _ in 0..per_conn {
                            c.write_all(&buf).expect("write");
                            c.read_exact(&mut buf).expect("read");
                        }
                    });
                }
            });
            *elapsed.lock().expect("lock") = t.elapsed();
        });
    });
    let el = *elapsed.lock().expect("lock");
    (ECHO_CONNS as u64 * per_conn) as f64 / el.as_secs_f64()
}

// ---- RSS per parked fiber -------------------------------------------------------------

fn anon_rss(n: usize) -> f64 {
    let rt = anon_rt(1);
    let started = Arc::new(AtomicUsize::new(0));
    let before = rss_bytes();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let s = Arc::clone(&started);
            rt.spawn_on(0, move || {
                s.fetch_add(1, Ordering::AcqRel);
                let mut parks = 0u64;
                // Parked until unparked below (bounded: spurious wakeups re-park).
                while s.load(Ordering::Acquire) != usize::MAX && parks < 1_000_000 {
                    anon_fiber::park();
                    parks += 1;
                }
            })
            .expect("spawn")
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(60);
    while started.load(Ordering::Acquire) < n && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    let after = rss_bytes();
    started.store(usize::MAX, Ordering::Release);
    for h in &hs {
        h.fiber().unpark();
    }
    for h in hs {
        h.join().expect("join");
    }
    (after.saturating_sub(before)) as f64 / n as f64
}

fn may_rss(n: usize) -> f64 {
    let started = AtomicUsize::new(0);
    let release = AtomicUsize::new(0);
    let handles: Mutex<Vec<may::coroutine::Coroutine>> = Mutex::new(Vec::with_capacity(n));
    let before = rss_bytes();
    let mut after = 0;
    std::thread::scope(|ts| {
        let (started, release, handles) = (&started, &release, &handles);
        ts.spawn(move || {
            may_scope(|q| {
                for i in 0..n {
                    q.add(i, move |_| {
                        handles
                            .lock()
                            .expect("lock")
                            .push(may::coroutine::current());
                        started.fetch_add(1, Ordering::AcqRel);
                        let mut parks = 0u64;
                        while release.load(Ordering::Acquire) == 0 && parks < 1_000_000 {
                            may::coroutine::park();
                            parks += 1;
                        }
                    });
                }
            });
        });
        let end = Instant::now() + Duration::from_secs(60);
        while started.load(Ordering::Acquire) < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
        after = rss_bytes();
        release.store(1, Ordering::Release);
        for c in handles.lock().expect("lock").iter() {
            c.unpark();
        }
    });
    (after.saturating_sub(before)) as f64 / n as f64
}

/// The suite's entry point.
pub fn run(args: &[String]) -> Result<(), String> {
    let (rounds, scale, child) = parse(args)?;
    may::config().set_stack_size(STACK_BYTES / std::mem::size_of::<usize>());
    if let Some(n) = child {
        may::config().set_workers(2);
        println!("{}", may_unpark_in_process(n));
        return Ok(());
    }
    may::config().set_workers(1);

    let mut report = Report::new("fiber");
    report.notes.push(format!(
        "{rounds} interleaved rounds, medians; 2 shared cores; workers pinned in both \
         runtimes (may's default, Builder::pin_workers for anon); 64 KiB stacks for both; \
         anon-fiber vs may 0.3.51"
    ));
    report
        .notes
        .push("yield: 2 fibers on one worker yield in turn; ns = wall time / yields".into());
    report.notes.push(
        "spawn+join: from a fiber, spawn an empty fiber on the same worker and join it; \
         may through its safe cqueue::scope + add (anon-bench forbids unsafe, may's spawn \
         is unsafe), which adds a scope's bookkeeping to may's figure"
            .into(),
    );
    report.notes.push(
        "unpark: fibers on two workers take turns via park/unpark; ns per one-way handoff; \
         may in a child process with 2 workers (its worker count is global), placement by may"
            .into(),
    );
    report.notes.push(format!(
        "echo: {ECHO_CONNS} loopback connections, {ECHO_MSG}-byte messages, clients and \
         server on the same single worker"
    ));
    report.notes.push(
        "RSS: resident-set growth while N fibers are parked, divided by N (fresh runtime per \
         round for anon; may's coroutines in one cqueue scope)"
            .into(),
    );

    let rt1 = anon_rt(1);
    let rt2 = anon_rt(2);

    let n = 200_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-fiber", Box::new(|| anon_yield(&rt1, n))),
        ("may", Box::new(|| may_yield(n))),
    ];
    report.rows.extend(interleaved(
        "yield+resume through the scheduler",
        "ns",
        Some("<= 40 ns (may 55-85)"),
        rounds,
        &mut c,
    ));

    let n = 100_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-fiber", Box::new(|| anon_spawn_join(&rt1, n))),
        ("may (cqueue scope)", Box::new(|| may_spawn_join(n))),
    ];
    report.rows.extend(interleaved(
        "spawn+run+join, warm pool",
        "ns",
        Some("<= 200 ns"),
        rounds,
        &mut c,
    ));

    let n = 20_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-fiber", Box::new(|| anon_unpark(&rt2, n))),
        ("may (child, 2 workers)", Box::new(|| may_unpark_child(n))),
    ];
    report.rows.extend(interleaved(
        "cross-worker unpark, one-way",
        "ns",
        None,
        rounds,
        &mut c,
    ));

    let n = 20_000 / scale;
    let mut c: Vec<Contender<'_>> = vec![
        (
            "anon-fiber",
            Box::new(|| anon_echo(&rt1, n / ECHO_CONNS as u64)),
        ),
        ("may", Box::new(|| may_echo(n / ECHO_CONNS as u64))),
    ];
    report.rows.extend(interleaved(
        "TCP echo round trips, one worker",
        "round trips/s",
        None,
        rounds,
        &mut c,
    ));

    let n = (10_000 / scale) as usize;
    let mut c: Vec<Contender<'_>> = vec![
        ("anon-fiber", Box::new(|| anon_rss(n))),
        ("may", Box::new(|| may_rss(n))),
    ];
    report.rows.extend(interleaved(
        "RSS per parked fiber",
        "bytes",
        Some("well under may's ~11 KB"),
        rounds,
        &mut c,
    ));

    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}
