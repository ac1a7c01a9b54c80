//! Settlement with its audit trail: the order of the two commits. A pulled batch of the
//! matching engine's events goes to the ledger first (its trades, committed), and only
//! then to the audit trail (every event, committed): an audit record never speaks of a
//! trade the ledger does not hold durably. A crash between the two leaves the ledger
//! ahead; the trail re-pulls from its own watermark and the ledger skips what it holds.

use super::{DurableAudit, DurableError, DurableSettlement};
use crate::{MeEvent, MeEventKind};

/// Settles one pulled batch, which must continue the trail's watermark (a gap is refused
/// before anything is written): trades to the ledger, committed; then every event to the
/// trail, committed.
pub fn settle_events(
    ledger: &mut DurableSettlement,
    audit: &mut DurableAudit,
    events: &[MeEvent],
) -> Result<(), DurableError> {
    let ids = events.iter().map(|e| e.event_id);
    super::contiguous("matching → settlement", audit.inner().last_event_id(), ids)?;
    if crate::bugs::planted(crate::bugs::Bug::AuditBeforeLedger) {
        to_audit(audit, events)?;
        return to_ledger(ledger, events);
    }
    to_ledger(ledger, events)?;
    to_audit(audit, events)
}

fn to_ledger(ledger: &mut DurableSettlement, events: &[MeEvent]) -> Result<(), DurableError> {
    for e in events {
        if let MeEventKind::Trade(t) = &e.kind {
            ledger.apply(t)?;
        }
    }
    ledger.commit().map(|_| ())
}

fn to_audit(audit: &mut DurableAudit, events: &[MeEvent]) -> Result<(), DurableError> {
    events.iter().try_for_each(|e| audit.apply(e).map(|_| ()))?;
    audit.commit().map(|_| ())
}
