//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The directory of a copied zero_x_infinity fixture set, e.g. `default_100k`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/zxi").join(name)
}

/// A fresh, empty scratch directory under the target directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// Reads a CSV file into its header and rows of fields (plain commas, no quoting).
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let split = |l: &str| l.split(',').map(|f| f.trim().to_string()).collect::<Vec<_>>();
    let header = split(lines.next().expect("a header line"));
    (header, lines.map(split).collect())
}

/// The seeds a pinned-seed test runs: `pinned`, or only `$EXSIM_SEED` when it is set (to
/// debug one seed: `EXSIM_SEED=3 cargo test -p exsim-tests --test world`). A set but
/// malformed `EXSIM_SEED` fails the test rather than silently running the default seeds.
pub fn seeds(pinned: impl IntoIterator<Item = u64>) -> Vec<u64> {
    match std::env::var("EXSIM_SEED") {
        Ok(v) => vec![v.trim().parse().unwrap_or_else(|_| panic!("EXSIM_SEED={v} is not a seed"))],
        Err(_) => pinned.into_iter().collect(),
    }
}

/// Whether a test pinned to `seed` runs (every one unless `$EXSIM_SEED` names another).
pub fn runs_seed(seed: u64) -> bool {
    seeds([seed]) == [seed]
}
