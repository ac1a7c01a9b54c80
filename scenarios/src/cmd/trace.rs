//! `--trace` output through `tracing`: a subscriber on stderr that shows each event with its
//! simulated time and node (events without a `node` field show `-`), filtered by `EXSIM_LOG` (`RUST_LOG` syntax, default
//! `exsim=info`), `--trace-node` and `--trace-kind`. The trace hash does not depend on it.

use crate::Failure;
use std::fmt::Write as _;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// `--trace` and its filters.
#[derive(clap::Args, Clone, Default)]
pub struct TraceArgs {
    /// Print the trace on stderr (filter it with EXSIM_LOG, --trace-node, --trace-kind).
    #[arg(long)]
    trace: bool,
    /// Trace only these nodes (comma-separated: ubscore, matching, settlement, world,
    /// client-0 …); implies the trace.
    #[arg(long, value_delimiter = ',')]
    trace_node: Vec<String>,
    /// Trace only these kinds of event (comma-separated: fault, client, service, world,
    /// storage); implies the trace. `storage` lowers the default level to debug.
    #[arg(long, value_delimiter = ',')]
    trace_kind: Vec<String>,
}

impl TraceArgs {
    /// Installs the subscriber for the whole process if the trace is asked for (`--trace`
    /// or a filter).
    pub fn install_if_asked(&self) -> Result<(), Failure> {
        if self.trace || !self.trace_node.is_empty() || !self.trace_kind.is_empty() {
            self.install()?;
        }
        Ok(())
    }

    fn install(&self) -> Result<(), Failure> {
        if let Some(k) = self.trace_kind.iter().find(|k| !sim::trace::KINDS.contains(&k.as_str())) {
            return Err(Failure::Usage(format!(
                "--trace-kind: unknown kind `{k}` (known: {})",
                sim::trace::KINDS.join(", ")
            )));
        }
        let default =
            if self.trace_kind.iter().any(|k| k == "storage") { "exsim=debug" } else { "exsim=info" };
        let env = std::env::var("EXSIM_LOG").unwrap_or_else(|_| default.to_string());
        let filter = tracing_subscriber::EnvFilter::try_new(&env)
            .map_err(|e| Failure::Usage(format!("EXSIM_LOG=`{env}`: {e}")))?;
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(NodeKindFilter { nodes: self.trace_node.clone(), kinds: self.trace_kind.clone() })
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(SimFormat));
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| Failure::Usage(format!("cannot install the trace subscriber: {e}")))
    }
}

/// The fields of one event that the filter and the format read.
#[derive(Default)]
struct Fields {
    message: String,
    node: Option<String>,
    kind: Option<String>,
    sim_us: Option<u64>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "node" => self.node = Some(value.to_string()),
            "kind" => self.kind = Some(value.to_string()),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "sim_us" => self.sim_us = Some(value),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

impl Fields {
    fn of(event: &Event<'_>) -> Fields {
        let mut f = Fields::default();
        event.record(&mut f);
        f
    }
}

/// Keeps the events of the asked nodes and kinds (all when none is asked).
struct NodeKindFilter {
    nodes: Vec<String>,
    kinds: Vec<String>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for NodeKindFilter {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        if self.nodes.is_empty() && self.kinds.is_empty() {
            return true;
        }
        let f = Fields::of(event);
        let kind_ok = self.kinds.is_empty() || f.kind.as_ref().is_some_and(|k| self.kinds.contains(k));
        let node_ok = self.nodes.is_empty() || f.node.as_ref().is_some_and(|n| self.nodes.contains(n));
        kind_ok && node_ok
    }
}

/// `   12.345ms ubscore    message`: the trace's own line format, for every event.
struct SimFormat;

impl<S, N> FormatEvent<S, N> for SimFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let f = Fields::of(event);
        let at = f.sim_us.map(Duration::from_micros).or_else(sim::trace::sim_now).unwrap_or_default();
        let node = f.node.as_deref().unwrap_or("-");
        write!(w, "{:>10.3}ms {node:<10} ", at.as_secs_f64() * 1e3)?;
        let target = event.metadata().target();
        if target == "exsim::trace" {
            // The trace's own line: its fields only repeat what the line says.
            return writeln!(w, "{}", f.message);
        }
        writeln!(w, "{} {target}: {}{}", event.metadata().level(), f.message, f.rest)
    }
}
