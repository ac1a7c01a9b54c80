//! Subcommands that live in files of their own: explore, coverage, shrink.

pub mod coverage;
pub mod explore;
pub mod shrink;
