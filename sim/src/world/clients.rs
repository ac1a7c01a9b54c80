//! Clients: each sends its share of the commands (round-robin by the command's place in the
//! seeded workload), retrying every command until it is acknowledged; every
//! acknowledgement is recorded with the command's index.

use super::services::addrs;
use super::{Shared, lock};
use crate::trace::Tags;
use engine::Command;
use engine::service::{Request, Response, rpc};
use madsim::net::Endpoint;
use madsim::runtime::Handle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Creates `clients` client nodes sending `commands` (the seeded workload's commands
/// `keep`, when a plan keeps only some); returns how many there are. A command goes to the
/// client its place in the seeded workload names, so a command removed by a shrinker
/// leaves every other command with the client that sent it before.
pub(crate) fn spawn(
    handle: &Handle,
    shared: &Arc<Shared>,
    commands: &[Command],
    keep: Option<&[usize]>,
    clients: usize,
) -> usize {
    for c in 0..clients {
        let mine: Vec<Sent> = (commands.iter().copied().enumerate())
            .map(|(i, command)| Sent {
                i,
                workload: keep.and_then(|k| k.get(i).copied()).unwrap_or(i),
                command,
            })
            .filter(|s| s.workload % clients == c)
            .collect();
        let shared = shared.clone();
        handle
            .create_node()
            .name(format!("client-{c}"))
            .ip([10, 0, 1, c as u8 + 1].into())
            .init(move || {
                let (shared, mine) = (shared.clone(), mine.clone());
                async move { run(c, shared, mine).await }
            })
            .build();
    }
    clients
}

/// A command to send: its place among the commands sent, its place in the seeded workload.
#[derive(Clone, Copy)]
struct Sent {
    i: usize,
    workload: usize,
    command: Command,
}

async fn run(c: usize, shared: Arc<Shared>, mine: Vec<Sent>) {
    let name = format!("client-{c}");
    let tracer = shared.tracer.clone();
    let Ok(ep) = Endpoint::bind(SocketAddr::from(([10, 0, 1, c as u8 + 1], 9000))).await else {
        tracer(&name, "cannot bind".into());
        return;
    };
    for Sent { i, workload, command } in mine {
        let mut tries = 0u32;
        loop {
            tries += 1;
            let reply =
                rpc::call(&ep, addrs().ubscore, &Request::Submit(command), Duration::from_millis(200)).await;
            if let Some(Response::Ack(ack)) = reply {
                // Named by its place in the seeded workload, as plans name commands.
                let line = format!("ack #{workload} {:?} seq={:?} tries={tries}", ack.outcome, ack.seq);
                let tags = Tags { kind: Some("client"), seq: ack.seq, ..Tags::default() };
                shared.trace.record_tagged(shared.start.elapsed(), &name, &line, tags);
                lock(&shared.acked).push((i, command, ack));
                lock(&shared.ack_times).push((i, shared.start.elapsed().as_millis() as u64));
                break;
            }
            madsim::time::sleep(Duration::from_millis(20)).await;
        }
    }
    shared.done.fetch_add(1, Ordering::SeqCst);
}
