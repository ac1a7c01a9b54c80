//! Subcommands that live in files of their own: explore, coverage, shrink, and the real-mode
//! ones (node, cluster, load, crashtest).

pub mod coverage;
pub mod explore;
pub mod real;
pub mod shrink;
