//! The regression file (`tests/regression_seeds.txt`): runs that once failed, each with
//! every parameter it ran with, that must pass from then on. One run a line:
//!
//! ```text
//! crash 17 commands=2000 fault-every-ms=300   # lost-ack: … (added from sweep-3.json)
//! ```
//!
//! The older form `scenario seed commands` is still read.

use crate::scenario::{Params, Scenario};

/// One regression run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// Commands (`None`: the scenario's default).
    pub commands: Option<usize>,
    /// Mean simulated ms between faults (`None`: the scenario's).
    pub fault_every_ms: Option<u64>,
}

impl Entry {
    /// The run's parameters.
    pub fn params(&self) -> Params {
        Params { commands: self.commands, fault_every_ms: self.fault_every_ms, ..Params::default() }
    }

    /// Whether `other` is the same run (a default number of commands written or not).
    pub fn same_run(&self, other: &Entry) -> bool {
        let commands = |e: &Entry| e.commands.unwrap_or(e.scenario.default_commands());
        (self.scenario, self.seed, commands(self), self.fault_every_ms)
            == (other.scenario, other.seed, commands(other), other.fault_every_ms)
    }

    /// The entry as a line of the file (without its comment).
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.scenario, self.seed);
        if let Some(n) = self.commands {
            line += &format!(" commands={n}");
        }
        if let Some(ms) = self.fault_every_ms {
            line += &format!(" fault-every-ms={ms}");
        }
        line
    }
}

/// Parses the file: every entry with its line number, or the first malformed line.
pub fn parse(text: &str) -> Result<Vec<(usize, Entry)>, String> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}: `{line}`", i + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, seed, rest @ ..] = &fields[..] else {
            return Err(at("expected `scenario seed [commands=N] [fault-every-ms=MS]`".into()));
        };
        let scenario = Scenario::parse(name).map_err(at)?;
        let seed = seed.parse().map_err(|_| at(format!("bad seed `{seed}`")))?;
        let mut entry = Entry { scenario, seed, commands: None, fault_every_ms: None };
        for field in rest {
            match field.split_once('=') {
                Some(("commands", n)) => {
                    entry.commands = Some(n.parse().map_err(|_| at(format!("bad `{field}`")))?)
                }
                Some(("fault-every-ms", n)) => {
                    entry.fault_every_ms = Some(n.parse().map_err(|_| at(format!("bad `{field}`")))?)
                }
                // The older form: a bare number of commands.
                None if entry.commands.is_none() && field.parse::<usize>().is_ok() => {
                    entry.commands = field.parse().ok()
                }
                _ => return Err(at(format!("unknown field `{field}`"))),
            }
        }
        entry.params().validate().map_err(at)?;
        entries.push((i + 1, entry));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Entry {
        fn with_commands(mut self, n: usize) -> Entry {
            self.commands = Some(n);
            self
        }
    }

    #[test]
    fn both_forms_parse_and_lines_read_back() {
        let text = "# comment\ncrash 0 10000   # old form\nswarm 9 commands=300 fault-every-ms=50 # new\n\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            (2, Entry { scenario: Scenario::Crash, seed: 0, commands: Some(10_000), fault_every_ms: None })
        );
        let e = &entries[1].1;
        assert_eq!((e.commands, e.fault_every_ms), (Some(300), Some(50)));
        assert_eq!(parse(&e.line()).unwrap()[0].1, *e);
        let default = Entry { scenario: Scenario::Crash, seed: 0, commands: None, fault_every_ms: None };
        assert!(default.same_run(&entries[0].1.clone().with_commands(2_000)));
        assert!(!default.same_run(&entries[0].1));
        for bad in [
            "crash",
            "nope 1",
            "crash x",
            "crash 1 commands=x",
            "crash 1 colour=red",
            "crash 1 5 6",
            "crash 1 commands=0",
            "crash 1 fault-every-ms=18446744073709551615",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
