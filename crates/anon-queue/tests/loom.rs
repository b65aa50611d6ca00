//! Loom models of anon-queue's concurrent state (run with `cargo xtask loom`: release,
//! `--cfg anon_loom`, `LOOM_MAX_PREEMPTIONS=2`). Scenarios stay tiny: 2-3 threads,
//! capacity 1-2, a few items.
#![cfg(anon_loom)]

use anon_queue::{
    Admission, AdmissionConfig, Channel, Ioq, PopError, PushError, Queue, RecvError, ThreadParker,
};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Pops until the queue reports `Closed`; the queue must be closed and quiescent.
fn drain<T>(q: &Queue<T>) -> Vec<T> {
    let mut out = Vec::new();
    loop {
        match q.try_pop() {
            Ok(v) => out.push(v),
            Err(PopError::Closed) => return out,
            Err(PopError::Empty) => panic!("a closed, quiescent queue reported Empty"),
        }
    }
}

#[test]
fn ring_two_producers_race_for_one_slot() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let q = Arc::clone(&q);
                thread::spawn(move || q.try_push(i).is_ok())
            })
            .collect();
        let popped = q.try_pop().ok();
        let pushed: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        q.close();
        let mut got: Vec<i32> = popped.into_iter().collect();
        got.extend(drain(&q));
        got.sort_unstable();
        let want: Vec<i32> = (0..2).filter(|&i| pushed[i as usize]).collect();
        assert_eq!(got, want, "every accepted item comes out exactly once");
        assert!(
            pushed.iter().any(|&p| p),
            "one of two pushes into an empty queue wins"
        );
    });
}

#[test]
fn ring_push_pop_across_laps_keeps_fifo() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        let producer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut sent = Vec::new();
                for v in 0..2 {
                    // A bounded retry: the consumer may not have made room yet.
                    for _ in 0..2 {
                        match q.try_push(v) {
                            Ok(()) => {
                                sent.push(v);
                                break;
                            }
                            Err(PushError::Full(_)) => thread::yield_now(),
                            Err(PushError::Closed(_)) => unreachable!("not closed yet"),
                        }
                    }
                }
                sent
            })
        };
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Ok(v) = q.try_pop() {
                got.push(v);
            }
        }
        let sent = producer.join().unwrap();
        q.close();
        got.extend(drain(&q));
        assert_eq!(got, sent, "FIFO, nothing lost, nothing duplicated");
    });
}

#[test]
fn ring_close_races_push_and_pop() {
    loom::model(|| {
        let q = Arc::new(Queue::new(2));
        let producer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let a = q.try_push(1);
                let b = q.try_push(2);
                if a.as_ref().is_err_and(|e| e.is_closed()) {
                    assert!(
                        b.as_ref().is_err_and(|e| e.is_closed()),
                        "closed stays closed"
                    );
                }
                [a.is_ok(), b.is_ok()]
            })
        };
        let closer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                q.close();
            })
        };
        let first = q.try_pop();
        let accepted = producer.join().unwrap();
        closer.join().unwrap();
        let mut got: Vec<i32> = first.into_iter().collect();
        got.extend(drain(&q));
        let want: Vec<i32> = [1, 2]
            .into_iter()
            .zip(accepted)
            .filter_map(|(v, ok)| ok.then_some(v))
            .collect();
        assert_eq!(got, want, "accepted items survive the close, in order");
    });
}

#[test]
fn ring_closed_answer_is_final() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        let producer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.try_push(1).is_ok())
        };
        let closer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                q.close();
            })
        };
        let mut got = Vec::new();
        let mut saw_closed = false;
        for _ in 0..3 {
            match q.try_pop() {
                Ok(v) => got.push(v),
                Err(PopError::Closed) => {
                    saw_closed = true;
                    break;
                }
                Err(PopError::Empty) => thread::yield_now(),
            }
        }
        let accepted = producer.join().unwrap();
        closer.join().unwrap();
        if saw_closed {
            // Nothing may land after a pop answered Closed.
            assert_eq!(q.try_pop(), Err(PopError::Closed));
            assert_eq!(got.len(), usize::from(accepted));
        }
    });
}

#[test]
fn ring_two_consumers_split_the_items() {
    loom::model(|| {
        let q = Arc::new(Queue::new(2));
        q.try_push(1).unwrap();
        q.try_push(2).unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = Arc::clone(&q);
                thread::spawn(move || q.try_pop().ok())
            })
            .collect();
        let refill = q.try_push(3).is_ok();
        let mut got: Vec<i32> = consumers
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        q.close();
        got.extend(drain(&q));
        got.sort_unstable();
        let mut want = vec![1, 2];
        if refill {
            want.push(3);
        }
        assert_eq!(got, want);
    });
}

#[test]
fn channel_send_wakes_a_parked_receiver() {
    loom::model(|| {
        let ch = Arc::new(Channel::new(1, 1));
        let receiver = {
            let ch = Arc::clone(&ch);
            thread::spawn(move || ch.recv(&ThreadParker::current()))
        };
        ch.try_send(7).unwrap();
        // If the wake-up were lost, the receiver would park forever and loom would report
        // a deadlock.
        assert_eq!(receiver.join().unwrap(), Ok(7));
    });
}

#[test]
fn channel_close_wakes_a_parked_receiver() {
    loom::model(|| {
        let ch: Arc<Channel<u8>> = Arc::new(Channel::new(1, 1));
        let receiver = {
            let ch = Arc::clone(&ch);
            thread::spawn(move || ch.recv(&ThreadParker::current()))
        };
        ch.close();
        assert_eq!(receiver.join().unwrap(), Err(RecvError::Closed));
    });
}

#[test]
fn channel_recv_wakes_a_parked_sender() {
    loom::model(|| {
        let ch = Arc::new(Channel::new(1, 1));
        ch.try_send(1).unwrap();
        let sender = {
            let ch = Arc::clone(&ch);
            thread::spawn(move || ch.send(2, &ThreadParker::current()).is_ok())
        };
        assert_eq!(ch.try_recv(), Ok(1));
        assert!(sender.join().unwrap());
        assert_eq!(ch.try_recv(), Ok(2));
    });
}

/// `workers` threads each try once to take a permit from a limiter of `max`.
fn limiter_model(workers: usize, max: usize) {
    loom::model(move || {
        let adm = Arc::new(Admission::new(AdmissionConfig {
            max_in_flight: max,
            codel: None,
            ..AdmissionConfig::default()
        }));
        let holding = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let adm = Arc::clone(&adm);
                let holding = Arc::clone(&holding);
                thread::spawn(move || {
                    let now = std::time::Instant::now();
                    match adm.admit(now, now) {
                        Ok(permit) => {
                            let n = holding.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(n <= max, "{n} permits out with a limit of {max}");
                            holding.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                            true
                        }
                        Err(_) => false,
                    }
                })
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        assert!(
            admitted >= max.min(workers),
            "below the limit, callers get in"
        );
        assert_eq!(adm.in_flight(), 0, "every permit came back");
        let s = adm.stats();
        assert_eq!(s.admitted as usize, admitted);
        assert_eq!(s.admitted + s.rejected.iter().sum::<u64>(), workers as u64);
        assert!(s.max_in_flight <= max);
    });
}

#[test]
fn limiter_never_exceeds_max_and_returns_every_permit() {
    limiter_model(2, 1);
}

#[test]
fn limiter_of_two_with_three_callers() {
    limiter_model(3, 2);
}

#[test]
fn ioq_release_while_a_waiter_registers_is_not_lost() {
    loom::model(|| {
        let ioq = Arc::new(Ioq::new(1, 1));
        let held = ioq.try_acquire().unwrap();
        let waiter = {
            let ioq = Arc::clone(&ioq);
            thread::spawn(move || {
                let p = ioq
                    .acquire(&ThreadParker::current())
                    .expect("one waiter may wait");
                drop(p);
            })
        };
        // Released while the waiter may be anywhere in acquire: it must still get the
        // permit (a lost wake-up parks it forever, which loom reports as a deadlock).
        drop(held);
        waiter.join().unwrap();
        assert_eq!((ioq.holders(), ioq.waiters()), (0, 0));
    });
}

#[test]
fn ioq_full_wait_list_answers_again() {
    loom::model(|| {
        let ioq = Arc::new(Ioq::new(1, 1));
        let held = ioq.try_acquire().unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let ioq = Arc::clone(&ioq);
                thread::spawn(move || ioq.acquire(&ThreadParker::current()).is_ok())
            })
            .collect();
        drop(held);
        let got: Vec<bool> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(got.iter().any(|&ok| ok), "the permit reaches someone");
        assert_eq!(ioq.holders(), 0);
        let s = ioq.stats();
        assert_eq!(s.acquired + s.rejected, 3);
    });
}
