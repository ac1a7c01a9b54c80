//! The agreed history (UBSCore's committed WAL) against what the clients know: every entry
//! is, byte for byte, a command some client sent, each command id appears once, and every
//! acknowledgement is in it with exactly the acknowledged outcome. Nothing here takes the
//! engine's word: the sent commands and the acks come from the simulated clients.

use super::Violation;
use engine::{Ack, Command, CommandKey, Outcome, RejectReason, UbsRecord};
use std::collections::BTreeMap;

/// Every history entry was sent by a client, and no command id appears twice.
pub fn check_sent(history: &[UbsRecord], sent: &[Command]) -> Result<(), Violation> {
    let mut by_key: BTreeMap<CommandKey, Vec<&Command>> = BTreeMap::new();
    for command in sent {
        by_key.entry(command.key()).or_default().push(command);
    }
    let mut seen: BTreeMap<CommandKey, u64> = BTreeMap::new();
    for r in history {
        let candidates = by_key.get(&r.command.key()).map(Vec::as_slice).unwrap_or_default();
        if !candidates.contains(&&r.command) {
            return Err(Violation::ForeignCommand {
                seq: r.seq,
                logged: format!("{:?}", r.command),
                sent: candidates.first().map(|c| format!("{c:?}")),
            });
        }
        if seen.insert(r.command.key(), r.seq).is_some() {
            return Err(Violation::DuplicateCommand { seq: r.seq, command: format!("{:?}", r.command) });
        }
    }
    Ok(())
}

/// Every acknowledged command is in the history with the acknowledged outcome: a fresh
/// acknowledgement (with a sequence number) names its own entry; a retry's names the first
/// outcome of the same command, or `DuplicateId` for another command reusing the id.
pub fn check_acks(history: &[UbsRecord], acked: &[(Command, Ack)]) -> Result<(), Violation> {
    let by_key: BTreeMap<CommandKey, &UbsRecord> = history.iter().map(|r| (r.command.key(), r)).collect();
    for (command, ack) in acked {
        let Some(r) = by_key.get(&command.key()) else {
            return Err(Violation::LostAck { command: format!("{command:?}"), ack: format!("{ack:?}") });
        };
        let expected = match ack.seq {
            Some(seq) if r.command != *command => {
                return Err(Violation::ForeignCommand {
                    seq: r.seq,
                    logged: format!("{:?}", r.command),
                    sent: Some(format!("{command:?} (acknowledged as entry {seq})")),
                });
            }
            // The acknowledged entry is gone; the command sits elsewhere (a retry logged it
            // again): what the client was told does not hold.
            Some(seq) if seq != r.seq => {
                return Err(Violation::LostAck {
                    command: format!("{command:?}"),
                    ack: format!("{ack:?}; the history has the command as entry {}, not {seq}", r.seq),
                });
            }
            Some(_) => r.outcome,
            None if r.command == *command => r.outcome,
            None => Outcome::Rejected(RejectReason::DuplicateId),
        };
        if ack.outcome != expected {
            return Err(Violation::OutcomeMismatch {
                seq: r.seq,
                against: "acknowledgement".into(),
                expected: format!("{:?}", ack.outcome),
                actual: format!("{expected:?} ({r:?})"),
            });
        }
    }
    Ok(())
}

/// Replays one history entry into the model: a command must get the outcome (and the
/// sequence number) the history logged; an event must apply.
pub fn replay_entry(
    model: &mut crate::model::Model,
    entry: &engine::durable::UbsEntry,
) -> Result<(), Violation> {
    match entry {
        engine::durable::UbsEntry::Command(r) => {
            let ack = model.submit(r.command);
            if ack.seq != Some(r.seq) || ack.outcome != r.outcome {
                return Err(Violation::OutcomeMismatch {
                    seq: r.seq,
                    against: "model".into(),
                    expected: format!("{ack:?}"),
                    actual: format!("{r:?}"),
                });
            }
            Ok(())
        }
        engine::durable::UbsEntry::Event(e) => model
            .apply_event(e)
            .map_err(|detail| Violation::LogMismatch { log: "events applied by ubscore".into(), detail }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deposit(request_id: u64) -> Command {
        Command::Deposit { request_id, user: 1, asset: 1, amount: 10 }
    }

    #[test]
    fn an_ack_must_name_the_entry_that_holds_its_command() {
        let history = [
            UbsRecord { seq: 1, command: deposit(1), outcome: Outcome::Accepted },
            UbsRecord { seq: 2, command: deposit(2), outcome: Outcome::Accepted },
        ];
        let ack = |seq| Ack { outcome: Outcome::Accepted, seq: Some(seq) };
        assert_eq!(check_acks(&history, &[(deposit(2), ack(2))]), Ok(()));
        // Acknowledged as entry 1, which the history gave to another command: that entry
        // was lost, and a retry logged the command again as entry 2.
        let v = check_acks(&history, &[(deposit(2), ack(1))]).unwrap_err();
        assert_eq!(v.kind(), "lost-ack", "{v}");
        let v = check_acks(&history, &[(deposit(3), ack(3))]).unwrap_err();
        assert_eq!(v.kind(), "lost-ack", "{v}");
        let other = Command::Deposit { request_id: 2, user: 1, asset: 1, amount: 99 };
        let v = check_acks(&history, &[(other, ack(2))]).unwrap_err();
        assert_eq!(v.kind(), "foreign-command", "same id, other command: {v}");
    }
}
