//! Shared reporting: interleaved rounds, medians, and the JSON + Markdown outputs.

use serde::Serialize;
use std::path::PathBuf;

/// One measured figure of one contender.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured, e.g. `"push+pop, 1 thread"`.
    pub metric: String,
    /// Who was measured, e.g. `"anon-queue"` or `"crossbeam ArrayQueue"`.
    pub contender: String,
    /// Median over the rounds.
    pub median: f64,
    /// Every round's figure, in the order measured.
    pub rounds: Vec<f64>,
    /// Unit of `median` (`"ns"`, `"ops/s"`, `"KiB"`...).
    pub unit: String,
    /// The goal figure from the issue, if any (an aim, not a gate).
    pub goal: Option<String>,
}

/// A whole suite's results, written to `target/bench/<suite>.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Suite name (`reactor`, `queue`, ...).
    pub suite: String,
    /// UTC date and time of the run.
    pub date: String,
    /// The command that produced it.
    pub command: String,
    /// Free-form description of the machine and method.
    pub notes: Vec<String>,
    /// The figures.
    pub rows: Vec<Row>,
}

/// The median of `v` (mean of the middle two for even lengths); NaN for empty input.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A contender in an interleaved comparison: a name and a closure measuring one round.
pub type Contender<'a> = (&'a str, Box<dyn FnMut() -> f64 + 'a>);

/// Runs `rounds` rounds; each round measures every contender once, in turn, so that a
/// noisy stretch of time hurts all contenders alike. Returns one row per contender.
pub fn interleaved(
    metric: &str,
    unit: &str,
    goal: Option<&str>,
    rounds: usize,
    contenders: &mut [Contender<'_>],
) -> Vec<Row> {
    let mut figures: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds {
        // Rotate the starting contender each round so none always runs first.
        let n = contenders.len();
        for i in 0..n {
            let k = (i + round) % n;
            figures[k].push((contenders[k].1)());
        }
    }
    contenders
        .iter()
        .zip(figures)
        .map(|((name, _), rounds)| Row {
            metric: metric.to_string(),
            contender: name.to_string(),
            median: median(&rounds),
            rounds,
            unit: unit.to_string(),
            goal: goal.map(str::to_string),
        })
        .collect()
}

impl Report {
    /// Starts a report for `suite`, stamped with the current UTC time and the command line.
    pub fn new(suite: &str) -> Report {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Report {
            suite: suite.to_string(),
            date: utc_now(),
            command: format!("cargo xtask bench {}", args.join(" ")),
            notes: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Writes `target/bench/<suite>.json` and prints a Markdown table for `BENCHMARKS.md`.
    pub fn finish(&self) -> std::io::Result<PathBuf> {
        let dir = workspace_root().join("target/bench");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.suite));
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, json)?;
        println!("{}", self.markdown());
        println!("wrote {}", path.display());
        Ok(path)
    }

    /// The results as a Markdown section.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### `{}` — {}\n\nCommand: `{}`\n\n",
            self.suite, self.date, self.command
        );
        for n in &self.notes {
            s.push_str(&format!("- {n}\n"));
        }
        s.push_str("\n| metric | contender | median | unit | goal |\n|---|---|---:|---|---|\n");
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.metric,
                r.contender,
                fmt_fig(r.median),
                r.unit,
                r.goal.as_deref().unwrap_or("")
            ));
        }
        s
    }
}

fn fmt_fig(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// Current UTC time as `YYYY-MM-DD HH:MM UTC`, computed from the system clock.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
    }

    #[test]
    fn interleaved_rotates_and_keeps_rounds() {
        let mut order = Vec::new();
        let cell = std::cell::RefCell::new(&mut order);
        let mut cs: Vec<Contender<'_>> = vec![
            (
                "a",
                Box::new(|| {
                    cell.borrow_mut().push('a');
                    1.0
                }),
            ),
            (
                "b",
                Box::new(|| {
                    cell.borrow_mut().push('b');
                    2.0
                }),
            ),
        ];
        let rows = interleaved("m", "ns", None, 3, &mut cs);
        drop(cs);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].rounds, vec![1.0; 3]);
        assert_eq!(rows[1].median, 2.0);
        assert_eq!(order, vec!['a', 'b', 'b', 'a', 'a', 'b']);
    }
}
