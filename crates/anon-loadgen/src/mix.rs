//! Picking each request's target from a weighted mix: smooth weighted round robin.

/// Smooth weighted round robin over path indices (the algorithm of nginx's upstream
/// balancing): each pick adds every weight to its path's running credit, takes the path
/// with the most credit (the lowest index on a tie) and takes the total weight from it.
/// Over every `W` consecutive picks from the start (`W` = the sum of the weights) path
/// `i` is picked exactly `weight_i` times, and the picks of a path are spread evenly.
#[derive(Debug, Clone)]
pub(crate) struct Picker {
    weights: Vec<i64>,
    credit: Vec<i64>,
    total: i64,
}

impl Picker {
    /// A picker over `weights` (each at least 1, at most `MAX_PATHS` of them: the sums stay
    /// far within `i64`).
    pub(crate) fn new(weights: &[u32]) -> Picker {
        let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w.max(1))).collect();
        Picker {
            total: weights.iter().sum(),
            credit: vec![0; weights.len()],
            weights,
        }
    }

    /// Index of the next request's path.
    pub(crate) fn next(&mut self) -> usize {
        if self.weights.len() <= 1 {
            return 0;
        }
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.credit[i] += self.weights[i];
            if self.credit[i] > self.credit[best] {
                best = i;
            }
        }
        self.credit[best] -= self.total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<usize> {
        let mut p = Picker::new(weights);
        (0..n).map(|_| p.next()).collect()
    }

    #[test]
    fn ninety_ten_is_exact_over_every_ten() {
        let v = picks(&[9, 1], 1000);
        for w in v.chunks(10) {
            assert_eq!(w.iter().filter(|&&i| i == 1).count(), 1, "{w:?}");
        }
        // Deterministic: the same sequence every time.
        assert_eq!(v, picks(&[9, 1], 1000));
    }

    #[test]
    fn proportions_are_exact_per_cycle_and_spread() {
        for weights in [
            vec![1],
            vec![1, 1],
            vec![3, 2, 1],
            vec![5, 1, 1, 7],
            vec![1; 16],
            vec![100, 1],
        ] {
            let total: usize = weights.iter().map(|&w| w as usize).sum();
            let v = picks(&weights, total * 5);
            for cycle in v.chunks(total) {
                for (i, &w) in weights.iter().enumerate() {
                    let n = cycle.iter().filter(|&&p| p == i).count();
                    assert_eq!(n, w as usize, "weights {weights:?}, path {i}: {cycle:?}");
                }
            }
        }
        // Spread: with 2:1 the heavy path never runs three times in a row.
        let v = picks(&[2, 1], 300);
        assert!(!v.windows(3).any(|w| w == [0, 0, 0]));
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let mut p = Picker::new(&[u32::MAX; 16]);
        let v: Vec<usize> = (0..32).map(|_| p.next()).collect();
        assert_eq!(&v[..16], &(0..16).collect::<Vec<_>>()[..]);
        assert_eq!(&v[16..], &(0..16).collect::<Vec<_>>()[..]);
    }
}
