use crate::PATIENCE;
use anon_reactor::{Events, Poll, TimerKey, TimerWheel};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Pops everything due at `now`.
fn pop_all<T>(w: &mut TimerWheel<T>, now: Instant) -> Vec<T> {
    std::iter::from_fn(|| w.pop_expired(now).map(|(_, v)| v)).collect()
}

#[test]
fn timers_fire_in_deadline_order_ties_in_insertion_order() {
    let t0 = Instant::now();
    let mut w = TimerWheel::new(t0);
    let spec = [
        (300, "d"),
        (5, "a"),
        (70_000, "g"),
        (300, "e"),
        (64, "b"),
        (300, "f"),
        (65, "c"),
    ];
    for (at, name) in spec {
        w.insert(t0 + ms(at), name);
    }
    // Sub-millisecond differences within one tick are ordered too.
    w.insert(t0 + ms(4) + Duration::from_micros(600), "a0");
    assert_eq!(w.len(), 8);
    assert_eq!(pop_all(&mut w, t0 + ms(64)), ["a0", "a", "b"]);
    assert_eq!(pop_all(&mut w, t0 + ms(69_999)), ["c", "d", "e", "f"]);
    assert_eq!(pop_all(&mut w, t0 + ms(70_000)), ["g"]);
    assert!(w.is_empty());
}

#[test]
fn cancelled_timers_never_fire() {
    let t0 = Instant::now();
    let mut w = TimerWheel::new(t0);
    let keys: Vec<TimerKey> = (0..1000u64).map(|i| w.insert(t0 + ms(i % 97), i)).collect();
    for k in keys.iter().step_by(2) {
        assert!(w.cancel(*k).is_some());
    }
    // Cancel some after they became due but before they were popped.
    let _ = w.pop_expired(t0 + ms(50)); // moves tick 0..=50 into the due set
    for k in keys.iter().skip(1).step_by(4) {
        let _ = w.cancel(*k);
    }
    let fired = pop_all(&mut w, t0 + ms(1000));
    assert!(fired.iter().all(|v| v % 4 == 3), "{fired:?}");
    assert!(w.is_empty());
    for k in &keys {
        assert!(w.cancel(*k).is_none(), "stale key is harmless");
    }
}

#[test]
fn wheel_drives_a_real_poll_and_never_fires_early() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let t0 = Instant::now();
    let mut w = TimerWheel::new(t0);
    for (at, v) in [(30, 3), (10, 1), (20, 2), (20, 22)] {
        w.insert(t0 + ms(at), v);
    }
    let cancelled = w.insert(t0 + ms(15), 99);
    assert_eq!(w.cancel(cancelled), Some(99));
    let mut fired = Vec::new();
    let deadline = t0 + PATIENCE;
    while !w.is_empty() && Instant::now() < deadline {
        poll.poll(&mut events, w.timeout(Instant::now())).unwrap();
        let now = Instant::now();
        while let Some((_, v)) = w.pop_expired(now) {
            let due = t0 + ms(if v == 22 { 20 } else { v * 10 });
            assert!(now >= due, "timer {v} fired early");
            fired.push(v);
        }
    }
    assert_eq!(fired, [1, 2, 22, 3]);
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Op {
    /// A timer `ms` + `us` after the current time.
    Insert { ms: u64, us: u32 },
    /// A timer at exactly the deadline of an earlier one (equal deadlines).
    InsertSame(usize),
    /// Cancel the timer with this index (may be stale: fired or cancelled already).
    Cancel(usize),
    /// Move the clock and pop everything due.
    Advance { ms: u64, us: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let spread = prop_oneof![
        4 => 0u64..64,
        3 => 0u64..5_000,
        2 => 0u64..400_000,
        1 => 0u64..30_000_000,
    ];
    prop_oneof![
        6 => (spread, 0u32..1000).prop_map(|(ms, us)| Op::Insert { ms, us }),
        2 => any::<usize>().prop_map(Op::InsertSame),
        5 => any::<usize>().prop_map(Op::Cancel),
        3 => (prop_oneof![8 => 0u64..100, 3 => 0u64..5_000, 1 => 0u64..2_000_000], 0u32..1000)
            .prop_map(|(ms, us)| Op::Advance { ms, us }),
    ]
}

/// The reference: a `BTreeMap` ordered by `(deadline, insertion number)`. Its due rule is
/// the wheel's documented rounding: a deadline rounded up to a whole ms since the start is
/// due once the clock, rounded down to a whole ms, reaches it.
fn run_model(ops: &[Op]) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let mut wheel = TimerWheel::new(t0);
    let mut model: BTreeMap<(Instant, u64), u64> = BTreeMap::new();
    let mut live: HashMap<u64, (Instant, u64)> = HashMap::new();
    let mut keys: Vec<(TimerKey, Instant)> = Vec::new();
    let mut now = t0;
    let ceil_ms = |d: Instant| d.duration_since(t0).as_nanos().div_ceil(1_000_000);
    let floor_ms = |n: Instant| n.duration_since(t0).as_millis();
    for op in ops {
        match *op {
            Op::Insert { .. } | Op::InsertSame(_) => {
                let deadline = match *op {
                    Op::Insert { ms, us } => {
                        now + Duration::from_millis(ms) + Duration::from_micros(us.into())
                    }
                    Op::InsertSame(i) if !keys.is_empty() => keys[i % keys.len()].1,
                    _ => now,
                };
                let id = keys.len() as u64;
                let key = wheel.insert(deadline, id);
                keys.push((key, deadline));
                model.insert((deadline, id), id);
                live.insert(id, (deadline, id));
            }
            Op::Cancel(i) if !keys.is_empty() => {
                let id = (i % keys.len()) as u64;
                let got = wheel.cancel(keys[id as usize].0);
                let want = live.remove(&id).and_then(|k| model.remove(&k));
                prop_assert_eq!(got, want, "cancel of timer {}", id);
            }
            Op::Cancel(_) => {}
            Op::Advance { ms, us } => {
                now += Duration::from_millis(ms) + Duration::from_micros(us.into());
                let mut want = Vec::new();
                while let Some((&(d, id), _)) = model.first_key_value() {
                    if ceil_ms(d) > floor_ms(now) {
                        break;
                    }
                    model.pop_first();
                    live.remove(&id);
                    want.push(id);
                }
                let mut got = Vec::new();
                while let Some((key, id)) = wheel.pop_expired(now) {
                    prop_assert_eq!(key, keys[id as usize].0);
                    prop_assert!(keys[id as usize].1 <= now, "timer {} fired early", id);
                    got.push(id);
                    prop_assert!(got.len() <= keys.len(), "runaway pop_expired");
                }
                prop_assert_eq!(&got, &want, "due at {:?}", now - t0);
            }
        }
        prop_assert_eq!(wheel.len(), model.len());
        // The poll timeout is never later than the earliest deadline (rounded up).
        match model.first_key_value() {
            None => prop_assert_eq!(wheel.next_deadline(), None),
            Some((&(d, _), _)) => {
                let next = wheel.next_deadline();
                prop_assert!(next.is_some());
                prop_assert!(next.unwrap() <= t0 + Duration::from_millis(ceil_ms(d) as u64));
            }
        }
    }
    // Finally everything left fires, in order.
    let end = now + Duration::from_secs(365 * 86_400);
    let want: Vec<u64> = model.values().copied().collect();
    let got: Vec<u64> = pop_all(&mut wheel, end);
    prop_assert_eq!(got, want);
    prop_assert!(wheel.is_empty());
    Ok(())
}

proptest! {
    // Small sequences: many cases, shrinkable counterexamples.
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn wheel_matches_btreemap_model_small(ops in proptest::collection::vec(op(), 1..300)) {
        run_model(&ops)?;
    }
}

/// About 100 000 timers' worth of operations drawn from `seed` with the same mix as
/// `op()` (generating them through proptest's value trees is ten times slower; the small
/// test above covers shrinking).
fn ops_from_seed(seed: u64, n: usize) -> Vec<Op> {
    let mut x = seed | 1;
    let mut next = move |bound: u64| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    };
    (0..n)
        .map(|_| match next(16) {
            0..=5 => {
                let spread = [64, 5_000, 400_000, 30_000_000]
                    [[0, 0, 0, 0, 1, 1, 1, 2, 2, 3][next(10) as usize]];
                Op::Insert {
                    ms: next(spread),
                    us: next(1000) as u32,
                }
            }
            6..=7 => Op::InsertSame(next(u64::MAX) as usize),
            8..=12 => Op::Cancel(next(u64::MAX) as usize),
            _ => {
                let spread = [100, 5_000, 2_000_000]
                    [[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2][next(12) as usize]];
                Op::Advance {
                    ms: next(spread),
                    us: next(1000) as u32,
                }
            }
        })
        .collect()
}

proptest! {
    // The acceptance size: about 100 000 timers per case, inserted and cancelled in random
    // order, with equal deadlines and clock jumps across every wheel level.
    #![proptest_config(ProptestConfig::with_cases(4))]
    #[test]
    fn wheel_matches_btreemap_model_100k(seed in any::<u64>()) {
        let ops = ops_from_seed(seed, 200_000);
        let inserts = ops.iter().filter(|o| matches!(o, Op::Insert { .. } | Op::InsertSame(_))).count();
        prop_assert!(inserts > 90_000, "{} inserts", inserts);
        run_model(&ops)?;
    }
}
