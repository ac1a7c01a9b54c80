//! What the checker can find, typed: each violation names the rule it breaks and carries
//! the evidence (what was expected, what was found, where). Reports, JSON and JUnit carry
//! the kind; tests assert which kind catches which bug.

use serde::Serialize;
use std::fmt;

/// A broken rule, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    /// The durable history itself is broken: an entry made durable twice with different
    /// bytes, a hole, or a durable entry that does not decode.
    HistoryBroken {
        /// What is wrong, where.
        detail: String,
    },
    /// An acknowledged command is not in the agreed history.
    LostAck {
        /// The command a client sent and got acknowledged.
        command: String,
        /// The acknowledgement it got.
        ack: String,
    },
    /// A command in the history that no client sent, byte for byte.
    ForeignCommand {
        /// Its sequence number.
        seq: u64,
        /// What the history holds.
        logged: String,
        /// What a client sent under the same id, if any did.
        sent: Option<String>,
    },
    /// A command id appears twice in the history.
    DuplicateCommand {
        /// The second occurrence's sequence number.
        seq: u64,
        /// The command.
        command: String,
    },
    /// An outcome differs: the model's for a history entry, or the history's for an ack.
    OutcomeMismatch {
        /// The history entry's sequence number.
        seq: u64,
        /// Who disagrees with the history: `model` or `acknowledgement`.
        against: String,
        /// What the model (or the acknowledgement) says.
        expected: String,
        /// What the history says.
        actual: String,
    },
    /// A service's state right after a recovery differs from the model at that point.
    RecoveryMismatch {
        /// The service.
        service: String,
        /// The recovery's index among all recoveries of the run.
        recovery: usize,
        /// The point of history it recovered to (UBSCore: WAL seq; matching: ubs_seq;
        /// settlement: trades).
        at: u64,
        /// The field that differs.
        field: String,
        /// The model's value.
        expected: String,
        /// The recovered value.
        actual: String,
    },
    /// A recovery to a point the agreed history never reached.
    UnplacedRecovery {
        /// The service.
        service: String,
        /// The recovery's index.
        recovery: usize,
        /// The point it claims.
        at: u64,
        /// How far the history goes.
        history: u64,
    },
    /// The final recovered state differs from the model's.
    StateMismatch {
        /// The field that differs.
        field: String,
        /// The model's value.
        expected: String,
        /// The engine's value.
        actual: String,
    },
    /// A log (the ME's events, the settlement ledger) differs from the model's.
    LogMismatch {
        /// Which log.
        log: String,
        /// The first difference.
        detail: String,
    },
    /// An invariant (conservation, exact frozen amounts, uncrossed books …) is broken.
    Invariant {
        /// Which, and how.
        detail: String,
    },
    /// Under media faults, acknowledged data was lost or changed and no service noticed.
    SilentCorruption {
        /// What the checker found.
        found: Box<Violation>,
    },
    /// A service stopped with an error the injected faults do not explain.
    ServiceError {
        /// The service.
        service: String,
        /// Its error.
        error: String,
    },
    /// The exchange did not converge after faults stopped.
    Liveness {
        /// The last watermarks seen.
        detail: String,
    },
    /// After convergence, with no fault left, a service refused a query a client may make
    /// (an error, a wrong kind of answer, or silence after three tries).
    QueryRefused {
        /// The query and what came back.
        detail: String,
    },
    /// A service did not follow its storage policy: it took far fewer or far more
    /// snapshots than its interval asks for the entries it logged.
    PolicyBroken {
        /// The service.
        service: String,
        /// What it did against what the policy allows.
        detail: String,
    },
    /// A storage leaks disk: it keeps more snapshots than it may, or appends to a WAL
    /// segment past its size (so retention can never remove it).
    DiskLeak {
        /// The storage (a service's, or the audit trail's).
        storage: String,
        /// The file or directory, and what it holds against what the settings allow.
        detail: String,
    },
    /// The run went over its wall-clock limit and was cancelled.
    Timeout {
        /// Which budget, and how far the run got.
        detail: String,
    },
    /// The services could not be recovered from their disks at the end.
    Unrecoverable {
        /// The error.
        error: String,
    },
    /// The simulated exchange panicked.
    Panic {
        /// The panic message.
        message: String,
    },
    /// The in-memory engine diverged from the model (differential scenario).
    Divergence {
        /// The first difference.
        detail: String,
    },
    /// The hot-standby replica disagrees with the model: its chained hash at an event, or
    /// its state once it caught up.
    ReplicaDiverged {
        /// The first event id whose link differs (0: its final state differs).
        event_id: u64,
        /// The model's (event, link), or the model's state field.
        expected: String,
        /// The replica's link, or its state field.
        actual: String,
    },
    /// Settlement's audit trail recovered something the model's event log does not derive,
    /// or speaks of a trade its ledger does not hold.
    AuditDiverged {
        /// Which recovery (index among the run's recoveries); `None`: the end state.
        recovery: Option<usize>,
        /// The event id it holds state as of.
        at: u64,
        /// The first field that differs.
        field: String,
        /// The model's (or the rule's).
        expected: String,
        /// The trail's.
        actual: String,
    },
    /// Market data recovered or served something the model's event log does not derive.
    MarketDataDiverged {
        /// Which recovery (index among the run's recoveries); `None`: a tick served, or
        /// the end state.
        recovery: Option<usize>,
        /// The event id it holds state as of (0: not known).
        at: u64,
        /// The first field that differs.
        field: String,
        /// The model's.
        expected: String,
        /// Market data's.
        actual: String,
    },
}

impl Violation {
    /// The kind, as carried in reports (`lost-ack`, `recovery-mismatch` …).
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::HistoryBroken { .. } => "history-broken",
            Violation::LostAck { .. } => "lost-ack",
            Violation::ForeignCommand { .. } => "foreign-command",
            Violation::DuplicateCommand { .. } => "duplicate-command",
            Violation::OutcomeMismatch { .. } => "outcome-mismatch",
            Violation::RecoveryMismatch { .. } => "recovery-mismatch",
            Violation::UnplacedRecovery { .. } => "unplaced-recovery",
            Violation::StateMismatch { .. } => "state-mismatch",
            Violation::LogMismatch { .. } => "log-mismatch",
            Violation::Invariant { .. } => "invariant",
            Violation::SilentCorruption { .. } => "silent-corruption",
            Violation::ServiceError { .. } => "service-error",
            Violation::Liveness { .. } => "liveness",
            Violation::QueryRefused { .. } => "query-refused",
            Violation::PolicyBroken { .. } => "policy-broken",
            Violation::DiskLeak { .. } => "disk-leak",
            Violation::Timeout { .. } => "timeout",
            Violation::Unrecoverable { .. } => "unrecoverable",
            Violation::Panic { .. } => "panic",
            Violation::Divergence { .. } => "divergence",
            Violation::ReplicaDiverged { .. } => "replica-diverged",
            Violation::MarketDataDiverged { .. } => "market-data-diverged",
            Violation::AuditDiverged { .. } => "audit-diverged",
        }
    }

    /// Whether it says acknowledged or derived data is wrong (as opposed to a service
    /// failing loudly or not converging).
    pub fn is_data_loss_or_change(&self) -> bool {
        matches!(
            self,
            Violation::LostAck { .. }
                | Violation::HistoryBroken { .. }
                | Violation::ForeignCommand { .. }
                | Violation::DuplicateCommand { .. }
                | Violation::OutcomeMismatch { .. }
                | Violation::RecoveryMismatch { .. }
                | Violation::UnplacedRecovery { .. }
                | Violation::StateMismatch { .. }
                | Violation::LogMismatch { .. }
                | Violation::Invariant { .. }
                | Violation::ReplicaDiverged { .. }
                | Violation::MarketDataDiverged { .. }
                | Violation::AuditDiverged { .. }
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            Violation::HistoryBroken { detail } => f.write_str(detail),
            Violation::LostAck { command, ack } => {
                write!(f, "acknowledged command {command} ({ack}) is not in the history")
            }
            Violation::ForeignCommand { seq, logged, sent } => match sent {
                Some(sent) => write!(f, "history entry {seq} holds {logged}, but the client sent {sent}"),
                None => write!(f, "history entry {seq} holds {logged}, which no client sent"),
            },
            Violation::DuplicateCommand { seq, command } => {
                write!(f, "history entry {seq}: command id of {command} appears twice")
            }
            Violation::OutcomeMismatch { seq, against, expected, actual } => write!(
                f,
                "history entry {seq}\n  expected ({against}): {expected}\n  actual (history):  {actual}"
            ),
            Violation::RecoveryMismatch { service, recovery, at, field, expected, actual } => write!(
                f,
                "recovery #{recovery} of {service} (at {at}): {field}\n  expected (model): {expected}\n  actual:           {actual}"
            ),
            Violation::UnplacedRecovery { service, recovery, at, history } => write!(
                f,
                "recovery #{recovery} of {service} claims point {at}, but the history ends at {history}"
            ),
            Violation::StateMismatch { field, expected, actual } => write!(
                f,
                "recovered state.{field} differs from the model\n  expected (model): {expected}\n  actual (engine):  {actual}"
            ),
            Violation::LogMismatch { log, detail } => write!(f, "{log}: {detail}"),
            Violation::Invariant { detail } => f.write_str(detail),
            Violation::SilentCorruption { found } => {
                write!(f, "media damage went unnoticed by every service; the checker found {found}")
            }
            Violation::ServiceError { service, error } => write!(f, "{service}: {error}"),
            Violation::Liveness { detail } | Violation::QueryRefused { detail } => f.write_str(detail),
            Violation::PolicyBroken { service, detail } => write!(f, "{service}: {detail}"),
            Violation::DiskLeak { storage, detail } => write!(f, "{storage}: {detail}"),
            Violation::Timeout { detail } => f.write_str(detail),
            Violation::Unrecoverable { error } => write!(f, "recovery failed: {error}"),
            Violation::Panic { message } => write!(f, "panicked: {message}"),
            Violation::Divergence { detail } => f.write_str(detail),
            Violation::ReplicaDiverged { event_id: 0, expected, actual } => write!(
                f,
                "the replica's state once caught up differs from the model\n  expected (model):   {expected}\n  actual (replica):   {actual}"
            ),
            Violation::ReplicaDiverged { event_id, expected, actual } => write!(
                f,
                "the replica's chained hash first differs at event {event_id}\n  expected (model):   {expected}\n  actual (replica):   {actual}"
            ),
            Violation::MarketDataDiverged { recovery, at, field, expected, actual } => {
                match recovery {
                    Some(i) => write!(f, "market data recovery #{i} (as of event {at}) differs in {field}")?,
                    None => write!(f, "market data differs in {field}")?,
                }
                write!(f, "\n  expected (model):       {expected}\n  actual (market data):  {actual}")
            }
            Violation::AuditDiverged { recovery, at, field, expected, actual } => {
                match recovery {
                    Some(i) => write!(f, "audit trail recovery #{i} (as of event {at}) differs in {field}")?,
                    None => write!(f, "the audit trail differs in {field}")?,
                }
                write!(f, "\n  expected:               {expected}\n  actual (audit trail):   {actual}")
            }
        }
    }
}
