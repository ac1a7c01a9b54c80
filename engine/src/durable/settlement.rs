//! Settlement with its ledger: the WAL *is* the append-only ledger of trades (WAL seq =
//! `trade_id`), and checkpoints (small snapshots with `last_trade_id`) are taken every
//! 1,000 trades. The watermark is what is durable in the ledger, never more.

use super::{DurableConfig, DurableError, RecoveryInfo, kind};
use crate::codec;
use crate::settlement::Settlement;
use crate::snapshot;
use crate::storage::FileSystem;
use crate::wal::{Wal, WalError};
use crate::{Applied, Trade, TradeId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SERVICE: &str = "settlement";

/// Settlement with its durable ledger.
pub struct DurableSettlement {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: DurableConfig,
    settlement: Settlement,
    wal: Wal,
    since_checkpoint: u64,
    last_checkpoint_ms: u64,
}

impl DurableSettlement {
    /// Recovers the ledger: the newest checkpoint, then the ledger's true tail (which may
    /// be ahead of the checkpoint, never behind it).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: DurableConfig,
        now_ms: u64,
    ) -> Result<(DurableSettlement, RecoveryInfo), DurableError> {
        let mut info = RecoveryInfo::default();
        let checkpoint = match snapshot::load(fs.as_ref(), &dir.join("snapshots"), SERVICE)? {
            Some(l) => {
                info.snapshot_seq = Some(l.meta.seq);
                info.skipped_snapshots = l.skipped;
                l.meta.seq
            }
            None => 0,
        };
        let mut settlement = Settlement::new();
        let (wal, wal_info) = Wal::open(fs.clone(), &dir.join("wal"), config.wal, |e| {
            let refuse = |reason: String| WalError::Replay { seq: e.seq, reason };
            if e.kind != kind::TRADE {
                return Err(refuse(format!("unknown entry type {}", e.kind)));
            }
            let trade: Trade = codec::decode(e.payload).map_err(|c| refuse(c.to_string()))?;
            if trade.trade_id != e.seq {
                return Err(refuse(format!("trade {} stored at WAL seq {}", trade.trade_id, e.seq)));
            }
            match settlement.apply(&trade) {
                Ok(Applied::Applied) => Ok(()),
                other => Err(refuse(format!("ledger replay of trade {}: {other:?}", trade.trade_id))),
            }
        })?;
        // The ledger is its whole WAL, replayed from trade 1: it must end where the WAL does
        // (a WAL numbered beyond an empty ledger lost every segment that held trades).
        if wal.next_seq() - 1 != settlement.last_trade_id() {
            return Err(DurableError::Divergence(format!(
                "the ledger replayed ends at trade {}, but its WAL is numbered to {}",
                settlement.last_trade_id(),
                wal.next_seq() - 1
            )));
        }
        if settlement.last_trade_id() < checkpoint {
            return Err(DurableError::Divergence(format!(
                "checkpoint says trade {checkpoint} was settled, the ledger ends at {}",
                settlement.last_trade_id()
            )));
        }
        if crate::bugs::planted(crate::bugs::Bug::SettlementNotIdempotent) {
            // Resume from the checkpoint rather than the ledger's true tail.
            settlement.forget_after(checkpoint);
        }
        info.replayed = settlement.last_trade_id().saturating_sub(checkpoint);
        info.wal = wal_info;
        let s = DurableSettlement {
            fs,
            dir: dir.to_path_buf(),
            config,
            settlement,
            wal,
            since_checkpoint: info.replayed,
            last_checkpoint_ms: now_ms,
        };
        Ok((s, info))
    }

    /// Appends a trade to the ledger (durable after [`DurableSettlement::commit`]). A
    /// trade at or below the watermark is skipped; a gap is refused (re-request it).
    pub fn apply(&mut self, trade: &Trade) -> Result<Applied, DurableError> {
        let applied = self.settlement.apply(trade).map_err(|e| DurableError::Engine(e.to_string()))?;
        if applied == Applied::Applied {
            let seq = self.wal.append(kind::TRADE, &codec::encode(trade));
            if !crate::bugs::planted(crate::bugs::Bug::SettlementNotIdempotent) {
                assert_eq!(seq, trade.trade_id, "ledger WAL seq is the trade id");
            }
            self.since_checkpoint += 1;
        }
        Ok(applied)
    }

    /// Group commit. Returns the durable watermark (last settled trade id).
    pub fn commit(&mut self) -> Result<TradeId, DurableError> {
        Ok(self.wal.commit()?)
    }

    /// Writes a checkpoint if due.
    pub fn maybe_checkpoint(&mut self, now_ms: u64) -> Result<bool, DurableError> {
        if !self.config.snapshots.due(self.since_checkpoint, now_ms.saturating_sub(self.last_checkpoint_ms)) {
            return Ok(false);
        }
        self.checkpoint(now_ms)?;
        Ok(true)
    }

    /// Commits and writes a checkpoint now. Returns the last settled trade id it holds.
    pub fn checkpoint(&mut self, now_ms: u64) -> Result<TradeId, DurableError> {
        let last = self.commit()?;
        let json = format!("{{\"last_trade_id\":{last}}}\n").into_bytes();
        let fields = BTreeMap::from([("last_trade_id".to_string(), last)]);
        let snapshots = self.dir.join("snapshots");
        snapshot::write(
            self.fs.as_ref(),
            &snapshots,
            SERVICE,
            last,
            fields,
            &[("checkpoint.json".to_string(), json)],
            self.config.keep_snapshots,
        )?;
        self.since_checkpoint = 0;
        self.last_checkpoint_ms = now_ms;
        Ok(last)
    }

    /// The watermark: every trade up to it is durable in the ledger.
    pub fn durable_trade_id(&self) -> TradeId {
        self.wal.durable_seq()
    }

    /// The in-memory ledger.
    pub fn settlement(&self) -> &Settlement {
        &self.settlement
    }

    /// The WAL (the ledger on disk).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
}
