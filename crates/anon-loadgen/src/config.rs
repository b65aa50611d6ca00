//! What a run does: target, arrival schedule, connections, timeouts, and the bounds on each.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Most connections one generator process opens (the fd hard limit here is 20 000).
pub const MAX_CONNECTIONS: usize = 19_950;
/// Longest schedule a run accepts (sum of the phases).
pub const MAX_DURATION: Duration = Duration::from_secs(300);
/// Most requests (attempts, retries included) one run sends.
pub const MAX_REQUESTS: u64 = 20_000_000;
/// Highest arrival rate accepted, requests per second.
pub const MAX_RATE: f64 = 2_000_000.0;
/// Largest response (head + body) the reader accepts.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Longest request timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Most request targets in a weighted mix ([`Config::mix`]).
pub const MAX_PATHS: usize = 16;

/// How request arrival times are drawn within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced: the k-th request of a phase is due at `start + k / rate`.
    Constant,
    /// A Poisson process: exponentially distributed gaps with mean `1 / rate`.
    Poisson,
}

/// How requests use connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnMode {
    /// A pool of keep-alive connections, opened before the schedule starts; a due request
    /// whose connections are all busy waits in the generator's queue (and that wait is
    /// part of its latency). A connection closed by the server is reopened on demand.
    KeepAlive,
    /// One request per connection: connect, send with `Connection: close`, read, close.
    /// At most `connections` are open at once.
    PerRequest,
}

/// One stretch of the schedule at a fixed rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Offered load, requests per second (0 = no request during the phase).
    pub rate: f64,
    /// Length of the phase.
    pub duration: Duration,
}

/// One request target of a weighted mix ([`Config::mix`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedPath {
    /// Request target, e.g. `/plaintext` or `/work?us=5000` (`GET`); same rules as
    /// [`Config::path`].
    pub path: String,
    /// Relative weight, at least 1: a path of weight 9 beside one of weight 1 gets 9 of
    /// every 10 requests.
    pub weight: u32,
}

impl WeightedPath {
    /// `path` with `weight`.
    pub fn new(path: &str, weight: u32) -> WeightedPath {
        WeightedPath {
            path: path.to_string(),
            weight,
        }
    }
}

/// A load generator run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Server address.
    pub addr: SocketAddr,
    /// Request target, e.g. `/plaintext` or `/work?us=1000` (`GET`); used when
    /// [`Config::mix`] is empty.
    pub path: String,
    /// Weighted request targets (at most [`MAX_PATHS`]); empty = every request is
    /// `GET path`. When set it replaces `path`, and each request's target is picked by
    /// smooth weighted round robin (nginx's upstream algorithm) in the order requests are
    /// scheduled: deterministic (independent of the seed and of timing), and exact: among
    /// every `W` consecutive scheduled requests (`W` = the sum of the weights, counted
    /// from the first) path `i` gets exactly `weight_i`, spread as evenly as possible
    /// (`9:1` sends the second path once in every 10). A retry keeps its request's path.
    /// The report breaks the outcomes down per path ([`crate::Report::paths`]).
    #[serde(default)]
    pub mix: Vec<WeightedPath>,
    /// The schedule: phases run back to back.
    pub phases: Vec<Phase>,
    /// How arrival times are drawn.
    pub arrival: Arrival,
    /// Keep-alive pool or one request per connection.
    pub mode: ConnMode,
    /// Pool size (keep-alive) or most concurrent connections (per request).
    pub connections: usize,
    /// A request with no complete answer this long after its intended send time counts
    /// as a timeout (its connection is closed).
    pub timeout: Duration,
    /// Latency objective: successes answered within it are counted as goodput.
    pub slo: Option<Duration>,
    /// Naive client retries: a request answered 503, timed out or failed is sent again at
    /// once, up to this many times (0 = never). Latency stays measured from the original
    /// intended send time.
    pub retries: u32,
    /// Stop scheduling after this many requests (attempts, retries included).
    pub max_requests: u64,
    /// Seed of the Poisson arrivals.
    pub seed: u64,
    /// A request is "sent late" when it leaves more than this after its intended time.
    pub lag_threshold: Duration,
    /// The schedule counts as not kept when more than this fraction of requests left late.
    pub lag_fraction: f64,
}

/// A configuration outside the generator's bounds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// No phase, or a phase with a negative / non-finite / too high rate.
    #[error("bad schedule: {0}")]
    Schedule(String),
    /// Zero connections or more than [`MAX_CONNECTIONS`].
    #[error("connections must be 1..={MAX_CONNECTIONS}, got {0}")]
    Connections(usize),
    /// Timeout zero or above [`MAX_TIMEOUT`].
    #[error("timeout must be in (0, {MAX_TIMEOUT:?}], got {0:?}")]
    Timeout(Duration),
    /// `max_requests` zero or above [`MAX_REQUESTS`].
    #[error("max_requests must be 1..={MAX_REQUESTS}, got {0}")]
    MaxRequests(u64),
    /// The request target is empty, does not start with `/`, or contains whitespace.
    #[error("bad request path {0:?}")]
    Path(String),
    /// A weighted mix with more than [`MAX_PATHS`] paths, or a weight of 0.
    #[error("bad mix: {0}")]
    Mix(String),
    /// `lag_fraction` outside [0, 1].
    #[error("lag_fraction must be within [0, 1], got {0}")]
    LagFraction(f64),
}

impl Config {
    /// A run of `GET path` against `addr` at 1000 requests per second for 10 s (constant
    /// arrivals), 64 keep-alive connections, 2 s timeout, no retries.
    pub fn new(addr: SocketAddr, path: &str) -> Config {
        Config {
            addr,
            path: path.to_string(),
            mix: Vec::new(),
            phases: vec![Phase {
                rate: 1000.0,
                duration: Duration::from_secs(10),
            }],
            arrival: Arrival::Constant,
            mode: ConnMode::KeepAlive,
            connections: 64,
            timeout: Duration::from_secs(2),
            slo: None,
            retries: 0,
            max_requests: 10_000_000,
            seed: 0x5eed,
            lag_threshold: Duration::from_millis(1),
            lag_fraction: 0.01,
        }
    }

    /// Replaces the schedule by one phase of `rate` requests per second for `duration`.
    pub fn rate(mut self, rate: f64, duration: Duration) -> Config {
        self.phases = vec![Phase { rate, duration }];
        self
    }

    /// Replaces the target by a weighted mix of `(path, weight)` ([`Config::mix`]).
    pub fn with_mix(mut self, mix: &[(&str, u32)]) -> Config {
        self.mix = mix.iter().map(|(p, w)| WeightedPath::new(p, *w)).collect();
        self
    }

    /// The targets requests go to: the mix, or `path` with weight 1 when it is empty.
    pub fn paths(&self) -> Vec<WeightedPath> {
        if self.mix.is_empty() {
            vec![WeightedPath::new(&self.path, 1)]
        } else {
            self.mix.clone()
        }
    }

    /// Total length of the schedule.
    pub fn schedule_len(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.phases.is_empty() {
            return Err(ConfigError::Schedule("no phase".into()));
        }
        for p in &self.phases {
            if !p.rate.is_finite() || p.rate < 0.0 || p.rate > MAX_RATE {
                return Err(ConfigError::Schedule(format!(
                    "rate {} outside 0..={MAX_RATE}",
                    p.rate
                )));
            }
        }
        if self.schedule_len() > MAX_DURATION {
            return Err(ConfigError::Schedule(format!(
                "schedule of {:?} is longer than {MAX_DURATION:?}",
                self.schedule_len()
            )));
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(ConfigError::Connections(self.connections));
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(ConfigError::Timeout(self.timeout));
        }
        if self.max_requests == 0 || self.max_requests > MAX_REQUESTS {
            return Err(ConfigError::MaxRequests(self.max_requests));
        }
        if !valid_path(&self.path) {
            return Err(ConfigError::Path(self.path.clone()));
        }
        if self.mix.len() > MAX_PATHS {
            return Err(ConfigError::Mix(format!(
                "{} paths, at most {MAX_PATHS}",
                self.mix.len()
            )));
        }
        for w in &self.mix {
            if !valid_path(&w.path) {
                return Err(ConfigError::Path(w.path.clone()));
            }
            if w.weight == 0 {
                return Err(ConfigError::Mix(format!("weight 0 for {}", w.path)));
            }
        }
        if !(0.0..=1.0).contains(&self.lag_fraction) {
            return Err(ConfigError::LagFraction(self.lag_fraction));
        }
        Ok(())
    }
}

/// A request target: starts with `/`, no whitespace nor control bytes.
fn valid_path(p: &str) -> bool {
    p.starts_with('/') && !p.bytes().any(|b| b.is_ascii_whitespace() || b < 0x21)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_checked() {
        let c = Config::new("127.0.0.1:1".parse().unwrap(), "/x");
        assert_eq!(c.validate(), Ok(()));
        let mut bad = c.clone();
        bad.connections = MAX_CONNECTIONS + 1;
        assert!(matches!(bad.validate(), Err(ConfigError::Connections(_))));
        let bad = c.clone().rate(-1.0, Duration::from_secs(1));
        assert!(matches!(bad.validate(), Err(ConfigError::Schedule(_))));
        let bad = c.clone().rate(10.0, MAX_DURATION + Duration::from_secs(1));
        assert!(matches!(bad.validate(), Err(ConfigError::Schedule(_))));
        let mut bad = c.clone();
        bad.path = "/a b".into();
        assert!(matches!(bad.validate(), Err(ConfigError::Path(_))));
        let mut bad = c;
        bad.timeout = Duration::ZERO;
        assert!(matches!(bad.validate(), Err(ConfigError::Timeout(_))));
    }

    #[test]
    fn mix_bounds_are_checked() {
        let c = Config::new("127.0.0.1:1".parse().unwrap(), "/x");
        assert_eq!(c.paths(), vec![WeightedPath::new("/x", 1)]);
        let ok = c
            .clone()
            .with_mix(&[("/plaintext", 9), ("/work?us=5000", 1)]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.paths().len(), 2);
        let zero = c.clone().with_mix(&[("/a", 1), ("/b", 0)]);
        assert!(matches!(zero.validate(), Err(ConfigError::Mix(_))));
        let path = c.clone().with_mix(&[("/a", 1), ("b", 1)]);
        assert!(matches!(path.validate(), Err(ConfigError::Path(_))));
        let space = c.clone().with_mix(&[("/a b", 1)]);
        assert!(matches!(space.validate(), Err(ConfigError::Path(_))));
        let many: Vec<(&str, u32)> = vec![("/a", 1); MAX_PATHS];
        assert_eq!(c.clone().with_mix(&many).validate(), Ok(()));
        let too_many: Vec<(&str, u32)> = vec![("/a", 1); MAX_PATHS + 1];
        assert!(matches!(
            c.clone().with_mix(&too_many).validate(),
            Err(ConfigError::Mix(_))
        ));
        let huge = c.with_mix(&[("/a", u32::MAX); MAX_PATHS]);
        assert_eq!(huge.validate(), Ok(()));
    }

    #[test]
    fn a_config_without_mix_still_parses() {
        let c = Config::new("127.0.0.1:1".parse().unwrap(), "/x");
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove("mix");
        let back: Config = serde_json::from_value(v).unwrap();
        assert!(back.mix.is_empty());
        assert_eq!(back.path, "/x");
    }
}
