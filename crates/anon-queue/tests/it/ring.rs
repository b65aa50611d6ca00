use anon_queue::{PopError, PushError, Queue};

#[test]
fn full_is_distinct_from_closed() {
    let q = Queue::new(1);
    q.try_push(1).unwrap();
    assert_eq!(q.try_push(2), Err(PushError::Full(2)));
    q.close();
    assert_eq!(q.try_push(3), Err(PushError::Closed(3)));
}

#[test]
fn pops_drain_after_close_then_report_closed() {
    let q = Queue::new(3);
    assert_eq!(q.try_pop(), Err(PopError::Empty));
    q.try_push('a').unwrap();
    q.try_push('b').unwrap();
    assert!(q.close());
    assert!(!q.close(), "second close reports it was already closed");
    assert!(q.is_closed());
    assert_eq!(q.len(), 2);
    assert_eq!(q.try_pop(), Ok('a'));
    assert_eq!(q.try_pop(), Ok('b'));
    assert_eq!(q.try_pop(), Err(PopError::Closed));
}

#[test]
fn len_and_capacity_track_every_lap() {
    let q = Queue::new(3);
    assert_eq!(q.capacity(), 3);
    for round in 0..10 {
        for i in 0..3 {
            q.try_push(round * 3 + i).unwrap();
            assert_eq!(q.len(), i as usize + 1);
        }
        assert!(q.is_full());
        for i in 0..3 {
            assert_eq!(q.try_pop(), Ok(round * 3 + i));
        }
        assert!(q.is_empty());
    }
    let s = q.stats();
    assert_eq!((s.pushed, s.popped, s.max_depth), (30, 30, 3));
}

#[test]
fn values_left_in_the_queue_are_dropped_with_it() {
    let marker = std::sync::Arc::new(());
    let q = Queue::new(4);
    for _ in 0..3 {
        q.try_push(std::sync::Arc::clone(&marker)).unwrap();
    }
    assert_eq!(std::sync::Arc::strong_count(&marker), 4);
    drop(q);
    assert_eq!(std::sync::Arc::strong_count(&marker), 1);
}

#[test]
fn threads_pass_every_item_exactly_once() {
    use std::sync::Arc;
    const PER_PRODUCER: u64 = 20_000;
    let q = Arc::new(Queue::new(8));
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let mut v = p * PER_PRODUCER + i;
                    loop {
                        match q.try_push(v) {
                            Ok(()) => break,
                            Err(e) => {
                                assert!(e.is_full());
                                v = e.into_inner();
                                std::thread::yield_now();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match q.try_pop() {
                        Ok(v) => got.push(v),
                        Err(PopError::Empty) => std::thread::yield_now(),
                        Err(PopError::Closed) => return got,
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..2 * PER_PRODUCER).collect();
    assert_eq!(all, expected);
    let s = q.stats();
    assert_eq!((s.pushed, s.popped), (2 * PER_PRODUCER, 2 * PER_PRODUCER));
}

mod model {
    use anon_queue::{PopError, PushError, Queue};
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u16),
        Pop,
        Close,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => any::<u16>().prop_map(Op::Push),
            5 => Just(Op::Pop),
            1 => Just(Op::Close),
        ]
    }

    proptest! {
        /// Any sequence of operations behaves like a bounded `VecDeque` with a closed flag.
        #[test]
        fn queue_behaves_like_a_bounded_vecdeque(
            cap in 1usize..6,
            ops in prop::collection::vec(op(), 0..200),
        ) {
            let q = Queue::new(cap);
            let mut model: VecDeque<u16> = VecDeque::new();
            let mut closed = false;
            let (mut full, mut refused_closed, mut max_depth) = (0u64, 0u64, 0usize);
            for op in ops {
                match op {
                    Op::Push(v) => {
                        let got = q.try_push(v);
                        let want = if closed {
                            refused_closed += 1;
                            Err(PushError::Closed(v))
                        } else if model.len() == cap {
                            full += 1;
                            Err(PushError::Full(v))
                        } else {
                            model.push_back(v);
                            max_depth = max_depth.max(model.len());
                            Ok(())
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::Pop => {
                        let want = match model.pop_front() {
                            Some(v) => Ok(v),
                            None if closed => Err(PopError::Closed),
                            None => Err(PopError::Empty),
                        };
                        prop_assert_eq!(q.try_pop(), want);
                    }
                    Op::Close => {
                        prop_assert_eq!(q.close(), !closed);
                        closed = true;
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.is_closed(), closed);
                prop_assert_eq!(q.is_full(), model.len() == cap);
                let s = q.stats();
                prop_assert_eq!(s.depth, model.len());
                prop_assert_eq!(s.pushed - s.popped, model.len() as u64);
                prop_assert_eq!((s.rejected_full, s.rejected_closed), (full, refused_closed));
                prop_assert_eq!(s.max_depth, max_depth.max(if full > 0 { cap } else { 0 }));
            }
        }
    }
}
