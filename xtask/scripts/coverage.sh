#!/usr/bin/env bash
# Which engine lines does the harness never execute? Builds exsim with LLVM source-based
# coverage (its own target directory), runs a sweep of every scenario and `explore` at its
# defaults, and prints the engine's per-file coverage and its unexecuted lines. A line no
# simulation executes is a line where any bug is invisible to the harness.
#
# Needs the llvm-tools component (`rustup component add llvm-tools-preview`).
# Usage: xtask/scripts/coverage.sh [SEEDS_PER_SCENARIO]   (default 20; ~5 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${1:-20}
tools="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
[ -x "$tools/llvm-profdata" ] || { echo "error: no llvm-profdata: rustup component add llvm-tools-preview" >&2; exit 1; }
target=${COVERAGE_TARGET:-target/coverage}
out="$target/profiles"
rm -rf "$out" && mkdir -p "$out"
RUSTFLAGS="--cfg madsim -C instrument-coverage" CARGO_TARGET_DIR="$target" \
  cargo build --release --locked -p exsim-scenarios
bin="$target/release/exsim"
LLVM_PROFILE_FILE="$out/sweep-%p-%m.profraw" "$bin" sweep --count "$seeds" >/dev/null
LLVM_PROFILE_FILE="$out/explore-%p-%m.profraw" "$bin" explore >/dev/null
"$tools/llvm-profdata" merge -sparse "$out"/*.profraw -o "$out/merged.profdata"
only_engine='(\.cargo|rustc|/sim/|/scenarios/|/xtask/)'
"$tools/llvm-cov" report "$bin" -instr-profile="$out/merged.profdata" --ignore-filename-regex="$only_engine"
"$tools/llvm-cov" show "$bin" -instr-profile="$out/merged.profdata" --ignore-filename-regex="$only_engine" \
  -use-color=false >"$out/lines.txt"
# Unexecuted lines, file by file (a count of 0 in the second column).
awk -F'|' '/^\/.*:$/ { file = $0; next } $2 ~ /^ *0$/ { print file $1 ":" $3 }' "$out/lines.txt" \
  >"$out/unexecuted.txt"
echo "unexecuted engine lines: $(wc -l <"$out/unexecuted.txt") (listed in $out/unexecuted.txt)"
