//! The in-process pipeline: each command runs through UBSCore → Matching → UBSCore
//! settlement → Settlement before the next one starts (the golden single-threaded order).

use crate::command::{Ack, Command, UbsRecord};
use crate::event::{MeEvent, MeEventKind};
use crate::matching::{MatchingEngine, MeError};
use crate::settlement::{Settlement, TradeGap};
use crate::types::Markets;
use crate::ubscore::{UbsCore, UbsError};
use std::fmt;

/// A service refused what another service produced: always a bug, never bad input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineError {
    /// The matching engine refused an input.
    Matching(MeError),
    /// UBSCore refused an ME event.
    UbsCore(UbsError),
    /// Settlement refused a trade.
    Settlement(TradeGap),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Matching(e) => write!(f, "matching: {e}"),
            PipelineError::UbsCore(e) => write!(f, "ubscore: {e}"),
            PipelineError::Settlement(e) => write!(f, "settlement: {e}"),
        }
    }
}

impl std::error::Error for PipelineError {}

/// The three services wired together in one thread.
#[derive(Clone, Debug)]
pub struct Pipeline {
    ubs: UbsCore,
    me: MatchingEngine,
    settlement: Settlement,
    scratch: Vec<MeEvent>,
    history: Option<Vec<UbsRecord>>,
    events: Option<Vec<MeEvent>>,
}

impl Pipeline {
    /// A pipeline that keeps no logs (for benchmarks).
    pub fn new(markets: Markets) -> Pipeline {
        Pipeline {
            ubs: UbsCore::new(markets.clone()),
            me: MatchingEngine::new(markets),
            settlement: Settlement::new(),
            scratch: Vec::new(),
            history: None,
            events: None,
        }
    }

    /// A pipeline that also keeps UBSCore's history and the ME's event log.
    pub fn with_logs(markets: Markets) -> Pipeline {
        Pipeline { history: Some(Vec::new()), events: Some(Vec::new()), ..Pipeline::new(markets) }
    }

    /// Runs one command to completion and returns the client's acknowledgement.
    pub fn submit(&mut self, command: Command) -> Result<Ack, PipelineError> {
        let submission = self.ubs.submit(command);
        if let (Some(history), Some(record)) = (&mut self.history, submission.record) {
            history.push(record);
        }
        if let Some((seq, input)) = submission.forward {
            self.scratch.clear();
            self.me.process(seq, &input, &mut self.scratch).map_err(PipelineError::Matching)?;
            for event in &self.scratch {
                self.ubs.apply_event(event).map_err(PipelineError::UbsCore)?;
                if let MeEventKind::Trade(trade) = &event.kind {
                    self.settlement.apply(trade).map_err(PipelineError::Settlement)?;
                }
            }
            if let Some(events) = &mut self.events {
                events.extend_from_slice(&self.scratch);
            }
        }
        Ok(submission.ack)
    }

    /// UBSCore.
    pub fn ubscore(&self) -> &UbsCore {
        &self.ubs
    }

    /// The matching engine.
    pub fn matching(&self) -> &MatchingEngine {
        &self.me
    }

    /// Settlement.
    pub fn settlement(&self) -> &Settlement {
        &self.settlement
    }

    /// UBSCore's history of fresh commands (empty unless built `with_logs`).
    pub fn history(&self) -> &[UbsRecord] {
        self.history.as_deref().unwrap_or_default()
    }

    /// The ME's event log (empty unless built `with_logs`).
    pub fn events(&self) -> &[MeEvent] {
        self.events.as_deref().unwrap_or_default()
    }
}
