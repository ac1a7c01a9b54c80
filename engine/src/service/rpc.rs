//! Request/response over `madsim::net::Endpoint` (simulated in the simulation build, TCP
//! in the normal build). Messages can be lost, delayed, duplicated or reordered: callers
//! time out and retry, and every request is idempotent.

use super::protocol::{REQUEST_TAG, Request, Response};
use crate::codec;
use madsim::net::Endpoint;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

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

/// Sends `request` to `dst` and waits up to `timeout` for the reply. `None` on loss,
/// timeout or garbage: the caller retries.
pub async fn call(ep: &Endpoint, dst: SocketAddr, request: &Request, timeout: Duration) -> Option<Response> {
    let tag: u64 = madsim::rand::random::<u64>() | (1 << 63);
    ep.send_to(dst, REQUEST_TAG, &frame(tag, request)).await.ok()?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (len, _) = madsim::time::timeout(timeout, ep.recv_from(tag, &mut buf)).await.ok()?.ok()?;
    unframe::<Response>(&buf[..len]).map(|(_, r)| r)
}

/// Receives the next request: (sender, reply tag, request). Undecodable messages are
/// skipped.
pub async fn next_request(ep: &Endpoint, buf: &mut [u8]) -> io::Result<(SocketAddr, u64, Request)> {
    loop {
        let (len, from) = ep.recv_from(REQUEST_TAG, buf).await?;
        if let Some((tag, request)) = unframe::<Request>(&buf[..len]) {
            return Ok((from, tag, request));
        }
    }
}

/// Sends a reply (best effort: a lost reply is a timeout for the caller).
pub async fn reply(ep: &Endpoint, to: SocketAddr, tag: u64, response: &Response) {
    let _ = ep.send_to(to, tag, &frame(tag, response)).await;
}
