//! The runtime's own speed: a bare madsim message loop (clients sending small requests to
//! one server node and awaiting each reply), with no exchange, no filesystem and no
//! checker. `exsim bench sim` compares the exchange's messages per wall second with it.

use madsim::net::Endpoint;
use madsim::runtime::Handle;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes per message: about an exchange request.
const PAYLOAD: usize = 64;

/// Messages delivered and the wall time it took.
#[derive(Clone, Copy, Debug)]
pub struct BareLoop {
    /// Requests and replies delivered.
    pub messages: u64,
    /// Wall time of the whole simulation.
    pub wall: Duration,
}

impl BareLoop {
    /// Messages per wall second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// `clients` client nodes each make `round_trips` request/reply round trips with one
/// server node, over madsim's simulated network (1–10 ms latency, as in every world).
pub fn message_loop(seed: u64, clients: u8, round_trips: u64) -> BareLoop {
    assert!(clients > 0 && round_trips > 0, "an empty loop measures nothing");
    let started = Instant::now();
    let messages = crate::runner::run(seed, None, move || async move {
        let handle = Handle::current();
        let server: SocketAddr = ([10, 9, 0, 1], 7000).into();
        handle.create_node().name("bare-server").ip(server.ip()).build().spawn(async move {
            let Ok(ep) = Endpoint::bind(server).await else { return };
            // Requests on tag 1, replies on tag 2.
            while let Ok((payload, from)) = ep.recv_from_raw(1).await {
                let _ = ep.send_to_raw(from, 2, payload).await;
            }
        });
        let mut joins = Vec::new();
        for c in 0..clients {
            let ip = std::net::Ipv4Addr::new(10, 9, 1, c + 1);
            let node = handle.create_node().name(format!("bare-client-{c}")).ip(ip.into()).build();
            joins.push(node.spawn(async move {
                let Ok(ep) = Endpoint::bind(SocketAddr::from((ip, 7000))).await else { return 0 };
                // The server binds within its first simulated milliseconds: a request sent
                // before would be dropped.
                madsim::time::sleep(Duration::from_millis(10)).await;
                let mut delivered = 0;
                for _ in 0..round_trips {
                    if ep.send_to_raw(server, 1, Box::new(vec![0u8; PAYLOAD])).await.is_err()
                        || ep.recv_from_raw(2).await.is_err()
                    {
                        break;
                    }
                    delivered += 2;
                }
                delivered
            }));
        }
        let mut messages = 0;
        for j in joins {
            messages += j.await.unwrap_or(0);
        }
        messages
    });
    BareLoop { messages, wall: started.elapsed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_trip_is_two_messages() {
        let run = message_loop(1, 3, 50);
        assert_eq!(run.messages, 300);
        assert!(run.per_second() > 0.0);
    }
}
