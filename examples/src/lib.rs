//! Helpers shared by the example programs: command-line flags and logging.
//!
//! ```
//! use anon_examples::{FlagSpec, Flags};
//!
//! const SPEC: &[FlagSpec] = &[
//!     ("--port", Some("PORT"), "port to listen on"),
//!     ("--pin", None, "pin workers to cores"),
//! ];
//! let args = ["--port", "9000", "--pin"].map(String::from);
//! let flags = Flags::parse("demo", "a demo", SPEC, args)?.expect("no --help given");
//! assert_eq!(flags.get("--port", 8080u16)?, 9000);
//! assert!(flags.has("--pin"));
//! assert!(Flags::parse("demo", "a demo", SPEC, ["--bogus".to_string()]).is_err());
//! # Ok::<(), String>(())
//! ```

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::str::FromStr;

/// One flag an example accepts: its name (`--port`), a value placeholder (`None` for a
/// switch) and its help line.
pub type FlagSpec = (&'static str, Option<&'static str>, &'static str);

/// Parsed flags: values by name, switches present.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<&'static str, String>,
}

impl Flags {
    /// Parses `args` against `spec`. `Ok(None)` when `--help` was given (the usage is
    /// printed); `Err` names the bad flag or value.
    pub fn parse(
        program: &str,
        about: &str,
        spec: &[FlagSpec],
        args: impl IntoIterator<Item = String>,
    ) -> Result<Option<Flags>, String> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                print!("{}", usage(program, about, spec));
                return Ok(None);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let Some((key, value, _)) = spec.iter().find(|(n, _, _)| *n == name) else {
                return Err(format!("unknown flag `{arg}` (see --help)"));
            };
            let v = match (value, inline) {
                (None, None) => String::new(),
                (None, Some(_)) => return Err(format!("{key} takes no value")),
                (Some(_), Some(v)) => v,
                (Some(p), None) => args
                    .next()
                    .ok_or_else(|| format!("{key} needs a value ({p})"))?,
            };
            flags.values.insert(key, v);
        }
        Ok(Some(flags))
    }

    /// Whether a flag (or switch) was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value of `name` parsed as `T`, `default` when absent; the error names the flag.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("{name} {v:?}: {e}")),
        }
    }

    /// Like [`get`](Flags::get) for an optional value.
    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e| format!("{name} {v:?}: {e}")),
        }
    }
}

/// The `--help` text.
pub fn usage(program: &str, about: &str, spec: &[FlagSpec]) -> String {
    let mut s = format!("{about}\n\nUsage: {program} [FLAGS]\n\nFlags:\n");
    for (name, value, help) in spec {
        let left = match value {
            Some(v) => format!("{name} {v}"),
            None => (*name).to_string(),
        };
        s.push_str(&format!("  {left:<24} {help}\n"));
    }
    s.push_str(&format!("  {:<24} print this help\n", "--help"));
    s
}

/// Logs to stderr through `env_logger` (level from `RUST_LOG`, default `info`).
pub fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[FlagSpec] = &[
        ("--port", Some("N"), "port"),
        ("--pin", None, "pin workers"),
    ];

    fn parse(args: &[&str]) -> Result<Option<Flags>, String> {
        Flags::parse("t", "test", SPEC, args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn values_switches_and_errors() {
        let f = parse(&["--port", "9000", "--pin"]).unwrap().unwrap();
        assert_eq!(f.get("--port", 1u16), Ok(9000));
        assert!(f.has("--pin"));
        let f = parse(&["--port=7"]).unwrap().unwrap();
        assert_eq!(f.get("--port", 1u16), Ok(7));
        assert_eq!(f.opt::<u16>("--nope"), Ok(None));
        assert!(parse(&["--bogus"])
            .unwrap_err()
            .contains("unknown flag `--bogus`"));
        assert!(parse(&["--port"]).unwrap_err().contains("needs a value"));
        let f = parse(&["--port", "x"]).unwrap().unwrap();
        assert!(f
            .get("--port", 1u16)
            .unwrap_err()
            .starts_with("--port \"x\""));
        assert!(parse(&["--pin=1"]).unwrap_err().contains("takes no value"));
    }
}
