//! Arrival times: constant or Poisson, phase after phase.

use crate::config::{Arrival, Phase};

/// Yields intended send offsets (seconds from the run's start), in increasing order.
#[derive(Debug)]
pub(crate) struct Schedule {
    phases: Vec<Phase>,
    arrival: Arrival,
    rng: fastrand::Rng,
    /// Index of the current phase.
    phase: usize,
    /// Offset where the current phase starts, seconds.
    phase_start: f64,
    /// Constant arrivals: index of the next request within the phase.
    k: u64,
    /// Poisson arrivals: offset of the previous arrival, seconds.
    last: f64,
}

impl Schedule {
    pub(crate) fn new(phases: &[Phase], arrival: Arrival, seed: u64) -> Schedule {
        Schedule {
            phases: phases.to_vec(),
            arrival,
            rng: fastrand::Rng::with_seed(seed),
            phase: 0,
            phase_start: 0.0,
            k: 0,
            last: 0.0,
        }
    }

    /// The next intended send offset in seconds, or `None` once every phase is over.
    pub(crate) fn next_offset(&mut self) -> Option<f64> {
        while let Some(p) = self.phases.get(self.phase) {
            let end = self.phase_start + p.duration.as_secs_f64();
            if p.rate > 0.0 {
                let t = match self.arrival {
                    Arrival::Constant => self.phase_start + self.k as f64 / p.rate,
                    Arrival::Poisson => {
                        // 1 - U lies in (0, 1], so the logarithm is finite.
                        let u = 1.0 - self.rng.f64();
                        self.last - u.ln() / p.rate
                    }
                };
                if t < end {
                    self.k += 1;
                    self.last = t;
                    return Some(t);
                }
            }
            self.phase += 1;
            self.phase_start = end;
            self.k = 0;
            self.last = end;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn phase(rate: f64, ms: u64) -> Phase {
        Phase {
            rate,
            duration: Duration::from_millis(ms),
        }
    }

    #[test]
    fn constant_is_evenly_spaced_across_phases() {
        let mut s = Schedule::new(
            &[phase(10.0, 300), phase(0.0, 100), phase(20.0, 100)],
            Arrival::Constant,
            1,
        );
        let v: Vec<f64> = std::iter::from_fn(|| s.next_offset()).collect();
        let want = [0.0, 0.1, 0.2, 0.4, 0.45];
        assert_eq!(v.len(), want.len(), "{v:?}");
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{v:?}");
        }
    }

    #[test]
    fn poisson_has_the_right_mean_rate_and_is_ordered() {
        let mut s = Schedule::new(&[phase(1000.0, 10_000)], Arrival::Poisson, 7);
        let v: Vec<f64> = std::iter::from_fn(|| s.next_offset()).collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert!((9_500..=10_500).contains(&v.len()), "{}", v.len());
        assert!(v.iter().all(|t| *t < 10.0));
    }
}
