//! Request/response over [`Endpoint`]: madsim's endpoint in the simulation build, our TCP
//! transport (`tcp.rs`) in the normal build. Messages can be lost, delayed, duplicated or reordered: callers
//! time out and retry, and every request is idempotent.

use super::protocol::{REQUEST_TAG, Request, Response};
use crate::codec;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// The network endpoint: madsim's in the simulation, TCP in the normal build.
#[cfg(not(madsim))]
pub use super::tcp::Endpoint;
/// The network endpoint: madsim's in the simulation, TCP in the normal build.
#[cfg(madsim)]
pub use madsim::net::Endpoint;

/// Binds an endpoint on `addr`.
pub async fn bind(addr: SocketAddr) -> io::Result<Endpoint> {
    #[cfg(madsim)]
    return Endpoint::bind(addr).await;
    #[cfg(not(madsim))]
    return Endpoint::bind(addr, REQUEST_TAG).await;
}

/// Largest message accepted.
pub const MAX_MESSAGE: usize = 8 << 20;

fn frame<T: serde::Serialize>(tag: u64, value: &T) -> Vec<u8> {
    let mut out = tag.to_le_bytes().to_vec();
    codec::encode_into(value, &mut out);
    out
}

fn unframe<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<(u64, T)> {
    let tag = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    Some((tag, codec::decode(&bytes[8..]).ok()?))
}

#[cfg(madsim)]
thread_local! {
    /// Probability that the simulated network delivers a message twice (each simulation
    /// runs on its own thread, so this is per simulation).
    static DUPLICATE_RATE: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
    /// Messages duplicated so far in this simulation.
    static DUPLICATED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Messages the simulated network duplicated in this simulation (and resets the count).
#[cfg(madsim)]
pub fn take_duplicated() -> u64 {
    DUPLICATED.with(|d| d.replace(0))
}

/// Sets the probability that the simulated network duplicates a message.
#[cfg(madsim)]
pub fn set_duplicate_rate(p: f64) {
    DUPLICATE_RATE.with(|r| r.set(p.clamp(0.0, 1.0)));
}

/// Sends encoded bytes. In the simulation the bytes travel as one message object (no
/// copy into a receive buffer), and may be delivered twice; on a real network as a frame.
async fn send(ep: &Endpoint, dst: SocketAddr, tag: u64, bytes: Vec<u8>) -> io::Result<()> {
    #[cfg(madsim)]
    {
        let p = DUPLICATE_RATE.with(|r| r.get());
        if p > 0.0 && madsim::rand::random::<f64>() < p {
            DUPLICATED.with(|d| d.set(d.get() + 1));
            ep.send_to_raw(dst, tag, Box::new(bytes.clone())).await?;
        }
        return ep.send_to_raw(dst, tag, Box::new(bytes)).await;
    }
    #[cfg(not(madsim))]
    return ep.send_to(dst, tag, &bytes).await;
}

/// Receives the bytes of the next message on `tag`.
async fn recv(ep: &Endpoint, tag: u64) -> io::Result<(Vec<u8>, SocketAddr)> {
    #[cfg(madsim)]
    {
        let (payload, from) = ep.recv_from_raw(tag).await?;
        let bytes = payload.downcast::<Vec<u8>>().map_err(|_| io::Error::other("unexpected message type"))?;
        Ok((*bytes, from))
    }
    #[cfg(not(madsim))]
    return ep.recv_from(tag).await;
}

/// Sends `request` to `dst` and waits up to `timeout` for the reply. `None` on loss,
/// timeout or garbage: the caller retries.
pub async fn call(ep: &Endpoint, dst: SocketAddr, request: &Request, timeout: Duration) -> Option<Response> {
    let tag: u64 = madsim::rand::random::<u64>() | (1 << 63);
    #[cfg(not(madsim))]
    ep.expect(tag);
    let reply = async {
        send(ep, dst, REQUEST_TAG, frame(tag, request)).await.ok()?;
        madsim::time::timeout(timeout, recv(ep, tag)).await.ok()?.ok()
    };
    let got = reply.await;
    #[cfg(not(madsim))]
    ep.forget(tag);
    let (bytes, _) = got?;
    unframe::<Response>(&bytes).map(|(_, r)| r)
}

/// Receives the next request: (sender, reply tag, request). Undecodable messages are
/// skipped.
pub async fn next_request(ep: &Endpoint) -> io::Result<(SocketAddr, u64, Request)> {
    loop {
        let (bytes, from) = recv(ep, REQUEST_TAG).await?;
        if let Some((tag, request)) = unframe::<Request>(&bytes) {
            return Ok((from, tag, request));
        }
    }
}

/// Sends a reply (best effort: a lost reply is a timeout for the caller).
pub async fn reply(ep: &Endpoint, to: SocketAddr, tag: u64, response: &Response) {
    let _ = send(ep, to, tag, frame(tag, response)).await;
}
