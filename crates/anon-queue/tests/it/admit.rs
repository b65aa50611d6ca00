use anon_queue::{
    Admission, AdmissionConfig, BusyChange, CodelConfig, GradientConfig, Hysteresis, Reason,
};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn limiter_only(max: usize) -> AdmissionConfig {
    AdmissionConfig {
        max_in_flight: max,
        codel: None,
        ..AdmissionConfig::default()
    }
}

#[test]
fn permits_are_returned_on_drop_and_finish() {
    let adm = Admission::new(limiter_only(2));
    let t = Instant::now();
    let a = adm.admit(t, t).unwrap();
    let b = adm.admit(t, t).unwrap();
    assert_eq!(adm.in_flight(), 2);
    let no = adm.admit(t, t).unwrap_err();
    assert_eq!(no.reason, Reason::ConcurrencyLimit);
    drop(a);
    b.finish(t + ms(1));
    assert_eq!(adm.in_flight(), 0);
    let s = adm.stats();
    assert_eq!(s.admitted, 2);
    assert_eq!(s.rejected_for(Reason::ConcurrencyLimit), 1);
    assert_eq!(s.max_in_flight, 2);
}

#[test]
fn rejection_carries_the_configured_retry_after() {
    let adm = Admission::new(AdmissionConfig {
        max_in_flight: 1,
        retry_after: Duration::from_secs(3),
        ..AdmissionConfig::default()
    });
    let t = Instant::now();
    let _p = adm.admit(t, t).unwrap();
    let no = adm.admit(t, t).unwrap_err();
    assert_eq!(no.retry_after, Duration::from_secs(3));
    assert!(no.to_string().contains("concurrency limit"), "{no}");
}

#[test]
fn queue_delay_allows_100ms_after_a_recent_empty_queue_and_5ms_under_a_standing_queue() {
    let t0 = Instant::now();
    let adm = Admission::new_at(AdmissionConfig::default(), t0);
    // The queue was empty at t0 (creation): a 50 ms wait is still fine 60 ms later.
    assert!(adm.admit(t0 + ms(10), t0 + ms(60)).is_ok());
    // 150 ms later, with no empty queue since t0, a standing queue exists: 6 ms is too long.
    let late = adm.admit(t0 + ms(144), t0 + ms(150)).unwrap_err();
    assert_eq!(late.reason, Reason::QueueDelay);
    // ... while 4 ms is within the 5 ms target.
    assert!(adm.admit(t0 + ms(146), t0 + ms(150)).is_ok());
    // Once the queue drains, the 100 ms allowance is back.
    adm.note_empty(t0 + ms(150));
    assert!(adm.admit(t0 + ms(151), t0 + ms(200)).is_ok());
    // Past 100 ms of waiting, a request is shed in any case.
    assert!(adm.admit(t0 + ms(200), t0 + ms(301)).is_err());
    assert_eq!(adm.stats().rejected_for(Reason::QueueDelay), 2);
}

#[test]
fn adaptive_lifo_is_advised_only_under_a_standing_queue_and_when_enabled() {
    let t0 = Instant::now();
    let on = AdmissionConfig {
        codel: Some(CodelConfig {
            adaptive_lifo: true,
            ..CodelConfig::default()
        }),
        ..AdmissionConfig::default()
    };
    let adm = Admission::new_at(on, t0);
    assert!(!adm.lifo(t0 + ms(100)));
    assert!(adm.lifo(t0 + ms(101)));
    adm.note_empty(t0 + ms(101));
    assert!(!adm.lifo(t0 + ms(102)));
    let off = Admission::new_at(AdmissionConfig::default(), t0);
    assert!(!off.lifo(t0 + ms(500)));
}

#[test]
fn adaptive_limit_is_off_by_default_and_moves_when_on() {
    let t0 = Instant::now();
    let fixed = Admission::new(limiter_only(64));
    assert_eq!(fixed.limit(), 64);
    let adaptive = Admission::new(AdmissionConfig {
        max_in_flight: 64,
        codel: None,
        adaptive: Some(GradientConfig::default()),
        ..AdmissionConfig::default()
    });
    assert_eq!(adaptive.limit(), 20);
    // Keep the limiter fully used at a steady latency: the limit grows.
    let mut t = t0;
    for _ in 0..100 {
        let permits: Vec<_> = (0..adaptive.limit())
            .map_while(|_| adaptive.admit(t, t).ok())
            .collect();
        t += ms(10);
        for p in permits {
            p.finish(t);
        }
    }
    let grown = adaptive.limit();
    assert!(grown > 20, "limit did not grow: {grown}");
    // Latency jumps tenfold under the same use: the limit shrinks.
    for _ in 0..30 {
        let permits: Vec<_> = (0..adaptive.limit())
            .map_while(|_| adaptive.admit(t, t).ok())
            .collect();
        t += ms(100);
        for p in permits {
            p.finish(t);
        }
    }
    assert!(adaptive.limit() < grown, "{} !< {grown}", adaptive.limit());
    assert_eq!(adaptive.in_flight(), 0);
}

#[test]
fn hysteresis_enters_above_high_and_leaves_below_low() {
    let h = Hysteresis::new(2, 5);
    let seq = [3, 5, 6, 7, 4, 2, 1, 3, 6];
    let got: Vec<BusyChange> = seq.iter().map(|&l| h.update(l)).collect();
    use BusyChange::*;
    assert_eq!(
        got,
        [
            Unchanged, Unchanged, Entered, Unchanged, Unchanged, Unchanged, Left, Unchanged,
            Entered
        ]
    );
    assert!(h.is_busy());
    assert_eq!(h.watermarks(), (2, 5));
}

#[derive(Debug, Clone)]
enum LimOp {
    Admit,
    Release(usize),
}

proptest! {
    /// The limiter never has more permits out than its max, admits exactly when below it,
    /// and gets every permit back.
    #[test]
    fn limiter_never_exceeds_max(
        max in 1usize..6,
        ops in prop::collection::vec(
            prop_oneof![Just(LimOp::Admit), (0usize..8).prop_map(LimOp::Release)],
            0..100,
        ),
    ) {
        let adm = Admission::new(limiter_only(max));
        let t = Instant::now();
        let mut held = Vec::new();
        let (mut admitted, mut rejected) = (0u64, 0u64);
        for op in ops {
            match op {
                LimOp::Admit => match adm.admit(t, t) {
                    Ok(p) => {
                        prop_assert!(held.len() < max);
                        held.push(p);
                        admitted += 1;
                    }
                    Err(r) => {
                        prop_assert_eq!(r.reason, Reason::ConcurrencyLimit);
                        prop_assert_eq!(held.len(), max);
                        rejected += 1;
                    }
                },
                LimOp::Release(i) => {
                    if !held.is_empty() {
                        let i = i % held.len();
                        drop(held.swap_remove(i));
                    }
                }
            }
            prop_assert!(adm.in_flight() <= max);
            prop_assert_eq!(adm.in_flight(), held.len());
        }
        drop(held);
        prop_assert_eq!(adm.in_flight(), 0);
        let s = adm.stats();
        prop_assert_eq!((s.admitted, s.rejected_for(Reason::ConcurrencyLimit)), (admitted, rejected));
        prop_assert!(s.max_in_flight <= max);
    }

    /// A single-server FIFO queue with random arrival and service times: the admission
    /// decisions equal those of a reference that keeps every instant the queue was seen
    /// empty and applies the "Fail at Scale" rule literally.
    #[test]
    fn codel_matches_the_reference_model(
        jobs in prop::collection::vec((0u64..20_000, 0u64..30_000), 1..120),
    ) {
        let us = Duration::from_micros;
        let t0 = Instant::now();
        let cfg = AdmissionConfig {
            max_in_flight: 1,
            codel: Some(CodelConfig { adaptive_lifo: true, ..CodelConfig::default() }),
            ..AdmissionConfig::default()
        };
        let adm = Admission::new_at(cfg, t0);
        // Arrival times (µs since t0) and service times.
        let mut arrivals = Vec::with_capacity(jobs.len());
        let mut at = 0u64;
        for &(gap, _) in &jobs {
            at += gap;
            arrivals.push(at);
        }
        let mut empties = vec![0u64]; // the reference's record: the queue is empty at t0
        let mut queue: VecDeque<usize> = VecDeque::new();
        let mut next = 0;
        let mut now = 0u64;
        let mut decisions = Vec::new();
        let mut reference = Vec::new();
        while decisions.len() < jobs.len() {
            if queue.is_empty() && now < arrivals[next] {
                now = arrivals[next]; // idle until the next arrival
            }
            while next < jobs.len() && arrivals[next] <= now {
                if queue.is_empty() {
                    // Empty right up to this arrival.
                    adm.note_empty(t0 + us(arrivals[next]));
                    empties.push(arrivals[next]);
                }
                queue.push_back(next);
                next += 1;
            }
            let Some(job) = queue.pop_front() else { continue };
            if queue.is_empty() {
                adm.note_empty(t0 + us(now));
                empties.push(now);
            }
            // Reference: shed if waited > 100 ms, or > 5 ms when the queue was not seen
            // empty at any instant within the last 100 ms.
            let waited = now - arrivals[job];
            let recently_empty = empties.iter().any(|&e| e <= now && now - e <= 100_000);
            let shed = waited > 100_000 || (waited > 5_000 && !recently_empty);
            reference.push(!shed);
            prop_assert_eq!(adm.lifo(t0 + us(now)), !recently_empty);
            match adm.admit(t0 + us(arrivals[job]), t0 + us(now)) {
                Ok(permit) => {
                    decisions.push(true);
                    now += jobs[job].1;
                    permit.finish(t0 + us(now));
                }
                Err(r) => {
                    prop_assert_eq!(r.reason, Reason::QueueDelay);
                    decisions.push(false);
                }
            }
        }
        prop_assert_eq!(decisions, reference);
    }
}
