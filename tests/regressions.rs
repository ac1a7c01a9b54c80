//! Runs every (scenario, seed, commands) in `regression_seeds.txt`: seeds that once found
//! a bug must keep passing.

#![cfg(madsim)]

use scenarios::scenario::{self, Params, Scenario};

#[test]
fn every_regression_seed_passes() {
    let text = include_str!("regression_seeds.txt");
    let mut ran = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, seed, commands] = fields[..] else {
            panic!("regression_seeds.txt:{}: malformed `{line}`", n + 1)
        };
        let s = Scenario::parse(name).unwrap_or_else(|e| panic!("regression_seeds.txt:{}: {e}", n + 1));
        let params = Params { commands: Some(commands.parse().expect("commands")), ..Params::default() };
        let report = scenario::run(s, seed.parse().expect("seed"), &params);
        assert!(report.failure.is_none(), "{name} seed {seed}: {:?}", report.failure);
        ran += 1;
    }
    assert!(ran >= 3);
}
