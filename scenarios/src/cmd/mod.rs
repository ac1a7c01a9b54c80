//! The subcommands, one file each (bench, conform, list and planted stay in `main.rs`),
//! and what they share: output, the sweep's reports, the trace subscriber.

pub mod coverage;
pub mod explore;
pub mod output;
pub mod real;
pub mod regress;
pub mod report;
pub mod repro;
pub mod run;
pub mod shrink;
pub mod sweep;
pub mod trace;
