//! `cargo real [--planted] ARGS…` (an alias in `.cargo/config.toml`): builds the normal
//! build of exsim (no `--cfg madsim`: real tokio, TCP, the real disk) in `target/real`, or
//! with the test-only planted bugs in `target/real-planted`, and runs it with ARGS.
//!
//! Why a separate target directory: the simulation build and the normal build differ in
//! their compiler flags, so sharing `target/` would rebuild everything at each switch.
//! Why an xtask rather than a shell script: it runs wherever cargo does, and a cargo alias
//! cannot set RUSTFLAGS itself.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let planted = args.first().is_some_and(|a| a == "--planted");
    if planted {
        args.remove(0);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target").join(if planted { "real-planted" } else { "real" });
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "exsim-scenarios",
            "--bin",
            "exsim",
            "--target-dir",
        ])
        .arg(&target)
        // An empty RUSTFLAGS replaces `.cargo/config.toml`'s `--cfg madsim`: the normal build.
        .env("RUSTFLAGS", "")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if planted {
        build.args(["--features", "planted-bugs"]);
    }
    match build.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("cargo real: the build failed ({s})");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cargo real: cannot run cargo: {e}");
            return ExitCode::from(2);
        }
    }
    let exe = target.join("release").join("exsim");
    match Command::new(&exe).args(&args).status() {
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("cargo real: cannot run {}: {e}", exe.display());
            ExitCode::from(2)
        }
    }
}
