//! Every recovery of every service, judged at the point of history it recovered to: all of
//! its state against the model replayed to that point. A recovery that cannot be placed on
//! the history is a violation of its own.

use super::Violation;
use crate::model::Model;
use engine::service::Recovered;
use engine::{OrderId, SymbolId, Trade};
use sim::world::{RecoveryRecord, TableDigest};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// A matching recovery: (its index, its state, its order index).
type MeRecovery<'r> = (usize, &'r engine::matching::MeState, &'r [(OrderId, SymbolId)]);

/// A UBSCore recovery: (its index, its state, and its de-dup table's digest when the world
/// kept that instead of the rows).
type UbsRecovery<'r> = (usize, &'r engine::ubscore::UbsState, Option<TableDigest>);

/// A Settlement recovery: (its index, its ledger, its watermark, and the ledger's digest when
/// the world kept that instead of the trades).
type SettlementRecovery<'r> = (usize, &'r [Trade], u64, Option<TableDigest>);

/// What the field of a mismatch found by digest ends with: the scenario then runs the seed
/// again with every row kept, to name the first differing row.
pub const BY_DIGEST: &str = " (by digest)";

/// Whether `v` is a recovery mismatch found by comparing digests (see [`BY_DIGEST`]), also
/// when media damage wraps it.
pub fn found_by_digest(v: &Violation) -> bool {
    match v {
        Violation::RecoveryMismatch { field, .. } => field.ends_with(BY_DIGEST),
        Violation::SilentCorruption { found } => found_by_digest(found),
        _ => false,
    }
}

/// A table's digest as a mismatch shows it.
fn digest_text(d: TableDigest) -> String {
    format!("{} rows, digest {:016x}", d.rows, d.digest)
}

/// The recoveries of a run, indexed by the point of history each recovered to.
pub struct RecoveryPoints<'r> {
    /// UBSCore recoveries by the number of WAL entries they hold.
    ubs: BTreeMap<u64, Vec<UbsRecovery<'r>>>,
    /// Matching recoveries by the last `ubs_seq` their state covers, with their index.
    me: BTreeMap<u64, Vec<MeRecovery<'r>>>,
    /// Settlement recoveries.
    settlement: Vec<SettlementRecovery<'r>>,
    /// The recoveries judged so far.
    judged: BTreeSet<usize>,
}

fn mismatch<T: Debug>(service: &str, recovery: usize, at: u64, field: &str, want: T, got: T) -> Violation {
    Violation::RecoveryMismatch {
        service: service.into(),
        recovery,
        at,
        field: field.into(),
        expected: format!("{want:?}"),
        actual: format!("{got:?}"),
    }
}

/// The smallest key at which two key-sorted sequences differ, with each side's value.
/// A merge walk: every recovery is judged on all of its state, so this runs once per
/// recovery over the whole state and must not build maps.
fn first_key_difference<K: Ord + Copy, V: PartialEq>(
    want: impl IntoIterator<Item = (K, V)>,
    got: impl IntoIterator<Item = (K, V)>,
) -> Option<(K, Option<V>, Option<V>)> {
    let (mut want, mut got) = (want.into_iter().peekable(), got.into_iter().peekable());
    loop {
        let order = match (want.peek(), got.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((w, _)), Some((g, _))) => w.cmp(g),
        };
        match order {
            Ordering::Less => return want.next().map(|(k, v)| (k, Some(v), None)),
            Ordering::Greater => return got.next().map(|(k, v)| (k, None, Some(v))),
            Ordering::Equal => {
                let ((k, w), (_, g)) = (want.next()?, got.next()?);
                if w != g {
                    return Some((k, Some(w), Some(g)));
                }
            }
        }
    }
}

/// The first pair of neighbours in `rows` whose keys do not strictly rise. The engine
/// documents its exported rows as sorted by key; the walk above relies on it, so it is
/// checked here rather than taken on the engine's word (a duplicate key is a finding).
fn first_unsorted<K: Ord + Copy, V>(rows: &[(K, V)]) -> Option<(K, K)> {
    rows.windows(2).find(|w| w[0].0 >= w[1].0).map(|w| (w[0].0, w[1].0))
}

impl<'r> RecoveryPoints<'r> {
    /// Indexes `recoveries` (as the world recorded them). Fails first if a recovery did not
    /// load the newest snapshot that verified on its disk: a loader that skips a valid
    /// snapshot (or takes a damaged one) is wrong even when the log lets it catch up.
    pub fn new(recoveries: &'r [RecoveryRecord]) -> Result<RecoveryPoints<'r>, Violation> {
        let mut p = RecoveryPoints {
            ubs: BTreeMap::new(),
            me: BTreeMap::new(),
            settlement: Vec::new(),
            judged: BTreeSet::new(),
        };
        for (i, record) in recoveries.iter().enumerate() {
            if record.state.snapshot() != record.newest_valid_snapshot {
                return Err(Violation::RecoveryMismatch {
                    service: record.node.clone(),
                    recovery: i,
                    at: record.state.snapshot().unwrap_or(0),
                    field: "snapshot loaded".into(),
                    expected: format!(
                        "{:?} (the newest that verifies on its disk)",
                        record.newest_valid_snapshot
                    ),
                    actual: format!("{:?}", record.state.snapshot()),
                });
            }
            match &record.state {
                Recovered::Ubs { wal_seq, state, .. } => {
                    p.ubs.entry(*wal_seq).or_default().push((i, state, record.thinned))
                }
                Recovered::Matching { state, index, .. } => {
                    p.me.entry(state.last_ubs_seq).or_default().push((i, state, index))
                }
                Recovered::Settlement { ledger, last_trade_id, .. } => {
                    p.settlement.push((i, ledger, *last_trade_id, record.thinned))
                }
                // Judged by `checker::market_data` and `checker::audit`, against the model's
                // event log.
                Recovered::MarketData { .. } | Recovered::Audit { .. } => {}
            }
        }
        Ok(p)
    }

    /// UBSCore recovered to `wal_seq` entries must hold all of the model's UBSCore state
    /// there: balances, supply, per-order locks, the de-duplication table and counters.
    pub fn check_at_wal(&mut self, model: &Model, wal_seq: u64) -> Result<(), Violation> {
        // Recoveries at one point share the model's digest: computed once, when needed.
        let mut model_dedup = None;
        for (i, state, thinned) in self.ubs.get(&wal_seq).into_iter().flatten() {
            self.judged.insert(*i);
            let fail =
                |field: &str, want: String, got: String| mismatch("ubscore", *i, wal_seq, field, want, got);
            let unsorted = [
                ("balances", first_unsorted(&state.balances).map(|p| format!("{p:?}"))),
                ("supply", first_unsorted(&state.supply).map(|p| format!("{p:?}"))),
                ("open locks", first_unsorted(&state.open).map(|p| format!("{p:?}"))),
                ("de-dup table", first_unsorted(&state.dedup).map(|p| format!("{p:?}"))),
            ];
            if let Some((field, Some(pair))) = unsorted.into_iter().find(|(_, p)| p.is_some()) {
                return Err(fail(&format!("order of {field}"), "keys rising".into(), format!("keys {pair}")));
            }
            let balances = model.balances();
            let got =
                state.balances.iter().filter(|(_, b)| b.avail != 0 || b.frozen != 0).map(|(k, b)| (*k, b));
            if let Some((key, want, got)) = first_key_difference(balances.iter().map(|(k, v)| (*k, v)), got) {
                return Err(fail(&format!("balance of {key:?}"), format!("{want:?}"), format!("{got:?}")));
            }
            let got = state.supply.iter().filter(|(_, s)| *s != 0).copied();
            let want: BTreeMap<_, _> = model.net_deposits().into_iter().filter(|(_, s)| *s != 0).collect();
            if let Some((asset, want, got)) = first_key_difference(want, got) {
                return Err(fail(
                    &format!("supply of asset {asset}"),
                    format!("{want:?}"),
                    format!("{got:?}"),
                ));
            }
            let got = state.open.iter().map(|(id, l)| (*id, (l.user, l.asset, l.remaining_lock)));
            let want = model.ubs_locks().iter().map(|(k, v)| (*k, *v));
            if let Some((order, want, got)) = first_key_difference(want, got) {
                return Err(fail(&format!("lock of order {order}"), format!("{want:?}"), format!("{got:?}")));
            }
            if let Some(got) = thinned {
                let want = *model_dedup.get_or_insert_with(|| TableDigest::of(model.dedup().iter()));
                if want != *got {
                    return Err(fail(
                        &format!("de-dup table{BY_DIGEST}"),
                        digest_text(want),
                        digest_text(*got),
                    ));
                }
            } else if let Some((key, want, got)) = first_key_difference(
                model.dedup().iter().map(|(k, v)| (*k, v)),
                state.dedup.iter().map(|(k, v)| (*k, v)),
            ) {
                return Err(fail(&format!("de-dup entry {key:?}"), format!("{want:?}"), format!("{got:?}")));
            }
            let want_next = model.history().len() as u64 + 1;
            if state.next_seq != want_next {
                return Err(fail("next ubs_seq", want_next.to_string(), state.next_seq.to_string()));
            }
            if state.last_event_id != model.applied_event_id() {
                return Err(fail(
                    "last applied ME event",
                    model.applied_event_id().to_string(),
                    state.last_event_id.to_string(),
                ));
            }
        }
        Ok(())
    }

    /// The matching engine recovered to `ubs_seq` must hold the model's books (priority
    /// order), an order index listing exactly the resting orders, and its counters.
    pub fn check_at_ubs_seq(&mut self, model: &Model, ubs_seq: u64) -> Result<(), Violation> {
        for (i, state, index) in self.me.get(&ubs_seq).into_iter().flatten() {
            self.judged.insert(*i);
            let fail =
                |field: &str, want: String, got: String| mismatch("matching", *i, ubs_seq, field, want, got);
            let books = model.books();
            if state.books != books {
                let symbol =
                    books.keys().chain(state.books.keys()).find(|s| books.get(s) != state.books.get(s));
                let (want, got) = symbol.map_or((None, None), |s| (books.get(s), state.books.get(s)));
                return Err(fail(
                    &format!("book of symbol {symbol:?}"),
                    format!("{want:?}"),
                    format!("{got:?}"),
                ));
            }
            let mut want_index: Vec<(OrderId, SymbolId)> =
                books.values().flatten().map(|o| (o.order_id, o.symbol)).collect();
            want_index.sort_unstable();
            if **index != want_index {
                return Err(fail("order index", format!("{want_index:?}"), format!("{index:?}")));
            }
            let want_event = model.events().len() as u64 + 1;
            if state.next_event_id != want_event {
                return Err(fail("next event id", want_event.to_string(), state.next_event_id.to_string()));
            }
            let want_trade = model.ledger().len() as u64 + 1;
            if state.next_trade_id != want_trade {
                return Err(fail("next trade id", want_trade.to_string(), state.next_trade_id.to_string()));
            }
        }
        Ok(())
    }

    /// Every recovered settlement ledger is a prefix of the model's trades, and its
    /// watermark is its last trade.
    pub fn check_settlement(&mut self, model: &Model) -> Result<(), Violation> {
        // Every ledger judged by digest is a prefix of the model's: their digests in one pass.
        let lens = self.settlement.iter().filter_map(|r| r.3.map(|d| d.rows)).collect();
        let prefixes = TableDigest::prefixes(model.ledger(), &lens);
        for (i, ledger, last, thinned) in &self.settlement {
            self.judged.insert(*i);
            let at = thinned.map_or(ledger.len() as u64, |d| d.rows);
            if at > model.ledger().len() as u64 {
                return Err(Violation::UnplacedRecovery {
                    service: "settlement".into(),
                    recovery: *i,
                    at,
                    history: model.ledger().len() as u64,
                });
            }
            if let Some(got) = thinned {
                let want = prefixes[&at];
                if want != *got {
                    let field = format!("ledger{BY_DIGEST}");
                    return Err(mismatch("settlement", *i, at, &field, digest_text(want), digest_text(*got)));
                }
            } else if let Some(k) = (0..ledger.len()).find(|k| ledger[*k] != model.ledger()[*k]) {
                return Err(mismatch(
                    "settlement",
                    *i,
                    at,
                    &format!("ledger[{k}]"),
                    model.ledger()[k],
                    ledger[k],
                ));
            }
            if *last != at {
                return Err(mismatch("settlement", *i, at, "last settled trade id", at, *last));
            }
        }
        Ok(())
    }

    /// After the whole history was replayed: a recovery never judged claimed a point the
    /// history never reached.
    pub fn check_all_placed(&self, history_entries: u64, history_seq: u64) -> Result<(), Violation> {
        let unplaced = |service: &str, recovery: usize, at: u64, history: u64| Violation::UnplacedRecovery {
            service: service.into(),
            recovery,
            at,
            history,
        };
        for (at, list) in &self.ubs {
            if let Some((i, ..)) = list.iter().find(|(i, ..)| !self.judged.contains(i)) {
                return Err(unplaced("ubscore", *i, *at, history_entries));
            }
        }
        for (at, list) in &self.me {
            if let Some((i, _, _)) = list.iter().find(|(i, _, _)| !self.judged.contains(i)) {
                return Err(unplaced("matching", *i, *at, history_seq));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_by_digest_is_known_as_one_also_under_media_damage() {
        let by_digest = mismatch("ubscore", 3, 7, &format!("de-dup table{BY_DIGEST}"), "a", "b");
        let named = mismatch("ubscore", 3, 7, "de-dup entry 4", "a", "b");
        assert!(found_by_digest(&by_digest) && !found_by_digest(&named));
        let wrapped = Violation::SilentCorruption { found: Box::new(by_digest) };
        assert!(found_by_digest(&wrapped), "media damage wraps the finding");
        assert!(!found_by_digest(&Violation::SilentCorruption { found: Box::new(named) }));
    }

    #[test]
    fn the_merge_walk_names_the_smallest_differing_key() {
        let want = [(1u32, 'a'), (3, 'c'), (5, 'e')];
        assert_eq!(first_key_difference(want, want), None);
        assert_eq!(
            first_key_difference(want, [(1, 'a'), (3, 'x'), (5, 'e')]),
            Some((3, Some('c'), Some('x')))
        );
        assert_eq!(first_key_difference(want, [(1, 'a'), (2, 'b'), (3, 'c')]), Some((2, None, Some('b'))));
        assert_eq!(first_key_difference(want, [(1, 'a'), (3, 'c')]), Some((5, Some('e'), None)));
        assert_eq!(first_key_difference([], [(7, 'g')]), Some((7, None, Some('g'))));
    }

    #[test]
    fn rows_out_of_order_or_repeated_are_found() {
        assert_eq!(first_unsorted(&[(1u32, ()), (2, ()), (9, ())]), None);
        assert_eq!(first_unsorted(&[(1u32, ()), (4, ()), (3, ())]), Some((4, 3)));
        assert_eq!(first_unsorted(&[(1u32, ()), (1, ())]), Some((1, 1)), "a duplicate key");
    }
}
