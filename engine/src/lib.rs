//! The exsim exchange: domain types; the three services (UBSCore, Matching, Settlement),
//! market data and the hot-standby matching replica as pure, synchronous state machines
//! (inputs in, events out, no I/O); and the storage layer they persist through: the
//! filesystem trait, the codec and the WAL.

pub mod audit;
pub mod bugs;
pub mod codec;
pub mod command;
pub mod durable;
pub mod event;
pub mod market_data;
pub mod matching;
pub mod math;
pub mod pages;
pub mod pipeline;
pub mod replica;
pub mod service;
pub mod settlement;
pub mod snapshot;
pub mod standby;
pub mod storage;
pub mod types;
pub mod ubscore;
pub mod wal;

pub use command::{Ack, Command, CommandKey, MeInput, Order, Outcome, RejectReason, UbsRecord};
pub use event::{CancelRejectReason, CloseReason, MeEvent, MeEventKind, Trade};
pub use matching::MatchingEngine;
pub use pipeline::{Pipeline, PipelineError};
pub use settlement::Settlement;
pub use types::*;
pub use ubscore::UbsCore;

/// Whether an idempotent input changed the state or was a duplicate delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// New: the state changed.
    Applied,
    /// Already seen: nothing changed.
    Duplicate,
}
