//! `exsim coverage`: the crash-window coverage map merged from sweep and explore reports,
//! and the cells nothing hit.

use crate::Failure;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Reads the coverage maps of JSON reports (`sweep --json`: the `coverage` object;
/// `explore --json`: its `coverage` object) and merges them.
fn merged(reports: &[PathBuf]) -> Result<BTreeMap<String, u64>, Failure> {
    let mut hits = BTreeMap::new();
    for path in reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("{}: cannot read report: {e}", path.display())))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Failure::Usage(format!("{}: not a JSON report: {e}", path.display())))?;
        let Some(map) = json["coverage"].as_object() else {
            return Err(Failure::Usage(format!(
                "{}: no `coverage` map (a sweep or explore report?)",
                path.display()
            )));
        };
        for (cell, n) in map {
            *hits.entry(cell.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    Ok(hits)
}

/// Prints the merged map and every cell never hit; fails if any is.
pub fn run(reports: &[PathBuf]) -> Result<(), Failure> {
    if reports.is_empty() {
        return Err(Failure::Usage(
            "give the JSON reports to merge, e.g. `exsim sweep --json sweep.json`, \
             `exsim explore --json explore.json`, then `exsim coverage sweep.json explore.json`"
                .into(),
        ));
    }
    let hits = merged(reports)?;
    crate::put(&sim::coverage::table(&hits));
    let unhit = sim::coverage::unhit(&hits);
    if unhit.is_empty() {
        say!("every cell was hit");
        return Ok(());
    }
    say!("cells never hit:");
    for cell in &unhit {
        say!("  {cell}");
    }
    Err(Failure::Check(format!("{} of {} cells never hit", unhit.len(), sim::coverage::universe().len())))
}
