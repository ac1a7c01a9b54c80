//! What the followers served before a crash, held against what they recovered. UBSCore's
//! acknowledgements are the clients' (judged by [`super::oracle::Oracle::placed`]); market
//! data and the audit trail answer queries from a durable watermark, so what one of them
//! served is an acknowledgement too: after a crash, its recovery (before it pulls anything
//! again) must hold at least that much, or a client would see it go back in time (the
//! world's rule, `checker::market_data` and `checker::audit`). The matching engine's
//! events and Settlement's trades are not held to this: a recovery behind them re-derives
//! the same events and trades from UBSCore's history, which the oracle checks in full.
//! The engine's watermark is used only as an accusation (what it claimed, so what it may
//! have served), never as an excuse: what a recovery holds is read from its state.

use crate::checker::Violation;
use engine::durable::pipeline::Followers;

/// The followers held to what they served, in [`Marks`]' order.
pub const FOLLOWERS: [&str; 2] = ["market data", "audit trail"];

/// One watermark per follower of [`FOLLOWERS`], in events (0: nothing, or no followers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks(pub [u64; 2]);

impl Marks {
    /// What each follower would serve now: everything up to its durable watermark.
    pub fn of_followers(f: &Followers) -> Marks {
        Marks([f.market_data.durable_event_id(), f.audit.durable_event_id()])
    }
}

/// What the followers had served when each was recorded: (operations done, marks).
#[derive(Clone, Debug, Default)]
pub struct Served(Vec<(u64, Marks)>);

impl Served {
    /// Records the marks served from operation `ops` on (they only rise).
    pub fn record(&mut self, ops: u64, marks: Marks) {
        if let Some((_, last)) = self.0.last() {
            debug_assert!(last.0.iter().zip(marks.0).all(|(a, b)| *a <= b), "served watermarks only rise");
        }
        self.0.push((ops, marks));
    }

    /// What had been served while operations `1..=last_ok` succeeded (nothing recorded
    /// later can have been served before a death at operation `last_ok + 1`).
    pub fn by(&self, last_ok: u64) -> Marks {
        self.0.iter().take_while(|(ops, _)| *ops <= last_ok).last().map_or(Marks::default(), |(_, m)| *m)
    }
}

/// The first follower whose recovery holds less than it served.
pub fn check(served: Marks, recovered: Marks) -> Result<(), Violation> {
    (0..FOLLOWERS.len()).try_for_each(|i| check_one(i, served.0[i], recovered.0[i]))
}

/// Follower `i` (of [`FOLLOWERS`]) served up to `served` and its recovery holds `held`.
fn check_one(i: usize, served: u64, held: u64) -> Result<(), Violation> {
    if held >= served {
        return Ok(());
    }
    let (field, at) = ("events".to_string(), held);
    let (expected, actual) = (format!("at least {served}, served before the crash"), held.to_string());
    Err(match i {
        0 => Violation::MarketDataDiverged { recovery: Some(0), at, field, expected, actual },
        _ => Violation::AuditDiverged { recovery: Some(0), at, field, expected, actual },
    })
}

/// Per follower, the least that any crashed-and-redone recovery of one disk held, and the
/// crashes that led to it.
#[derive(Clone, Debug, Default)]
pub struct Least([Option<(String, u64)>; 2]);

impl Least {
    /// Lowers these by a recovery redone after `what` that held `held` (`None`: it failed)
    /// and by the recoveries cut short inside it (`deeper`).
    pub fn lower(&mut self, what: &str, held: Option<Marks>, deeper: &Least) {
        for (i, least) in self.0.iter_mut().enumerate() {
            let own = held.map(|m| (what.to_string(), m.0[i]));
            let inner = deeper.0[i].as_ref().map(|(w, m)| (format!("{what}; then {w}"), *m));
            for (how, m) in own.into_iter().chain(inner) {
                if least.as_ref().is_none_or(|(_, l)| m < *l) {
                    *least = Some((how, m));
                }
            }
        }
    }

    /// The first follower some redone recovery left behind what it served, with how.
    pub fn check(&self, served: Marks) -> Option<(String, Violation)> {
        self.0.iter().enumerate().find_map(|(i, least)| {
            let (how, held) = least.as_ref()?;
            check_one(i, served.0[i], *held).err().map(|v| (how.clone(), v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_behind_what_its_service_served_is_named() {
        let served = Marks([5, 7]);
        assert_eq!(check(served, served), Ok(()));
        assert_eq!(check(served, Marks([6, 9])), Ok(()), "ahead is fine: more became durable");
        let kinds: Vec<&str> = (0..2)
            .map(|i| {
                let mut behind = served;
                behind.0[i] -= 1;
                check(served, behind).expect_err("behind").kind()
            })
            .collect();
        assert_eq!(kinds, ["market-data-diverged", "audit-diverged"]);
    }

    #[test]
    fn what_was_served_is_what_was_recorded_before_the_death() {
        let mut s = Served::default();
        s.record(10, Marks([1, 0]));
        s.record(20, Marks([2, 1]));
        assert_eq!(s.by(9), Marks::default());
        assert_eq!(s.by(10), Marks([1, 0]));
        assert_eq!(s.by(19), Marks([1, 0]));
        assert_eq!(s.by(25), Marks([2, 1]));
    }

    #[test]
    fn the_least_a_redone_recovery_held_is_kept_with_how() {
        let mut deeper = Least::default();
        deeper.lower("crash B", Some(Marks([3, 9])), &Least::default());
        let mut least = Least::default();
        least.lower("crash A", Some(Marks([5, 4])), &deeper);
        least.lower("crash C", None, &Least::default());
        assert_eq!(least.check(Marks([3, 4])), None);
        let (how, v) = least.check(Marks([4, 4])).expect("market data behind");
        assert_eq!((how.as_str(), v.kind()), ("crash A; then crash B", "market-data-diverged"));
        let (how, v) = least.check(Marks([0, 5])).expect("the trail behind");
        assert_eq!((how.as_str(), v.kind()), ("crash A", "audit-diverged"));
    }
}
