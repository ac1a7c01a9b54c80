//! Runs every entry of `regression_seeds.txt` (scenario, seed and every parameter): runs
//! that once found a bug must keep passing. `exsim regress add REPORT.json` appends a
//! sweep's failing runs; `EXSIM_SEED=N` runs only the entries with seed N.

#![cfg(madsim)]

use scenarios::regress;
use scenarios::scenario;

#[test]
fn every_regression_seed_passes() {
    let entries = regress::parse(include_str!("regression_seeds.txt"))
        .unwrap_or_else(|e| panic!("regression_seeds.txt: {e}"));
    assert!(entries.len() >= 3, "the file holds the known regressions");
    let mut failed = Vec::new();
    for (line, e) in entries.iter().filter(|(_, e)| exsim_tests::runs_seed(e.seed)) {
        let report = scenario::run(e.scenario, e.seed, &e.params());
        if let Some(f) = report.failure {
            failed.push(format!("regression_seeds.txt:{line}: {}: {f}", e.line()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
