use anon_queue::{
    kind_key, AdaptiveConfig, Admission, AdmissionConfig, BusyChange, CodelConfig, Hysteresis,
    Reason, Usage,
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
        adaptive: None,
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
    b.finish(t + ms(1), Usage::default());
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
        adaptive: None,
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
fn adaptive_limit_is_on_by_default_and_follows_the_queueing_delay() {
    let t0 = Instant::now();
    let fixed = Admission::new(limiter_only(64));
    assert_eq!((fixed.limit(), fixed.target()), (64, None));
    let adm = Admission::new(AdmissionConfig {
        max_in_flight: 64,
        codel: None,
        ..AdmissionConfig::default()
    });
    assert_eq!(adm.limit(), AdaptiveConfig::default().initial_limit);
    // I/O-bound: 50 ms per request, 100 µs of CPU, no queueing, the limit fully used.
    let mut t = t0;
    for _ in 0..40 {
        let permits: Vec<_> = (0..adm.limit())
            .map_while(|_| adm.admit(t, t).ok())
            .collect();
        t += ms(50);
        for p in permits {
            let usage = Usage {
                service: Duration::from_micros(100),
                ..Usage::default()
            };
            p.finish(t, usage);
        }
    }
    let grown = adm.limit();
    assert_eq!(
        grown, 64,
        "the limit grows up to the ceiling for I/O-bound work"
    );
    // CPU-bound: 1 ms each, served one after another: the k-th queues k ms.
    for _ in 0..300 {
        let permits: Vec<_> = (0..adm.limit())
            .map_while(|_| adm.admit(t, t).ok())
            .collect();
        for (k, p) in permits.into_iter().enumerate() {
            t += ms(1);
            p.finish(
                t,
                Usage {
                    service: ms(1),
                    queued: ms(k as u64),
                },
            );
        }
    }
    // Batches of L queue a mean of (L-1)/2 ms against a 2 ms target: about 5.
    assert!(
        adm.limit() <= 6,
        "limit {} for 1 ms CPU-bound requests",
        adm.limit()
    );
    // Twice the unloaded latency: the I/O-bound requests are (nearly) forgotten.
    let target = adm.target().unwrap();
    assert!(
        target > Duration::from_micros(1800) && target <= ms(2),
        "{target:?}"
    );
    assert_eq!(adm.in_flight(), 0);
    // Refusals by the adaptive limit are told apart from the ceiling's.
    let held: Vec<_> = (0..adm.limit()).map(|_| adm.admit(t, t).unwrap()).collect();
    assert_eq!(adm.admit(t, t).unwrap_err().reason, Reason::AdaptiveLimit);
    drop(held);
    assert!(adm.stats().rejected_for(Reason::AdaptiveLimit) >= 1);
}

#[test]
fn over_the_limit_a_request_is_admitted_when_nothing_waits_for_the_cpu() {
    let t = Instant::now();
    let adm = Admission::new(AdmissionConfig {
        max_in_flight: 12,
        codel: None,
        adaptive: Some(AdaptiveConfig {
            initial_limit: 2,
            ..AdaptiveConfig::default()
        }),
        ..AdmissionConfig::default()
    });
    let mut held: Vec<_> = (0..2)
        .map(|_| adm.admit_kind(0, t, t, 0).unwrap())
        .collect();
    // Two in flight, one of them waiting for the CPU: the limit holds.
    assert_eq!(
        adm.admit_kind(0, t, t, 1).unwrap_err().reason,
        Reason::AdaptiveLimit
    );
    // Both parked on I/O: admitting costs no queueing, and the limit follows.
    for n in 3..=12 {
        held.push(adm.admit_kind(0, t, t, 0).unwrap());
        assert_eq!(adm.limit(), n);
    }
    // Never past the ceiling.
    assert_eq!(
        adm.admit_kind(0, t, t, 0).unwrap_err().reason,
        Reason::ConcurrencyLimit
    );
    drop(held);
}

#[test]
fn check_kind_decides_like_admit_kind_but_holds_nothing() {
    let t = Instant::now();
    let adm = Admission::new(AdmissionConfig {
        max_in_flight: 4,
        codel: None,
        adaptive: Some(AdaptiveConfig {
            initial_limit: 2,
            ..AdaptiveConfig::default()
        }),
        ..AdmissionConfig::default()
    });
    // Room: Ok, and nothing is taken or recorded.
    assert!(adm.check_kind(0, t, t, 1).is_ok());
    assert_eq!((adm.in_flight(), adm.stats().admitted), (0, 0));
    let held: Vec<_> = (0..2)
        .map(|_| adm.admit_kind(0, t, t, 1).unwrap())
        .collect();
    // Full, and someone waits for the CPU: refused, and counted as a refusal.
    let no = adm.check_kind(0, t, t, 1).unwrap_err();
    assert_eq!(no.reason, Reason::AdaptiveLimit);
    assert_eq!(adm.stats().rejected_for(Reason::AdaptiveLimit), 1);
    // Full, but nothing waits: admit_kind would raise the limit; check_kind says yes
    // without raising it.
    assert!(adm.check_kind(0, t, t, 0).is_ok());
    assert_eq!((adm.limit(), adm.in_flight()), (2, 2));
    drop(held);
    assert_eq!(adm.in_flight(), 0);
}

#[test]
fn cheap_kinds_skip_the_adaptive_limit_but_not_the_ceiling() {
    let t = Instant::now();
    let adm = Admission::new(AdmissionConfig {
        max_in_flight: 20,
        codel: None,
        adaptive: Some(AdaptiveConfig {
            initial_limit: 2,
            ..AdaptiveConfig::default()
        }),
        ..AdmissionConfig::default()
    });
    let (cheap, slow) = (kind_key(b"/plaintext"), kind_key(b"/work"));
    // Unknown kinds count against the limit until measured.
    let p = adm.admit_kind(cheap, t, t, 1).unwrap();
    assert!(p.is_limited());
    p.finish(
        t,
        Usage {
            service: Duration::from_micros(3),
            ..Usage::default()
        },
    );
    let s = adm.admit_kind(slow, t, t, 1).unwrap();
    s.finish(
        t,
        Usage {
            service: ms(5),
            ..Usage::default()
        },
    );
    // Two slow requests fill the limit...
    let slow_held: Vec<_> = (0..2)
        .map(|_| adm.admit_kind(slow, t, t, 1).unwrap())
        .collect();
    assert_eq!(
        adm.admit_kind(slow, t, t, 1).unwrap_err().reason,
        Reason::AdaptiveLimit
    );
    // ... yet cheap ones still get in, up to the ceiling.
    let cheap_held: Vec<_> = (0..18)
        .map(|_| adm.admit_kind(cheap, t, t, 1).unwrap())
        .collect();
    assert!(cheap_held.iter().all(|p| !p.is_limited()));
    assert_eq!(
        adm.admit_kind(cheap, t, t, 1).unwrap_err().reason,
        Reason::ConcurrencyLimit
    );
    assert_eq!(adm.in_flight(), 20);
    drop((slow_held, cheap_held));
    assert_eq!(adm.in_flight(), 0);
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
                    permit.finish(t0 + us(now), Usage::default());
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

/// One simulated request of [`simulate`].
struct Sim {
    /// Max in flight seen, rejections per phase, admitted per phase, largest queueing
    /// delay of admitted requests in the second half of the overload phase (µs).
    peak: usize,
    rejected: [u64; 2],
    admitted: [u64; 2],
    late_q_max: u64,
    late_q_sum: u64,
    late_n: u64,
    target: Duration,
}

/// One CPU serving admitted requests oldest first (as anon-fiber's workers do), fed by
/// `overload` × capacity for `n` requests, then by `light` × capacity for `n` more; service
/// times drawn from `services` (µs) in turn.
fn simulate(cfg: AdmissionConfig, services: &[u64], overload: f64, light: f64, n: usize) -> Sim {
    let t0 = Instant::now();
    let adm = Admission::new_at(cfg, t0);
    let us = Duration::from_micros;
    let mean = services.iter().sum::<u64>() as f64 / services.len() as f64;
    let mut sim = Sim {
        peak: 0,
        rejected: [0; 2],
        admitted: [0; 2],
        late_q_max: 0,
        late_q_sum: 0,
        late_n: 0,
        target: Duration::ZERO,
    };
    // (admitted at, service, permit)
    let mut queue: VecDeque<(u64, u64, anon_queue::Permit<'_>)> = VecDeque::new();
    let mut cpu_free = 0u64; // when the CPU finishes the request it runs
    let mut arrival = 0f64;
    for i in 0..2 * n {
        let phase = usize::from(i >= n);
        let factor = if phase == 0 { overload } else { light };
        // Deterministic jitter around the mean gap: 0.5 .. 1.5 × mean / factor.
        let jitter = 0.5 + ((i * 7919) % 1000) as f64 / 1000.0;
        arrival += mean / factor * jitter;
        let now = arrival as u64;
        // Serve everything that completes before this arrival, oldest first.
        while let Some((admitted_at, service, _)) = queue.front() {
            let start = cpu_free.max(*admitted_at);
            let end = start + service;
            if end > now {
                break;
            }
            let (admitted_at, service, permit) = queue.pop_front().unwrap();
            let queued = start - admitted_at;
            if phase == 0 && i > n / 2 {
                sim.late_q_max = sim.late_q_max.max(queued);
                sim.late_q_sum += queued;
                sim.late_n += 1;
            }
            permit.finish(
                t0 + us(end),
                Usage {
                    service: us(service),
                    queued: us(queued),
                },
            );
            cpu_free = end;
        }
        // Every admitted request is ready to run here (no I/O): all of them wait.
        match adm.admit_kind(0, t0 + us(now), t0 + us(now), queue.len()) {
            Ok(p) => {
                sim.admitted[phase] += 1;
                queue.push_back((now, services[i % services.len()], p));
            }
            Err(r) => {
                assert_ne!(r.reason, Reason::QueueDelay);
                sim.rejected[phase] += 1;
            }
        }
        sim.peak = sim.peak.max(adm.in_flight());
    }
    sim.target = adm.target().unwrap();
    sim
}

proptest! {
    /// Under random service times and overload factors the adaptive limit keeps in-flight
    /// within the ceiling, keeps the queueing delay of admitted requests near its target
    /// once settled, and lets (nearly) everything in again after the load drops.
    #[test]
    fn adaptive_limit_bounds_queueing_and_recovers(
        services in prop::collection::vec(50u64..5_000, 1..8),
        overload in 1.5f64..10.0,
        light in 0.1f64..0.5,
        ceiling in 4usize..200,
    ) {
        let cfg = AdmissionConfig { max_in_flight: ceiling, codel: None, ..AdmissionConfig::default() };
        let sim = simulate(cfg, &services, overload, light, 3000);
        prop_assert!(sim.peak <= ceiling);
        // Overload was refused, not queued.
        prop_assert!(sim.rejected[0] > 0);
        let max_service = *services.iter().max().unwrap();
        let target = sim.target.as_micros() as u64;
        let mean = sim.late_q_sum / sim.late_n.max(1);
        prop_assert!(mean <= target * 3 / 2 + max_service, "mean queueing {} µs, target {} µs", mean, target);
        let bound = 4 * target + 4 * max_service;
        prop_assert!(sim.late_q_max <= bound, "queueing {} µs > {} µs", sim.late_q_max, bound);
        // After the load drops, at most a few stragglers are refused.
        let refused = sim.rejected[1] as f64 / (sim.rejected[1] + sim.admitted[1]) as f64;
        prop_assert!(refused < 0.02, "{:.3} refused after the load dropped", refused);
    }
}
